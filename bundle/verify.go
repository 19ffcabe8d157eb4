// Package bundle verifies Sigstore bundles that hold in-toto attestations:
// one verifier for every caller (policies, attestations, summaries), with
// the same limits, the same strict statement parsing and the same errors.
// It reads no file and makes no network call.
package bundle

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/jsonx"
	"github.com/trustgate/trustgate/internal/safetext"
)

// Kinds of refusal, matched with errors.Is. Every refusal wraps exactly one.
var (
	ErrMalformed       = errors.New("malformed bundle")
	ErrTooLarge        = errors.New("bundle exceeds a limit")
	ErrNoSigner        = errors.New("no key or identity to verify against")
	ErrSignature       = errors.New("signature does not verify")
	ErrUntrustedSigner = errors.New("signer is not the one required")
	ErrLog             = errors.New("transparency log entry does not verify")
	ErrTimestamp       = errors.New("no valid time for the signature")
	ErrCertificate     = errors.New("certificate does not chain to a trusted authority at signing time")
	ErrPayloadType     = errors.New("DSSE payload is not an in-toto statement")
	ErrStatement       = errors.New("invalid in-toto statement")
	ErrSubject         = errors.New("artifact is not a subject of the attestation")
	ErrPredicateType   = errors.New("attestation has another predicate type")
	ErrNotPassed       = errors.New("verification summary does not say PASSED")
	// ErrNotAttestation: a verified signature (cosign sign) where an
	// attestation of some predicate type is required. A signature
	// endorses an image's bytes and attests nothing.
	ErrNotAttestation = errors.New("a signature is no attestation")
	// ErrImagePayload: a cosign signature's payload is not the simple
	// signing document cosign signs.
	ErrImagePayload = errors.New("invalid cosign signature payload")
	// ErrLegacy: cosign's older formats do not parse (attest.ErrLegacy).
	ErrLegacy = attest.ErrLegacy
)

// Limits on what a bundle may hold. sigstore-go bounds entries and
// timestamps at 32 and subjects at 1024; trustgate's attestations need far
// fewer, so it bounds them tighter.
const (
	MaxTlogEntries      = 8
	MaxTimestamps       = 8
	MaxSubjects         = attest.MaxSubjects
	MaxDigestsPerSubj   = 8
	maxStatementDepth   = 64
	maxPredicateTypeLen = 4096
)

// Signer is who must have signed: a public key, or a keyless identity
// checked against a certificate that chains to Options.Material. Exactly
// one of the two is set.
type Signer struct {
	Key      crypto.PublicKey
	Identity *Identity
}

// Artifact is what the attestation must be about: a file or image by its
// SHA-256 (or SHA-512), or a folder by its h1 tree digest (in-toto's
// dirHash), in lower-case hex. An artifact with no digest matches nothing;
// a subject that names it only by another algorithm (sha1, md5, one
// trustgate does not know) does not count.
type Artifact struct {
	Name    string
	SHA256  string
	SHA512  string // packages (npm) are often attested by SHA-512 alone
	DirHash string
}

// Options is what the trust root and the caller require.
type Options struct {
	// Material is Sigstore trust material (a trusted_root.json): required
	// for keyless signers; with a key, what log entries and timestamps
	// are checked against when RequireLog or RequireTimestamp ask.
	Material root.TrustedMaterial
	// PredicateType, when set, is the only acceptable predicate type.
	PredicateType string
	// RequireLog and RequireTimestamp ask a key signature for a
	// transparency log entry and for an RFC 3161 timestamp. A keyless
	// signature always needs a log entry and a time, unless its identity
	// waives the log (Identity.IgnoreTlog).
	RequireLog, RequireTimestamp bool
}

// Result is what a verified attestation says.
type Result struct {
	// Signer names who signed, for people: the bundle's own label.
	Signer string
	// SignerID is who signed, as verified: "key:" and the key's hint, or
	// "identity:" and the certificate's OIDC issuer and subject. Two
	// signatures with one SignerID are one signer's, however they were
	// encoded or wrapped.
	SignerID      string
	PredicateType string
	// Statement is the verified payload.
	Statement *attest.Statement
	// Times are the verified times of the signature (log and TSA).
	Times []time.Time
}

