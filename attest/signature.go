package attest

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// What an attachment holds, and cosign's plain image signatures.
//
// `cosign sign` writes a plain signature, no attestation: by default
// (cosign v2.6.5) one layer of the cosign tag sha256-<hex>.sig per
// signature, of media type application/vnd.dev.cosign.simplesigning.v1+json,
// whose bytes are the "simple signing" payload that names the image's
// digest, with the base64 signature over those bytes in the annotation
// dev.cosignproject.cosign/signature (keyless: the certificate, its chain
// and the Rekor SET in dev.sigstore.cosign/certificate, .../chain and
// .../bundle). With --new-bundle-format it stores a Sigstore bundle as an
// OCI 1.1 referrer instead: a DSSE in-toto statement about the image of
// predicate type PredicateCosignSign, with no predicate.
const (
	// KindAttestation: an in-toto attestation of some predicate type.
	KindAttestation = "attestation"
	// KindSignature: a plain signature over an image's digest (cosign
	// sign). It attests no predicate type.
	KindSignature = "signature"

	// SourceSigTag: a layer of the cosign tag sha256-<hex>.sig, holding a
	// plain image signature.
	SourceSigTag = "tag .sig"

	// PredicateCosignSign is the predicate type of the statement that
	// `cosign sign --new-bundle-format` signs: the signer's signature of
	// the image its subject names. It is a signature, not an attestation.
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"

	// MaxSignaturePayload bounds the signed payload of one cosign
	// signature (cosign's own is a few hundred bytes; annotations given
	// with sign -a make it longer).
	MaxSignaturePayload = 1 << 20

	// simpleSigningMediaType is the media type of a .sig tag layer.
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// maxSignatureText bounds the base64 signature annotation (an RSA-4096
	// signature is 684 characters).
	maxSignatureText = 8 << 10
)

// kindOf is what a statement of this predicate type is.
func kindOf(predicateType string) string {
	if predicateType == PredicateCosignSign {
		return KindSignature
	}
	return KindAttestation
}

// SignatureTag is the tag the cosign scheme keeps img's plain signatures
// under: sha256-<hex>.sig.
func SignatureTag(img name.Digest) name.Tag {
	return img.Context().Tag(strings.Replace(img.DigestStr(), ":", "-", 1) + ".sig")
}

// sigTagAttachments reads the layers of img's .sig tag: at most
// MaxAttachments, each at most MaxSignaturePayload bytes. Layers of other
// media types are left out; a simple signing layer that cannot be read
// fails the listing (ErrAttachment).
func sigTagAttachments(img name.Digest, opts []remote.Option) ([]Attachment, error) {
	return cosignTagLayers(SignatureTag(img), simpleSigningMediaType, MaxSignaturePayload, opts, sigEntry)
}

// sigEntry lists one .sig layer: its payload, and the bundle its signature
// annotation and verification material annotations make (CosignLayer,
// BundleJSON): a message signature over the payload's SHA-256, by a key or
// a certificate, with the Rekor entry and timestamp the layer carries.
// Nothing in the payload is read here: it is trusted only once the
// signature over it verified.
func sigEntry(payload []byte, ann map[string]string) (Attachment, error) {
	if len(payload) == 0 {
		return Attachment{}, errors.New("empty signature payload")
	}
	sig, err := annotatedSignature(ann[annCosignSignature])
	if err != nil {
		return Attachment{}, err
	}
	cs, err := CosignLayer(sig, ann)
	if err != nil {
		return Attachment{}, err
	}
	sum := sha256.Sum256(payload)
	raw, err := cs.BundleJSON(sum[:])
	if err != nil {
		return Attachment{}, err
	}
	return Attachment{Source: SourceSigTag, Kind: KindSignature, Format: FormatCosign, Signer: cs.signer(), Bundle: raw, Payload: payload}, nil
}

// annotatedSignature decodes the signature annotation of a .sig layer.
func annotatedSignature(text string) ([]byte, error) {
	if text == "" {
		return nil, fmt.Errorf("no %s annotation", annCosignSignature)
	}
	if len(text) > maxSignatureText {
		return nil, fmt.Errorf("%s annotation longer than %d characters", annCosignSignature, maxSignatureText)
	}
	sig, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%s annotation is not a base64 signature", annCosignSignature)
	}
	return sig, nil
}

// SignatureBundle is the Sigstore bundle (v0.3 JSON) of a cosign signature
// made with a key and not logged: sig, a signature over payload, as a
// message signature whose message digest is the payload's SHA-256, with a
// public key that it leaves unnamed (the .sig tag names none). Verifying
// it (bundle.ImageSignature) is the work of the one bundle verifier;
// building it checks nothing.
func SignatureBundle(payload, sig []byte) ([]byte, error) {
	sum := sha256.Sum256(payload)
	return (&CosignSignature{Signature: sig}).BundleJSON(sum[:])
}
