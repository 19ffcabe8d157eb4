package verify

import (
	"testing"
)

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