// Verify verifies the bundle JSON raw for art, signed by s, as opts
// require. It returns the verified result, or an error wrapping one of the
// package's sentinels that says what failed. Callers must still decide
// what the predicate means to them; a verification summary that does not
// say PASSED is already refused here (ErrNotPassed).
func Verify(raw []byte, art Artifact, s Signer, opts Options) (*Result, error) {
	if art.SHA256 == "" && art.SHA512 == "" && art.DirHash == "" {
		return nil, fmt.Errorf("%w: no artifact digest to bind to", ErrSubject)
	}
	b, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	out, err := Unbound(b, s, opts)
	if err != nil {
		return nil, err
	}
	if err := Bind(out.Statement, art); err != nil {
		return nil, err
	}
	if err := predicateIs(out.PredicateType, opts.PredicateType); err != nil {
		return nil, err
	}
	if out.PredicateType != attest.PredicateVSA {
		return out, nil
	}
	// A verification summary is signed either way; one that says FAILED
	// verifies as authentic but vouches for nothing.
	var pred map[string]any
	if json.Unmarshal(out.Statement.Predicate, &pred) != nil || !SummaryPassed(pred) {
		r, _ := pred["verificationResult"].(string)
		return nil, fmt.Errorf("%w: it says %q", ErrNotPassed, safetext.Clip(r, 80))
	}
	return out, nil
}

// predicateIs checks a verified statement's predicate type got against the
// one required, want ("" requires none). A cosign signature's statement
// (attest.PredicateCosignSign) satisfies no required type, not even its
// own: it is a signature, never an attestation.
func predicateIs(got, want string) error {
	switch {
	case want == "":
		return nil
	case got == attest.PredicateCosignSign:
		return fmt.Errorf("%w: a cosign signature attests no predicate type, and %q is required", ErrNotAttestation, want)
	case got != want:
		return fmt.Errorf("%w: %q, want %q", ErrPredicateType, safetext.Clip(got, 80), want)
	}
	return nil
}

// SummaryPassed reports whether a verification summary's predicate says
// PASSED.
func SummaryPassed(pred map[string]any) bool {
	r, _ := pred["verificationResult"].(string)
	return r == "PASSED"
}

// Parse parses bundle JSON within the limits: its size, and how many log
// entries and timestamps it holds, before anything else reads it.
func Parse(raw []byte) (*sgbundle.Bundle, error) {
	if len(raw) > attest.MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), attest.MaxBundleSize)
	}
	// Count entries before the full parse, which would validate (and spend
	// time on) every one of them.
	// protojson also takes the proto field names, so both spellings count.
	var shallow struct {
		VM  shallowVM `json:"verificationMaterial"`
		VM2 shallowVM `json:"verification_material"`
	}
	if err := json.Unmarshal(raw, &shallow); err != nil {
		return nil, fmt.Errorf("%w: not JSON", ErrMalformed)
	}
	for _, vm := range []shallowVM{shallow.VM, shallow.VM2} {
		if n := len(vm.Tlog) + len(vm.Tlog2); n > MaxTlogEntries {
			return nil, fmt.Errorf("%w: %d log entries, limit %d", ErrTooLarge, n, MaxTlogEntries)
		}
		if n := len(vm.TS.Stamps) + len(vm.TS.Stamps2) + len(vm.TS2.Stamps) + len(vm.TS2.Stamps2); n > MaxTimestamps {
			return nil, fmt.Errorf("%w: %d timestamps, limit %d", ErrTooLarge, n, MaxTimestamps)
		}
	}
	b, err := attest.ParseBundleJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return b, nil
}

// shallowVM is a bundle's verification material, read only to count.
type shallowVM struct {
	Tlog  []json.RawMessage `json:"tlogEntries"`
	Tlog2 []json.RawMessage `json:"tlog_entries"`
	TS    shallowTS         `json:"timestampVerificationData"`
	TS2   shallowTS         `json:"timestamp_verification_data"`
}

type shallowTS struct {
	Stamps  []json.RawMessage `json:"rfc3161Timestamps"`
	Stamps2 []json.RawMessage `json:"rfc3161_timestamps"`
}

