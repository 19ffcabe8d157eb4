package bundle

import (
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/sigstoretest"
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
// Rekor v2 inclusion proof and checkpoint, RFC 3161 timestamp) verified
// offline against a trusted root.
func BenchmarkBundleKeyless(b *testing.B) {
	env := sigstoretest.Start(b)
	raw := testsign.Keyless(b, env, "artifact A")
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	id, err := NewIdentity(issuer, "", san, "")
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Material: testsign.TrustedRoot(b, env, nil)}
	art := Artifact{SHA256: sum("artifact A")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(raw, art, Signer{Identity: id}, opts); err != nil {
			b.Fatal(err)
		}
	}
}
