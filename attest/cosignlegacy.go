package attest

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trustgate/trustgate/internal/jsonx"
)

// ErrLegacy means cosign's older formats (a blob bundle without a media
// type, detached signature and certificate files, a Rekor SET) do not
// parse, or say something no Sigstore bundle can carry.
var ErrLegacy = errors.New("malformed cosign signature")

// Limits on cosign's older formats, before anything is decoded.
const (
	maxLegacySignature = 16 << 10 // a signature; an attest-blob envelope is larger, see MaxBundleSize
	maxLegacyChain     = 10       // certificates in a chain
	maxLegacyDepth     = 64       // JSON nesting
)

// CosignRekorBundle is cosign's record of a Rekor v1 entry: the entry as
// the log canonicalized it, its integrated time, index and log ID, and the
// signed entry timestamp (SET) the log made over those. cosign keeps it in
// the rekorBundle field of its older blob bundle and in the
// dev.sigstore.cosign/bundle annotation of a .sig or .att layer. Nothing
// in it is trusted: it becomes a bundle v0.1 log entry with an inclusion
// promise, which sigstore-go verifies against the trusted root's Rekor
// keys and against the signature and certificate beside it.
type CosignRekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// ParseCosignRekorBundle reads the JSON of a CosignRekorBundle strictly: no
// field but its own, none twice.
func ParseCosignRekorBundle(raw []byte) (*CosignRekorBundle, error) {
	var rb CosignRekorBundle
	if err := strictJSON(raw, &rb); err != nil {
		return nil, fmt.Errorf("%w: the Rekor bundle: %w", ErrLegacy, err)
	}
	return &rb, nil
}

// tlogEntry is the bundle v0.1 log entry the Rekor bundle records.
func (rb *CosignRekorBundle) tlogEntry() (*protorekor.TransparencyLogEntry, error) {
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil || len(body) == 0 {
		return nil, fmt.Errorf("%w: the Rekor entry's body is not base64", ErrLegacy)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil || len(logID) != 32 {
		return nil, fmt.Errorf("%w: the Rekor log ID is not 32 bytes of hex", ErrLegacy)
	}
	if len(rb.SignedEntryTimestamp) == 0 || rb.Payload.IntegratedTime <= 0 || rb.Payload.LogIndex < 0 {
		return nil, fmt.Errorf("%w: the Rekor bundle has no signed entry timestamp, integrated time or log index", ErrLegacy)
	}
	var kv struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(body, &kv); err != nil || kv.Kind == "" || kv.APIVersion == "" {
		return nil, fmt.Errorf("%w: the Rekor entry's body names no kind and version", ErrLegacy)
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: body,
	}, nil
}

// Formats of an Attachment.
const (
	FormatBundle = "sigstore bundle"
	FormatCosign = "cosign annotations"
)

// CosignSignature is a signature in one of cosign's older forms: a blob
// bundle (sign-blob or attest-blob --bundle without --new-bundle-format),
// detached --output-signature and --output-certificate files, or a .sig or
// .att tag layer with its annotations.
type CosignSignature struct {
	// Signature is the raw signature over a message; for an attestation
	// (attest-blob, a .att layer) it is the DSSE envelope's JSON.
	Signature []byte
	// Chain is the signing certificate, then its issuers, for a keyless
	// signature; empty for a key.
	Chain []*x509.Certificate
	// Rekor is the log entry and its SET, when the signature was logged.
	Rekor *CosignRekorBundle
	// Timestamp is an RFC 3161 timestamp (DER) over the signature, when a
	// timestamp authority countersigned it (cosign --timestamp-server-url).
	Timestamp []byte
}

// ParseCosignBlobBundle reads cosign's older blob bundle: JSON holding
// base64Signature (the signature, or for attest-blob the base64 of the
// DSSE envelope), optionally cert (the base64 of the certificate's PEM)
// and rekorBundle. Strict: no other field, none twice.
func ParseCosignBlobBundle(raw []byte) (*CosignSignature, error) {
	if len(raw) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrLegacy, len(raw), MaxBundleSize)
	}
	var lb struct {
		Base64Signature string             `json:"base64Signature"`
		Cert            string             `json:"cert"`
		RekorBundle     *CosignRekorBundle `json:"rekorBundle"`
	}
	if err := strictJSON(raw, &lb); err != nil {
		return nil, fmt.Errorf("%w: cosign's blob bundle: %w", ErrLegacy, err)
	}
	sig, err := base64.StdEncoding.DecodeString(lb.Base64Signature)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%w: base64Signature is not base64", ErrLegacy)
	}
	cs := &CosignSignature{Signature: sig, Rekor: lb.RekorBundle}
	if lb.Cert != "" {
		pemBytes, err := base64.StdEncoding.DecodeString(lb.Cert)
		if err != nil {
			return nil, fmt.Errorf("%w: cert is not base64", ErrLegacy)
		}
		if cs.Chain, err = ParseCertificates(pemBytes); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// IsCosignBlobBundle reports whether raw looks like cosign's older blob
// bundle rather than a Sigstore bundle: a JSON object with base64Signature
// and no mediaType. Only a hint for which parser to use: the parser
// decides.
func IsCosignBlobBundle(raw []byte) bool {
	var probe struct {
		MediaType       *json.RawMessage `json:"mediaType"`
		Base64Signature *json.RawMessage `json:"base64Signature"`
	}
	return json.Unmarshal(raw, &probe) == nil && probe.MediaType == nil && probe.Base64Signature != nil
}

// ParseCertificates reads PEM certificates (the signing certificate first,
// then its issuers), at most maxLegacyChain of them, and nothing else.
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := bytes.TrimSpace(pemBytes)
	for len(rest) > 0 {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: not PEM certificates", ErrLegacy)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: a certificate does not parse: %w", ErrLegacy, err)
		}
		if out = append(out, c); len(out) > maxLegacyChain {
			return nil, fmt.Errorf("%w: more than %d certificates", ErrLegacy, maxLegacyChain)
		}
		rest = bytes.TrimSpace(rest)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrLegacy)
	}
	return out, nil
}

