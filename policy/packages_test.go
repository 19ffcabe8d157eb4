package policy

import (
	"errors"
	"slices"
	"testing"

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
