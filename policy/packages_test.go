package policy

import (
	"errors"
	"slices"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

func TestParsePurl(t *testing.T) {
	for _, ok := range []string{
		"pkg:pypi/litellm@1.82.7",
		"pkg:npm/%40scope/left-pad@1.0.0",
		"pkg:golang/github.com/acme/x@v1.0.0",
		"pkg:deb/debian/openssl@3.0.11?arch=amd64&distro=debian-12",
		"pkg:PYPI/litellm@1.82.7",
	} {
		if _, err := ParsePurl(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "litellm", "pkg:", "pkg:pypi", "pkg:pypi/",
		"pkg:pypi/litellm@1.82.7?a=b&a=c", "pkg:pypi/litellm@1.82.7?A=b&a=c",
		"pkg:pypi/litellm@1.82.7?=x", "pkg:pypi/litellm@1.82.7?a=",
		"pkg:pypi/litellm/@1.82.7", "pkg:pypi//litellm@1.82.7", "pkg:pypi/litellm@1.82.7/",
		"pkg:pypi/ns/litellm@1.82.7", "pkg:cargo/ns/serde@1.0.0",
	} {
		if p, err := ParsePurl(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, p)
		}
	}
}

func TestPackagesOfWalksEveryLevel(t *testing.T) {
	c := cdx.Component{Components: &[]cdx.Component{
		{Name: "a", PackageURL: "pkg:pypi/a@1", Components: &[]cdx.Component{
			{Name: "b", Type: cdx.ComponentTypeFile, Version: "2"},
			{Name: "c", PackageURL: "pkg:pypi/c@3", Components: &[]cdx.Component{
				{Name: "alpine", Type: cdx.ComponentTypeOS, Version: "3.20"},
			}},
		}},
	}}
	purls, unidentified, systems := PackagesOf(c)
	if !slices.Equal(purls, []string{"pkg:pypi/a@1", "pkg:pypi/c@3"}) || !slices.Equal(unidentified, []string{"b@2"}) || !slices.Equal(systems, []string{"alpine@3.20"}) {
		t.Fatalf("purls %q unidentified %q systems %q", purls, unidentified, systems)
	}
}

func TestDecodeSBOMOneReading(t *testing.T) {
	good := `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","purl":"pkg:pypi/x@1","components":[{"type":"library","name":"y"}]}],"x-vendor":{"Anything":1}}`
	bom, m, err := DecodeSBOM([]byte(good))
	if err != nil || bom.Components == nil || len(*bom.Components) != 1 || m["components"] == nil {
		t.Fatalf("a canonical SBOM: %v", err)
	}
	for name, doc := range map[string]string{
		"top-level key":      `{"bomFormat":"CycloneDX","specVersion":"1.6","Components":[{"type":"library","name":"x"}]}`,
		"nested key":         `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","PURL":"pkg:pypi/x@1"}]}`,
		"both spellings":     `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[],"Components":[{"type":"library","name":"x"}]}`,
		"metadata component": `{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"Component":{"type":"application","name":"d"}}}`,
	} {
		if _, _, err := DecodeSBOM([]byte(doc)); !errors.Is(err, ErrSBOM) {
			t.Errorf("%s: got %v, want ErrSBOM", name, err)
		}
	}
}

// The deny list applies to every component of an SBOM: a denied package
// listed at the top level (beside trustgate's components, as syft lists
// packages), one nested in it, the metadata component's own purl, and a
// trustgate component's own purl are each denied; the same SBOM without
// them passes.
func TestDenyListCoversTopLevelComponents(t *testing.T) {
	deny := `apiVersion: trustgate.dev/v1
kind: Policy
metadata: {name: example}
version: 1
expires: "2099-01-01T00:00:00Z"
components:
  - name: guardrail
    kind: plugin
    digests: ["sha256:2222222222222222222222222222222222222222222222222222222222222222"]
sbom:
  deny:
    - purl: pkg:pypi/litellm
      versions: ">=1.82.7,<=1.82.8"
`
	p, err := Parse("policy.yaml", []byte(deny), Options{})
	if err != nil {
		t.Fatal(err)
	}
	plugin := func(purl string) cdx.Component {
		return cdx.Component{Name: "guardrail", PackageURL: purl, Properties: &[]cdx.Property{
			{Name: "trustgate:kind", Value: "plugin"},
			{Name: "trustgate:digest", Value: "sha256:2222222222222222222222222222222222222222222222222222222222222222"},
		}, Components: &[]cdx.Component{{Name: "httpx", Version: "0.28.1", PackageURL: "pkg:pypi/httpx@0.28.1"}}}
	}
	bad := cdx.Component{Name: "litellm", Version: "1.82.7", PackageURL: "pkg:pypi/litellm@1.82.7"}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		bom     cdx.BOM
		subject string
	}{
		{"top level", cdx.BOM{Components: &[]cdx.Component{plugin(""), bad}}, "sbom"},
		{"nested under a top-level package", cdx.BOM{Components: &[]cdx.Component{plugin(""),
			{Name: "wheel", PackageURL: "pkg:pypi/wheel@0.45.0", Components: &[]cdx.Component{bad}}}}, "sbom"},
		{"the metadata component", cdx.BOM{Metadata: &cdx.Metadata{Component: &bad}, Components: &[]cdx.Component{plugin("")}}, "sbom"},
		{"a component's own purl", cdx.BOM{Components: &[]cdx.Component{plugin(bad.PackageURL)}}, "plugin/guardrail"},
	}
	for _, c := range cases {
		f, err := FactsFromSBOM(&c.bom, now)
		if err != nil {
			t.Fatal(err)
		}
		r := Evaluate(p, f)
		var denied []string
		for _, d := range r.Decisions {
			if !d.Allowed {
				denied = append(denied, d.Subject+" "+d.Rule+" "+d.Found)
			}
		}
		if r.Allowed || !slices.Equal(denied, []string{c.subject + " sbom.deny[0] pkg:pypi/litellm@1.82.7"}) {
			t.Errorf("%s: allowed=%v, denied %q; want only %s denied by sbom.deny[0]", c.name, r.Allowed, denied, c.subject)
		}
	}
	clean := cdx.BOM{Components: &[]cdx.Component{plugin(""), {Name: "litellm", Version: "1.82.6", PackageURL: "pkg:pypi/litellm@1.82.6"}}}
	f, err := FactsFromSBOM(&clean, now)
	if err != nil {
		t.Fatal(err)
	}
	if r := Evaluate(p, f); !r.Allowed {
		t.Errorf("a clean SBOM is denied: %+v", r.Decisions)
	}
}
