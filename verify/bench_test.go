package verify

import (
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/sigstoretest"
)

// BenchmarkBundleKey: one key-signed attestation verified.
func BenchmarkBundleKey(b *testing.B) {
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	raw := signPayloadTB(b, k, statementJSON(attest.StatementType, sum("artifact A"), attest.PredicateCycloneDX))
	art := Artifact{SHA256: sum("artifact A")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Bundle(raw, art, Signer{Key: k.Public()}, Options{PredicateType: attest.PredicateCycloneDX}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBundleKeyless: one keyless attestation (Fulcio certificate,
// Rekor v2 inclusion proof and checkpoint, RFC 3161 timestamp) verified
// offline against a trusted root.
func BenchmarkBundleKeyless(b *testing.B) {
	env := sigstoretest.Start(b)
	raw := keylessFixtureTB(b, env, "artifact A")
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	id, err := NewIdentity(issuer, "", san, "")
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Material: rootWithTB(b, env)}
	art := Artifact{SHA256: sum("artifact A")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Bundle(raw, art, Signer{Identity: id}, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckDeployment: the deployment check (policy, two components,
// one SBOM attestation) once everything is measured.
func BenchmarkCheckDeployment(b *testing.B) {
	fx := newDeployFixtureTB(b, "1.82.6")
	d := fx.deploymentTB(b, Evidence{Source: "b", Raw: fx.bundleTB(b, fx.key)})
	b.ReportAllocs()
	for b.Loop() {
		if r := Check(d); !r.Allowed {
			b.Fatal("denied")
		}
	}
}
