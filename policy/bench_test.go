package policy

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// exampleInputs loads the example deployment's policy and the facts its SBOM
// gives, with the policy's expiry as the clock's upper bound.
func exampleInputs(tb testing.TB, extra string) (*Policy, Facts) {
	tb.Helper()
	text, err := os.ReadFile("testdata/example/policy.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := Parse("policy.yaml", append(text, extra...), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/example/sbom.cdx.json")
	if err != nil {
		tb.Fatal(err)
	}
	var bom cdx.BOM
	if err := json.Unmarshal(raw, &bom); err != nil {
		tb.Fatal(err)
	}
	f, err := FactsFromSBOM(&bom, p.ExpiresAt().Add(-time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	f.IgnoreSignaturesUnsafe = true
	return p, f
}

// celRules adds two CEL rules to the example policy's sbom section.
const celRules = `  rules:
    - name: no-npm-in-plugins
      kinds: [plugin]
      expression: component.packages.all(p, p.type != "npm")
    - name: sbom-has-serial
      expression: has(sbom.serialNumber) && sbom.serialNumber.startsWith("urn:uuid:")
`

func TestExamplePolicyPassesExampleSBOM(t *testing.T) {
	for _, extra := range []string{"", celRules} {
		p, f := exampleInputs(t, extra)
		if r := Evaluate(p, f); !r.Allowed {
			t.Fatalf("the example's own policy denies its SBOM: %+v", r)
		}
	}
}

// BenchmarkEvaluateExample: the example deployment's policy (from policy
// init) against the facts from its SBOM, with and without CEL rules.
func BenchmarkEvaluateExample(b *testing.B) {
	for _, c := range []struct{ name, extra string }{{"init-policy", ""}, {"with-cel-rules", celRules}} {
		b.Run(c.name, func(b *testing.B) {
			p, f := exampleInputs(b, c.extra)
			b.ReportAllocs()
			for b.Loop() {
				if r := Evaluate(p, f); !r.Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}
