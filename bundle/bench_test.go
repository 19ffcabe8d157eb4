package bundle

import (
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/testsign"
)

// BenchmarkBundleKey: one key-signed attestation verified.
func BenchmarkBundleKey(b *testing.B) {
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	raw := signPayload(b, k, statementJSON(attest.StatementType, sum("artifact A"), attest.PredicateCycloneDX), attest.PayloadType)
	art := Artifact{SHA256: sum("artifact A")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(raw, art, Signer{Key: k.Public()}, Options{PredicateType: attest.PredicateCycloneDX}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBundleKeyless: one keyless attestation (Fulcio certificate,
// Rekor entry with inclusion proof and promise, RFC 3161 timestamp, from
// the in-process instance) verified offline against a trusted root. The
// same against the real services: internal/peertest.
func BenchmarkBundleKeyless(b *testing.B) {
	v := testsign.NewVirtual(b)
	raw := v.Keyless(b, "signer@example.com", []byte(statementJSON(attest.StatementType, sum("artifact A"), attest.PredicateCycloneDX)))
	id, err := NewIdentity(testsign.Issuer, "", "signer@example.com", "")
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Material: v.TrustedMaterial()}
	art := Artifact{SHA256: sum("artifact A")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(raw, art, Signer{Identity: id}, opts); err != nil {
			b.Fatal(err)
		}
	}
}
