package policy

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// FuzzParse: the policy parser takes files from anyone who can open a pull
// request; it never panics, and what it accepts evaluates.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/policies/good.yaml", "testdata/example/policy.yaml", "testdata/policies/bad/cel-not-bool.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: trustgate.dev/v1\nkind: Policy\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, Options{})
		if err != nil {
			return
		}
		_ = Evaluate(p, Facts{Now: time.Unix(0, 0), Components: []ComponentFacts{{Kind: "plugin", Name: "x", Packages: []string{"pkg:pypi/litellm@1.82.7"}}}})
	})
}

// FuzzCEL: CEL rules run over SBOMs and statements from outside. Any
// expression either fails to compile or evaluates, over any SBOM, to a
// decision within the cost limit; nothing panics.
func FuzzCEL(f *testing.F) {
	sbom, err := os.ReadFile("testdata/example/sbom.cdx.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(`component.packages.all(p, p.type != "npm")`, sbom)
	f.Add(`has(sbom.serialNumber) && sbom.serialNumber.startsWith("urn:uuid:")`, []byte(`{"serialNumber": 7}`))
	f.Add(`sbom.components.exists(c, c.name == "litellm")`, []byte(`{"components": [{"name": null}]}`))
	f.Add(`size(statement) == 0`, []byte(`[]`))
	f.Fuzz(func(t *testing.T, expr string, sbomJSON []byte) {
		prg, err := compileCEL(expr)
		if err != nil {
			return
		}
		var doc map[string]any
		_ = json.Unmarshal(sbomJSON, &doc)
		p := &Policy{expires: time.Unix(1<<40, 0), SBOM: SBOMRules{Rules: []CELRule{{Name: "fuzz", Expression: expr, program: prg}}},
			Components: []Component{{Kind: "plugin", Name: "x"}}}
		r := Evaluate(p, Facts{Now: time.Unix(0, 0), SBOM: doc, Components: []ComponentFacts{{Kind: "plugin", Name: "x", Packages: []string{"pkg:npm/a@1"}, SBOM: true}}})
		if len(r.Decisions) != 1 {
			t.Fatalf("%d decisions", len(r.Decisions))
		}
	})
}

// FuzzParsePurl: purls come from SBOMs. A purl that parses names one
// package: printing it back and parsing again gives the same type,
// namespace, name and version.
func FuzzParsePurl(f *testing.F) {
	for _, s := range []string{"pkg:pypi/litellm@1.82.7", "pkg:npm/%40scope/x@1?a=b", "pkg:pypi/litellm/@1", "pkg:pypi/x@1?a=b&a=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePurl(s)
		if err != nil {
			return
		}
		q, err := ParsePurl(p.ToString())
		if err != nil {
			return // the library's own spelling may be stricter than ours
		}
		if p.Type != q.Type || p.Namespace != q.Namespace || p.Name != q.Name || p.Version != q.Version {
			t.Fatalf("%q reads as %+v, its canonical form as %+v", s, p, q)
		}
	})
}

// FuzzDecodeSBOM: SBOM predicates come from attestations; decoding never
// panics, and what it accepts gives the same components to both readers.
func FuzzDecodeSBOM(f *testing.F) {
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","purl":"pkg:pypi/x@1"}]}`))
	f.Add([]byte(`{"Components":[{"name":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		bom, m, err := DecodeSBOM(data)
		if err != nil {
			return
		}
		list, _ := m["components"].([]any)
		n := 0
		if bom.Components != nil {
			n = len(*bom.Components)
		}
		if len(list) != n {
			t.Fatalf("the BOM has %d components, its map %d", n, len(list))
		}
	})
}