// Unbound checks everything Verify does but the artifact binding and the
// predicate: limits, payload type, the statement, the signature. A caller
// that binds the statement itself (to several measured digests, say) must
// call Bind or read the subjects.
func Unbound(b *sgbundle.Bundle, s Signer, opts Options) (*Result, error) {
	vm := b.GetVerificationMaterial()
	if n := len(vm.GetTlogEntries()); n > MaxTlogEntries {
		return nil, fmt.Errorf("%w: %d log entries, limit %d", ErrTooLarge, n, MaxTlogEntries)
	}
	if n := len(vm.GetTimestampVerificationData().GetRfc3161Timestamps()); n > MaxTimestamps {
		return nil, fmt.Errorf("%w: %d timestamps, limit %d", ErrTooLarge, n, MaxTimestamps)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("%w: no DSSE envelope (a message signature is not an attestation)", ErrPayloadType)
	}
	if env.GetPayloadType() != attest.PayloadType {
		// Not quoted: nothing unsigned is repeated in a message.
		return nil, fmt.Errorf("%w: the payload type is not %s", ErrPayloadType, attest.PayloadType)
	}
	// The statement is read (bounded, strictly) before the signature is
	// checked, so that a malformed one is named as such; nothing in it is
	// trusted until the signature verifies.
	st, err := parseStatement(env.GetPayload())
	if err != nil {
		return nil, err
	}
	// Unbound to an artifact here: the statement names its subjects, and
	// the caller binds them (Bind), so that each failure is told apart.
	res, err := verifySignature(b, s, opts, sgverify.WithoutArtifactUnsafe())
	if err != nil {
		return nil, err
	}
	out := &Result{Signer: attest.Signer(b), SignerID: signerID(s, res), PredicateType: st.PredicateType, Statement: st}
	for _, ts := range res.VerifiedTimestamps {
		out.Times = append(out.Times, ts.Timestamp)
	}
	return out, nil
}

// signerID names who signed, from what verified: the key the caller
// required, or the certificate's identity.
func signerID(s Signer, res *sgverify.VerificationResult) string {
	if s.Key != nil {
		h, _ := attest.KeyHint(s.Key)
		return "key:" + h
	}
	if res.Signature != nil && res.Signature.Certificate != nil {
		c := res.Signature.Certificate
		return "identity:" + c.Extensions.Issuer + "\n" + c.SubjectAlternativeName
	}
	return "identity:" + s.Identity.String()
}

// verifySignature runs sigstore-go on the bundle, for the artifact policy
// given (none for an attestation, which Bind binds after; the digest for a
// message signature), with requirements that come from the caller, never
// from what the bundle happens to carry.
func verifySignature(b *sgbundle.Bundle, s Signer, opts Options, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case s.Key != nil && s.Identity != nil, s.Key == nil && s.Identity == nil:
		return nil, ErrNoSigner
	case s.Key != nil:
		if vc.Certificate() != nil {
			return nil, fmt.Errorf("%w: signed with a certificate, and a key was required", ErrUntrustedSigner)
		}
		return verifyKey(b, s.Key, opts, artifact)
	default:
		if vc.Certificate() == nil {
			return nil, fmt.Errorf("%w: signed with a key, and the identity %s was required", ErrUntrustedSigner, s.Identity)
		}
		if opts.Material == nil {
			return nil, fmt.Errorf("%w: a keyless signature needs a trusted root", ErrNoSigner)
		}
		vopts := []sgverify.VerifierOption{sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1)}
		switch {
		case s.Identity.IgnoreTlog && opts.RequireLog:
			return nil, fmt.Errorf("%w: a log entry both required and waived", ErrNoSigner)
		case s.Identity.IgnoreTlog:
			// No log: the time must come from a timestamp authority, never
			// from the clock (the certificate is valid for minutes).
			vopts = []sgverify.VerifierOption{sgverify.WithSignedTimestamps(1)}
		}
		if len(opts.Material.CTLogs()) > 0 {
			vopts = append(vopts, sgverify.WithSignedCertificateTimestamps(1))
		}
		v, err := sgverify.NewVerifier(opts.Material, vopts...)
		if err != nil {
			return nil, err
		}
		cid, err := s.Identity.certificateIdentity()
		if err != nil {
			return nil, err
		}
		res, err := v.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithCertificateIdentity(cid)))
		return res, classify(err)
	}
}

func verifyKey(b *sgbundle.Bundle, key crypto.PublicKey, opts Options, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	tm, err := attest.TrustedKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoSigner, err)
	}
	var vopts []sgverify.VerifierOption
	if opts.RequireLog || opts.RequireTimestamp {
		if opts.Material == nil {
			return nil, fmt.Errorf("%w: a log entry or timestamp is required, and no trusted root was given", ErrNoSigner)
		}
		tm = keyAndLogs{TrustedMaterial: opts.Material, key: tm}
	}
	if opts.RequireLog {
		vopts = append(vopts, sgverify.WithTransparencyLog(1))
		if !opts.RequireTimestamp {
			// A log entry's time (Rekor v1) or a timestamp's: sigstore-go
			// needs a time policy beside the log.
			vopts = append(vopts, sgverify.WithObserverTimestamps(1))
		}
	}
	if opts.RequireTimestamp {
		vopts = append(vopts, sgverify.WithSignedTimestamps(1))
	}
	if len(vopts) == 0 {
		vopts = append(vopts, sgverify.WithNoObserverTimestamps())
	}
	v, err := sgverify.NewVerifier(tm, vopts...)
	if err != nil {
		return nil, err
	}
	res, err := v.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithKey()))
	return res, classify(err)
}

