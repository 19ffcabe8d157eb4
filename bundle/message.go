package bundle

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/trustgate/trustgate/attest"
)

// MessageResult is a verified message signature: who signed which digest,
// and when.
type MessageResult struct {
	Signer   string
	SignerID string
	// Algorithm and Digest are the signed artifact's digest (sha256 or
	// sha512, lower-case hex): the artifact's own, which the signature
	// was verified over.
	Algorithm, Digest string
	Times             []time.Time
}

// VerifyMessage verifies the bundle JSON raw holding a message signature
// (what `cosign sign-blob --bundle`, `sigstore sign` and GitHub's release
// signing make: a signature over the artifact's digest, in a hashedrekord
// log entry when logged) over art, signed by s, as opts require. A message
// signature says only that the signer signed these bytes: it is no
// attestation of anything, and a bundle holding an attestation (DSSE) is
// refused here (ErrPayloadType), as a message signature is by Verify.
func VerifyMessage(raw []byte, art Artifact, s Signer, opts Options) (*MessageResult, error) {
	b, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return Message(b, art, s, opts)
}

// IsMessage reports whether a parsed bundle holds a message signature.
func IsMessage(b *sgbundle.Bundle) bool { return b.GetMessageSignature() != nil }

// Message is VerifyMessage on a bundle already parsed (with Parse).
func Message(b *sgbundle.Bundle, art Artifact, s Signer, opts Options) (*MessageResult, error) {
	ms := b.GetMessageSignature()
	if ms == nil {
		return nil, fmt.Errorf("%w: no message signature (an attestation is verified with verify-attestation)", ErrPayloadType)
	}
	alg, want := "", ""
	switch ms.GetMessageDigest().GetAlgorithm() {
	case protocommon.HashAlgorithm_SHA2_256:
		alg, want = "sha256", art.SHA256
	case protocommon.HashAlgorithm_SHA2_512:
		alg, want = "sha512", art.SHA512
	default:
		return nil, fmt.Errorf("%w: the message digest is neither SHA-256 nor SHA-512", ErrMalformed)
	}
	if want == "" {
		return nil, fmt.Errorf("%w: the signature is over a %s digest, and the artifact has none", ErrSubject, alg)
	}
	digest, err := hex.DecodeString(want)
	if err != nil {
		return nil, fmt.Errorf("%w: the artifact's %s is not hex", ErrSubject, alg)
	}
	// The digest the bundle states is only a claim: sigstore-go verifies
	// the signature over the artifact's own digest. Compared first, so
	// that another artifact is named as such.
	if got := ms.GetMessageDigest().GetDigest(); len(got) > 0 && !bytes.Equal(got, digest) {
		return nil, fmt.Errorf("%w: the message signature is over another artifact (%s:%s)", ErrSubject, alg, hex.EncodeToString(got))
	}
	res, err := verifySignature(b, s, opts, sgverify.WithArtifactDigest(alg, digest))
	if err != nil {
		return nil, err
	}
	out := &MessageResult{Signer: attest.Signer(b), SignerID: signerID(s, res), Algorithm: alg, Digest: want}
	for _, ts := range res.VerifiedTimestamps {
		out.Times = append(out.Times, ts.Timestamp)
	}
	return out, nil
}
