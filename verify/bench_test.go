package verify

import (
	"testing"
)

// BenchmarkCheckDeployment: the deployment check (policy, two components,
// one SBOM attestation) once everything is measured.
func BenchmarkCheckDeployment(b *testing.B) {
	fx := newDeployFixture(b, "1.82.6")
	d := fx.deployment(b, Evidence{Source: "b", Raw: fx.bundle(b, fx.key)})
	b.ReportAllocs()
	for b.Loop() {
		if r := Check(d); !r.Allowed {
			b.Fatal("denied")
		}
	}
}