// keyAndLogs is trust material whose logs, authorities and timestamp
// authorities come from a trusted root, and whose only public key is the
// one given: the root's own keys (if any) never sign.
type keyAndLogs struct {
	root.TrustedMaterial
	key root.TrustedMaterial
}

func (k keyAndLogs) PublicKeyVerifier(hint string) (root.TimeConstrainedVerifier, error) {
	return k.key.PublicKeyVerifier(hint)
}

// classify maps sigstore-go's error to one of ours by the stage that
// failed. sigstore-go v1.3.0 has no typed errors for these stages, so the
// mapping reads its messages; TestVirtualKeyless and TestAdversarialKey
// break each stage and assert the sentinel, so that an upgrade that
// changes a message fails them loudly (an unmatched message still
// refuses, as ErrSignature).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var noID *sgverify.ErrNoMatchingCertificateIdentity
	msg := err.Error()
	switch {
	case errors.As(err, &noID):
		return fmt.Errorf("%w: %w", ErrUntrustedSigner, err)
	case strings.HasPrefix(msg, "failed to verify log inclusion"):
		return fmt.Errorf("%w: %w", ErrLog, err)
	case strings.HasPrefix(msg, "failed to verify timestamps"):
		return fmt.Errorf("%w: %w", ErrTimestamp, err)
	case strings.HasPrefix(msg, "failed to verify leaf certificate"), strings.HasPrefix(msg, "failed to verify signed certificate timestamp"):
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	case strings.Contains(msg, "threshold not met") && strings.Contains(msg, "timestamp"):
		return fmt.Errorf("%w: %w", ErrTimestamp, err)
	}
	return fmt.Errorf("%w: %w", ErrSignature, err)
}

// parseStatement reads the payload as an in-toto statement, refusing
// duplicate keys (two readers could see two different statements), other
// statement types, and more subjects or digests than the limits.
func parseStatement(payload []byte) (*attest.Statement, error) {
	if err := noDuplicateKeys(payload); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStatement, err)
	}
	var st attest.Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: not a JSON statement", ErrStatement)
	}
	switch st.Type {
	case attest.StatementType, "https://in-toto.io/Statement/v0.1": // cosign still writes v0.1
	default:
		return nil, fmt.Errorf("%w: _type is not an in-toto Statement v1 or v0.1", ErrStatement)
	}
	if len(st.Subject) == 0 {
		return nil, fmt.Errorf("%w: no subject", ErrStatement)
	}
	if len(st.Subject) > MaxSubjects {
		return nil, fmt.Errorf("%w: %d subjects, limit %d", ErrTooLarge, len(st.Subject), MaxSubjects)
	}
	for _, s := range st.Subject {
		if len(s.Digest) > MaxDigestsPerSubj {
			return nil, fmt.Errorf("%w: a subject with %d digests, limit %d", ErrTooLarge, len(s.Digest), MaxDigestsPerSubj)
		}
	}
	if st.PredicateType == "" || len(st.PredicateType) > maxPredicateTypeLen {
		return nil, fmt.Errorf("%w: no predicate type", ErrStatement)
	}
	return &st, nil
}

// Bind finds the artifact among the subjects, by sha256 or dirHash only: a
// subject that names it only by a weaker or unknown algorithm does not
// count.
func Bind(st *attest.Statement, art Artifact) error {
	for _, s := range st.Subject {
		for alg, v := range map[string]string{"sha256": art.SHA256, "sha512": art.SHA512, "dirHash": art.DirHash} {
			if v != "" && s.Digest[alg] != "" && strings.EqualFold(s.Digest[alg], v) {
				return nil
			}
		}
	}
	want := "sha256:" + art.SHA256
	switch {
	case art.SHA256 == "" && art.SHA512 != "":
		want = "sha512:" + art.SHA512
	case art.SHA256 == "":
		want = "dirHash:" + art.DirHash
	}
	return fmt.Errorf("%w: %s (%s) is not among its %d subject(s)", ErrSubject, orName(art.Name), want, len(st.Subject))
}

func orName(n string) string {
	if n == "" {
		return "the artifact"
	}
	return fmt.Sprintf("%q", n)
}

// noDuplicateKeys walks a JSON document and fails on an object with a key
// twice (ignoring case), or on nesting deeper than maxStatementDepth.
func noDuplicateKeys(data []byte) error { return jsonx.NoDuplicateKeys(data, maxStatementDepth) }
