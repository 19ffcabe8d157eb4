package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
)

// ImageSignatureType is the critical.type of the simple signing payload
// that cosign signs for an image.
const ImageSignatureType = "cosign container image signature"

// ImagePayload is what a cosign signature's simple signing payload says:
// where the signer pushed the image, and the image's digest.
type ImagePayload struct {
	// Reference is critical.identity.docker-reference. It is not checked
	// (as cosign does not): the digest names the bytes, wherever they are
	// stored.
	Reference string
	// Digest is critical.image.docker-manifest-digest.
	Digest digest.Digest
}

// VerifyImageSignature is ImageSignature on the bundle JSON raw (see
// ParseImageSignature).
func VerifyImageSignature(raw, payload []byte, img Artifact, s Signer, opts Options) (*MessageResult, error) {
	b, err := ParseImageSignature(raw)
	if err != nil {
		return nil, err
	}
	return ImageSignature(b, payload, img, s, opts)
}

// ParseImageSignature parses the bundle of a cosign signature of the .sig
// tag (the one attest builds from the layer's annotations), as Parse does.
func ParseImageSignature(raw []byte) (*sgbundle.Bundle, error) {
	if raw == nil {
		return nil, fmt.Errorf("%w: a cosign signature without its bundle", ErrMalformed)
	}
	return Parse(raw)
}

// ImageSignature verifies a cosign image signature (cosign sign, the .sig
// tag): b must hold a message signature over payload, the simple signing
// document, signed by s as opts require (log entry and timestamp
// included); then, and only then, the payload is read (CheckImagePayload)
// and must name img's SHA-256. A verified signature says that the signer
// signed the image's bytes: it attests nothing, so a required predicate
// type (opts.PredicateType) refuses it with ErrNotAttestation. Algorithm
// and Digest of the result are the image's.
func ImageSignature(b *sgbundle.Bundle, payload []byte, img Artifact, s Signer, opts Options) (*MessageResult, error) {
	if img.SHA256 == "" {
		return nil, fmt.Errorf("%w: no image digest to bind to", ErrSubject)
	}
	if len(payload) > attest.MaxSignaturePayload {
		return nil, fmt.Errorf("%w: a signed payload of %d bytes, limit %d", ErrTooLarge, len(payload), attest.MaxSignaturePayload)
	}
	ms := b.GetMessageSignature()
	if ms == nil {
		return nil, fmt.Errorf("%w: a cosign image signature is a message signature, and this bundle holds none", ErrPayloadType)
	}
	sum := sha256.Sum256(payload)
	if ms.GetMessageDigest().GetAlgorithm() != protocommon.HashAlgorithm_SHA2_256 || !bytes.Equal(ms.GetMessageDigest().GetDigest(), sum[:]) {
		return nil, fmt.Errorf("%w: the message signature is not over this payload (its SHA-256)", ErrSubject)
	}
	if opts.RequireLog && len(b.GetVerificationMaterial().GetTlogEntries()) == 0 {
		return nil, fmt.Errorf("%w: a log entry is required, and the signature has none (no Rekor bundle annotation)", ErrLog)
	}
	// Over the payload's bytes, not its digest: sigstore-go hashes them as
	// the key's algorithm wants (and an Ed25519 key signs them whole).
	res, err := verifySignature(b, s, opts, sgverify.WithArtifact(bytes.NewReader(payload)))
	if err != nil {
		return nil, err
	}
	if _, err := CheckImagePayload(payload, img); err != nil {
		return nil, err
	}
	if opts.PredicateType != "" {
		return nil, fmt.Errorf("%w: a cosign signature attests no predicate type, and %q is required", ErrNotAttestation, opts.PredicateType)
	}
	out := &MessageResult{Signer: attest.Signer(b), SignerID: signerID(s, res), Algorithm: "sha256", Digest: img.SHA256}
	for _, ts := range res.VerifiedTimestamps {
		out.Times = append(out.Times, ts.Timestamp)
	}
	return out, nil
}

// CheckImagePayload reads a cosign simple signing payload strictly and
// checks that it names the image img by its SHA-256: at most
// attest.MaxSignaturePayload bytes of JSON with no key given twice; an
// object with "critical" and, optionally, "optional" (an object or null),
// nothing else; critical holding exactly "identity" (an object with the
// string "docker-reference" alone), "image" (an object with the string
// "docker-manifest-digest" alone, sha256:<64 lower-case hex>) and "type",
// which is ImageSignatureType. A payload naming another digest wraps
// ErrSubject; any other problem wraps ErrImagePayload (or ErrTooLarge).
//
// It is no signature check: callers read a payload only after the
// signature over it verified (ImageSignature).
func CheckImagePayload(payload []byte, img Artifact) (*ImagePayload, error) {
	p, err := parseImagePayload(payload)
	if err != nil {
		return nil, err
	}
	if p.Digest.Algorithm() != digest.SHA256 || p.Digest.Hex() != img.SHA256 {
		return nil, fmt.Errorf("%w: the signed payload names %s, and the image is sha256:%s", ErrSubject, p.Digest, img.SHA256)
	}
	return p, nil
}

func parseImagePayload(payload []byte) (*ImagePayload, error) {
	if len(payload) > attest.MaxSignaturePayload {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), attest.MaxSignaturePayload)
	}
	if err := noDuplicateKeys(payload); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImagePayload, err)
	}
	top, err := jsonObject(payload, "the payload", []string{"critical"}, "optional")
	if err != nil {
		return nil, err
	}
	if opt, ok := top["optional"]; ok && !isObjectOrNull(opt) {
		return nil, fmt.Errorf("%w: optional is neither an object nor null", ErrImagePayload)
	}
	crit, err := jsonObject(top["critical"], "critical", []string{"identity", "image", "type"})
	if err != nil {
		return nil, err
	}
	var typ string
	if json.Unmarshal(crit["type"], &typ) != nil || typ != ImageSignatureType {
		return nil, fmt.Errorf("%w: critical.type is not %q", ErrImagePayload, ImageSignatureType)
	}
	ref, err := jsonString(crit["identity"], "critical.identity", "docker-reference")
	if err != nil {
		return nil, err
	}
	d, err := jsonString(crit["image"], "critical.image", "docker-manifest-digest")
	if err != nil {
		return nil, err
	}
	dg, err := digest.Parse(d)
	if err != nil || dg.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("%w: critical.image.docker-manifest-digest is not sha256:<64 lower-case hex>", ErrImagePayload)
	}
	return &ImagePayload{Reference: ref, Digest: dg}, nil
}

// jsonObject reads raw as a JSON object that has every key of required,
// and no key that is neither required nor optional. Keys match exactly.
func jsonObject(raw json.RawMessage, what string, required []string, optional ...string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: %s is not a JSON object", ErrImagePayload, what)
	}
	for k := range m {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			return nil, fmt.Errorf("%w: %s has a field other than %v", ErrImagePayload, what, append(slices.Clone(required), optional...))
		}
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("%w: %s has no %q", ErrImagePayload, what, k)
		}
	}
	return m, nil
}

// jsonString reads raw as an object whose one field, key, is a string.
func jsonString(raw json.RawMessage, what, key string) (string, error) {
	m, err := jsonObject(raw, what, []string{key})
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(m[key], &s); err != nil {
		return "", fmt.Errorf("%w: %s.%s is not a string", ErrImagePayload, what, key)
	}
	return s, nil
}

func isObjectOrNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return bytes.Equal(t, []byte("null")) || len(t) > 0 && t[0] == '{'
}