// BundleJSON writes the signature as a Sigstore bundle, for the one
// verifier every signature goes through: v0.1 with the certificate chain
// and the log entry with its inclusion promise when the signature was
// logged, v0.3 otherwise (the certificate, or a key to be named by the
// verifier). A message signature is stated over messageSHA256, the
// artifact's digest the caller verifies it for (cosign's formats state
// none; sigstore-go verifies the signature over that digest, so a wrong
// one only refuses). A signature that holds a DSSE envelope becomes that
// envelope.
func (cs *CosignSignature) BundleJSON(messageSHA256 []byte) ([]byte, error) {
	pb := &protobundle.Bundle{MediaType: BundleMediaType, VerificationMaterial: &protobundle.VerificationMaterial{}}
	vm := pb.VerificationMaterial
	if env, ok, err := dsseEnvelope(cs.Signature); err != nil {
		return nil, err
	} else if ok {
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env}
	} else {
		if len(cs.Signature) > maxLegacySignature {
			return nil, fmt.Errorf("%w: a signature of %d bytes", ErrLegacy, len(cs.Signature))
		}
		if len(messageSHA256) != 32 {
			return nil, fmt.Errorf("%w: no SHA-256 to state the message signature over", ErrLegacy)
		}
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: messageSHA256},
			Signature:     cs.Signature,
		}}
	}
	switch {
	case cs.Rekor != nil:
		// A logged signature: bundle v0.1, whose log entries carry an
		// inclusion promise (later versions need an inclusion proof).
		pb.MediaType = BundleMediaTypeV01
		if len(cs.Chain) == 0 {
			vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
		} else {
			vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: chainProto(cs.Chain)}
		}
		e, err := cs.Rekor.tlogEntry()
		if err != nil {
			return nil, err
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{e}
	case len(cs.Chain) > 0:
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cs.Chain[0].Raw}}
	default:
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
	}
	if cs.Timestamp != nil {
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: cs.Timestamp}},
		}
	}
	return protojson.Marshal(pb)
}

// BundleMediaTypeV01 is the media type of a bundle v0.1, whose log
// entries may carry an inclusion promise alone (BundleJSON writes it for a
// logged signature).
const BundleMediaTypeV01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"

func chainProto(chain []*x509.Certificate) *protocommon.X509CertificateChain {
	out := &protocommon.X509CertificateChain{}
	for _, c := range chain {
		out.Certificates = append(out.Certificates, &protocommon.X509Certificate{RawBytes: c.Raw})
	}
	return out
}

// dsseEnvelope reads sig as a DSSE envelope when it is a JSON object (an
// attestation), and then strictly; ok is false for a raw signature. cosign's
// formats do not say which they hold; a raw signature (DER, or Ed25519's 64
// bytes) is never a valid JSON object in practice, though it may begin with
// '{'.
func dsseEnvelope(sig []byte) (*protodsse.Envelope, bool, error) {
	if len(sig) == 0 || sig[0] != '{' || !json.Valid(sig) {
		return nil, false, nil
	}
	if err := jsonx.NoDuplicateKeys(sig, maxLegacyDepth); err != nil {
		return nil, false, fmt.Errorf("%w: the DSSE envelope: %w", ErrLegacy, err)
	}
	var env protodsse.Envelope
	if err := protojson.Unmarshal(sig, &env); err != nil || len(env.GetSignatures()) == 0 {
		return nil, false, fmt.Errorf("%w: the signature is JSON but no DSSE envelope", ErrLegacy)
	}
	return &env, true, nil
}

// strictJSON decodes one JSON object into v: no unknown field, no key
// twice, nothing after it.
func strictJSON(raw []byte, v any) error { return jsonx.DecodeStrict(raw, v, maxLegacyDepth) }

// ParseCosignDetached reads cosign's detached files: sig as
// --output-signature writes it (the base64 signature, or for attest-blob
// the DSSE envelope's JSON), and, for a keyless signature, cert
// (--output-certificate: PEM, or the base64 of the PEM as older cosign
// wrote it) and chain (the issuers, PEM; may be nil). Detached files carry
// no log entry.
func ParseCosignDetached(sig, cert, chain []byte) (*CosignSignature, error) {
	sig = bytes.TrimSpace(sig)
	if len(sig) > MaxBundleSize {
		return nil, fmt.Errorf("%w: a signature file of %d bytes, limit %d", ErrLegacy, len(sig), MaxBundleSize)
	}
	cs := &CosignSignature{Signature: sig}
	if len(sig) == 0 || sig[0] != '{' {
		raw, err := base64.StdEncoding.DecodeString(string(sig))
		if err != nil || len(raw) == 0 {
			return nil, fmt.Errorf("%w: the signature file is neither base64 nor a DSSE envelope", ErrLegacy)
		}
		cs.Signature = raw
	}
	if cert == nil {
		if chain != nil {
			return nil, fmt.Errorf("%w: a certificate chain without a certificate", ErrLegacy)
		}
		return cs, nil
	}
	cert = bytes.TrimSpace(cert)
	if !bytes.HasPrefix(cert, []byte("-----BEGIN")) {
		dec, err := base64.StdEncoding.DecodeString(string(cert))
		if err != nil {
			return nil, fmt.Errorf("%w: the certificate file is neither PEM nor base64 PEM", ErrLegacy)
		}
		cert = dec
	}
	var err error
	if cs.Chain, err = ParseCertificates(append(append([]byte(nil), cert...), append([]byte("\n"), chain...)...)); err != nil {
		return nil, err
	}
	return cs, nil
}

// Annotations of a cosign tag-scheme layer (.sig or .att) that carry the
// verification material.
const (
	annCosignChain     = "dev.sigstore.cosign/chain"
	annCosignRekor     = "dev.sigstore.cosign/bundle"
	annCosignTimestamp = "dev.sigstore.cosign/rfc3161timestamp"
	// maxAnnotation bounds one annotation's text: a certificate chain or a
	// Rekor bundle is a few kilobytes.
	maxAnnotation = 64 << 10
)

// CosignLayer reads a layer of cosign's tag scheme: signature is what the
// layer signs (for a .sig layer, the signature its
// dev.cosignproject.cosign/signature annotation holds; for a .att layer,
// the DSSE envelope that is the layer), and ann its annotations: the
// certificate and its chain (keyless), the Rekor bundle
// (dev.sigstore.cosign/bundle) and the RFC 3161 timestamp, each optional,
// each read strictly when present. Nothing is verified here: BundleJSON
// makes the bundle the one verifier checks.
func CosignLayer(signature []byte, ann map[string]string) (*CosignSignature, error) {
	cs := &CosignSignature{Signature: signature}
	for _, k := range []string{annCosignCertificate, annCosignChain, annCosignRekor, annCosignTimestamp} {
		if len(ann[k]) > maxAnnotation {
			return nil, fmt.Errorf("%w: the %s annotation is longer than %d bytes", ErrLegacy, k, maxAnnotation)
		}
	}
	if cert := ann[annCosignCertificate]; cert != "" {
		chain, err := ParseCertificates([]byte(cert + "\n" + ann[annCosignChain]))
		if err != nil {
			return nil, fmt.Errorf("the certificate annotations: %w", err)
		}
		cs.Chain = chain
	} else if ann[annCosignChain] != "" {
		return nil, fmt.Errorf("%w: a certificate chain annotation without a certificate", ErrLegacy)
	}
	if rb := ann[annCosignRekor]; rb != "" {
		r, err := ParseCosignRekorBundle([]byte(rb))
		if err != nil {
			return nil, err
		}
		cs.Rekor = r
	}
	if ts := ann[annCosignTimestamp]; ts != "" {
		var doc struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := strictJSON([]byte(ts), &doc); err != nil || len(doc.SignedRFC3161Timestamp) == 0 {
			return nil, fmt.Errorf("%w: the %s annotation is not {\"SignedRFC3161Timestamp\": base64}", ErrLegacy, annCosignTimestamp)
		}
		cs.Timestamp = doc.SignedRFC3161Timestamp
	}
	return cs, nil
}

// signer is who the signature claims to be by, for a person to read.
func (cs *CosignSignature) signer() string {
	if len(cs.Chain) == 0 {
		return "a key (cosign's formats do not name it)"
	}
	return certSigner(cs.Chain[0])
}
