package sbom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/sbomprop"
	"github.com/trustgate/trustgate/stack"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var (
	exampleOnce sync.Once
	exampleBOM  []byte
	exampleErr  error
)

// exampleSBOM inventories the example deployment once per test binary.
func exampleSBOM(t *testing.T) (*stack.Stack, []byte) {
	t.Helper()
	s, err := stack.Load(testutil.Example(t))
	if err != nil {
		t.Fatal(err)
	}
	exampleOnce.Do(func() {
		var bom *cdx.BOM
		bom, exampleErr = sbom.Generate(context.Background(), s, sbom.Options{})
		if exampleErr == nil {
			exampleBOM, exampleErr = sbom.Marshal(bom, sbom.DefaultSpecVersion)
		}
	})
	if exampleErr != nil {
		t.Fatal(exampleErr)
	}
	return s, exampleBOM
}

// generate inventories s and encodes it as the given CycloneDX version.
func generate(t *testing.T, s *stack.Stack, opts sbom.Options, v cdx.SpecVersion) []byte {
	t.Helper()
	bom, err := sbom.Generate(context.Background(), s, opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := sbom.Marshal(bom, v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func decode(t *testing.T, data []byte) *cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	return &bom
}

func cycloneDXSchema(t *testing.T, version string) func([]byte) error {
	s := testutil.JSONSchema(t, "testdata/cyclonedx-schema", "http://cyclonedx.org/schema/bom-"+version+".schema.json")
	return func(b []byte) error { return testutil.ValidateJSON(s, b) }
}

func TestExampleSBOMIsValidCycloneDX16(t *testing.T) {
	_, data := exampleSBOM(t)
	validate := cycloneDXSchema(t, "1.6")
	if err := validate(data); err != nil {
		t.Fatalf("the example SBOM does not validate against CycloneDX 1.6: %v", err)
	}
	if v := decode(t, data).SpecVersion; v != cdx.SpecVersion1_6 {
		t.Errorf("specVersion = %s, want 1.6", v)
	}

	// The validator must be able to say no, or the check above proves nothing.
	broken := bytes.Replace(data, []byte(`"type": "container"`), []byte(`"type": "spaceship"`), 1)
	if bytes.Equal(broken, data) {
		t.Fatal("test setup: no container component to break")
	}
	if validate(broken) == nil {
		t.Error("the schema accepted a component of type spaceship")
	}
}

func TestOtherSpecVersions(t *testing.T) {
	s, _ := exampleSBOM(t)
	data15 := generate(t, s, sbom.Options{}, cdx.SpecVersion1_5)
	if err := cycloneDXSchema(t, "1.5")(data15); err != nil {
		t.Errorf("1.5 output does not validate: %v", err)
	}
	data17 := generate(t, s, sbom.Options{}, cdx.SpecVersion1_7)
	if v := decode(t, data17).SpecVersion; v != cdx.SpecVersion1_7 {
		t.Errorf("specVersion = %s, want 1.7", v)
	}
}

// component finds a top-level component by bom-ref.
func component(t *testing.T, bom *cdx.BOM, ref string) cdx.Component {
	t.Helper()
	for _, c := range *bom.Components {
		if c.BOMRef == ref {
			return c
		}
	}
	t.Fatalf("no component %q", ref)
	return cdx.Component{}
}

func hash(c cdx.Component, alg cdx.HashAlgorithm) string {
	if c.Hashes == nil {
		return ""
	}
	for _, h := range *c.Hashes {
		if h.Algorithm == alg {
			return h.Value
		}
	}
	return ""
}

func prop(c cdx.Component, name string) string {
	if c.Properties == nil {
		return ""
	}
	for _, p := range *c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// sumTool runs sha256sum or sha512sum, the way a user would check.
func sumTool(t *testing.T, tool, file string) string {
	t.Helper()
	out, err := exec.Command(tool, file).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", tool, file, err)
	}
	return strings.Fields(string(out))[0]
}

func TestComponentHashesMatchSHA256Sum(t *testing.T) {
	s, data := exampleSBOM(t)
	bom := decode(t, data)
	for _, comp := range s.Components() {
		c := component(t, bom, "trustgate:"+comp.Kind+"/"+comp.Name)
		if got := prop(c, sbomprop.Role); got != comp.Role {
			t.Errorf("%s: role %q, want %q", comp.Name, got, comp.Role)
		}
		file := filepath.Join(s.Source.Dir, comp.Path)
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.IsDir() {
			// A directory is named by its h1 tree digest; check it with
			// x/mod's own implementation.
			want, err := dirhash.HashDir(file, "", dirhash.Hash1)
			if err != nil {
				t.Fatal(err)
			}
			if got := prop(c, sbomprop.Digest); got != want {
				t.Errorf("%s: tree digest %s, want %s", comp.Name, got, want)
			}
			continue
		}
		if got, want := hash(c, cdx.HashAlgoSHA256), sumTool(t, "sha256sum", file); got != want {
			t.Errorf("%s: SHA-256 %s, sha256sum says %s", comp.Name, got, want)
		}
		if got, want := hash(c, cdx.HashAlgoSHA512), sumTool(t, "sha512sum", file); got != want {
			t.Errorf("%s: SHA-512 %s, sha512sum says %s", comp.Name, got, want)
		}
		if got, want := prop(c, sbomprop.Digest), "sha256:"+hash(c, cdx.HashAlgoSHA256); got != want {
			t.Errorf("%s: %s = %s, want %s", comp.Name, sbomprop.Digest, got, want)
		}
	}
	model := component(t, bom, "trustgate:model/tiny-guard")
	if got, want := hash(model, cdx.HashAlgoSHA256), sumTool(t, "sha256sum", filepath.Join(s.Source.Dir, "models/tiny-guard.gguf")); got != want {
		t.Errorf("model SHA-256 %s, sha256sum says %s", got, want)
	}
	manifest := bom.Metadata.Component
	if got, want := hash(*manifest, cdx.HashAlgoSHA256), sumTool(t, "sha256sum", s.Source.File); got != want {
		t.Errorf("deployment SHA-256 %s, sha256sum of the manifest says %s", got, want)
	}
}

func purls(c cdx.Component) []string {
	var out []string
	if c.Components != nil {
		for _, p := range *c.Components {
			out = append(out, p.PackageURL)
		}
	}
	return out
}

func TestFindsPackagesInsideComponents(t *testing.T) {
	_, data := exampleSBOM(t)
	bom := decode(t, data)
	tests := []struct {
		ref   string
		purls []string
	}{
		// The Go plugin links gopkg.in/yaml.v3; syft reads it from the
		// binary's build information.
		{"trustgate:plugin/guardrail", []string{"pkg:golang/gopkg.in/yaml.v3@v3.0.1", "pkg:golang/github.com/trustgate/trustgate"}},
		// The Python plugin's site-packages, from their dist-info.
		{"trustgate:plugin/pii-redactor", []string{"pkg:pypi/litellm@1.82.6", "pkg:pypi/openai@1.109.1", "pkg:pypi/httpx@0.28.1", "pkg:pypi/pydantic@2.11.7"}},
		// The image: Alpine packages and the Go binary inside it.
		{"trustgate:image/gateway-image", []string{"pkg:apk/alpine/musl@1.2.5-r10?arch=x86_64&distro=alpine-3.22.2"}},
	}
	for _, tt := range tests {
		got := purls(component(t, bom, tt.ref))
		for _, want := range tt.purls {
			if !slices.Contains(got, want) {
				t.Errorf("%s: no package %s among %v", tt.ref, want, got)
			}
		}
	}
	// stdlib is found in every Go binary, with the Go version that built it.
	if !slices.ContainsFunc(purls(component(t, bom, "trustgate:gateway/trustgate-gateway")), func(p string) bool {
		return strings.HasPrefix(p, "pkg:golang/stdlib@")
	}) {
		t.Error("gateway: no Go standard library package")
	}
}

func TestSameInputSameBytes(t *testing.T) {
	s, first := exampleSBOM(t)
	second := generate(t, s, sbom.Options{}, sbom.DefaultSpecVersion)
	if !bytes.Equal(first, second) {
		t.Fatal("two runs on the same input gave different bytes")
	}
	if decode(t, first).Metadata.Timestamp != "" {
		t.Error("a timestamp was written though none was asked for")
	}

	// The same files in another folder give the same bytes too: nothing of
	// the machine's paths goes into the SBOM.
	other := t.TempDir()
	testutil.CopyDir(t, s.Source.Dir, other)
	if bytes.Contains(first, []byte(s.Source.Dir)) {
		t.Errorf("the SBOM contains the absolute folder %s", s.Source.Dir)
	}
	moved, err := stack.Load(filepath.Join(other, "stack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	third := generate(t, moved, sbom.Options{}, sbom.DefaultSpecVersion)
	if !bytes.Equal(first, third) {
		t.Error("the same deployment in another folder gave different bytes")
	}
}

func TestSerialNumberFollowsContent(t *testing.T) {
	s, first := exampleSBOM(t)
	stamped := generate(t, s, sbom.Options{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, sbom.DefaultSpecVersion)
	a, b := decode(t, first), decode(t, stamped)
	if b.Metadata.Timestamp != "2026-01-02T03:04:05Z" {
		t.Errorf("timestamp = %q", b.Metadata.Timestamp)
	}
	if a.SerialNumber == b.SerialNumber {
		t.Error("different content kept the same serial number")
	}
	if !strings.HasPrefix(a.SerialNumber, "urn:uuid:") {
		t.Errorf("serial number %q is not a URN UUID", a.SerialNumber)
	}
}

func TestDependencyGraph(t *testing.T) {
	_, data := exampleSBOM(t)
	bom := decode(t, data)
	deps := map[string][]string{}
	refs := map[string]bool{bom.Metadata.Component.BOMRef: true}
	var collect func([]cdx.Component)
	collect = func(cs []cdx.Component) {
		for _, c := range cs {
			refs[c.BOMRef] = true
			if c.Components != nil {
				collect(*c.Components)
			}
		}
	}
	collect(*bom.Components)
	for _, s := range *bom.Services {
		refs[s.BOMRef] = true
	}
	for _, d := range *bom.Dependencies {
		if !refs[d.Ref] {
			t.Errorf("dependency names unknown ref %q", d.Ref)
		}
		for _, to := range *d.Dependencies {
			if !refs[to] {
				t.Errorf("%s depends on unknown ref %q", d.Ref, to)
			}
		}
		deps[d.Ref] = *d.Dependencies
	}
	want := map[string][]string{
		"trustgate:deployment/example-gateway-deployment": {"trustgate:gateway/trustgate-gateway", "trustgate:image/gateway-image", "trustgate:model/tiny-guard"},
		"trustgate:gateway/trustgate-gateway":             {"trustgate:plugin/guardrail", "trustgate:plugin/pii-redactor", "trustgate:agent/audit-agent", "trustgate:service/openai", "trustgate:service/anthropic"},
		"trustgate:model/gpt-4o-mini":                     {"trustgate:service/openai"},
	}
	for from, tos := range want {
		for _, to := range tos {
			if !slices.Contains(deps[from], to) {
				t.Errorf("%s does not depend on %s (has %v)", from, to, deps[from])
			}
		}
	}
	// Every plugin depends on each package found inside it.
	guardrail := component(t, bom, "trustgate:plugin/guardrail")
	for _, p := range *guardrail.Components {
		if !slices.Contains(deps[guardrail.BOMRef], p.BOMRef) {
			t.Errorf("guardrail does not depend on its package %s", p.BOMRef)
		}
	}
}

func TestProvidersAreServicesNamedNotValued(t *testing.T) {
	_, data := exampleSBOM(t)
	bom := decode(t, data)
	var got []string
	for _, s := range *bom.Services {
		if s.Authenticated == nil || !*s.Authenticated || s.CrossesTrustBoundary == nil || !*s.CrossesTrustBoundary {
			t.Errorf("service %s should be authenticated and cross a trust boundary", s.Name)
		}
		got = append(got, s.Name+" "+(*s.Endpoints)[0]+" "+(*s.Properties)[0].Value)
	}
	want := []string{
		"openai https://api.openai.com/v1 env:OPENAI_API_KEY",
		"anthropic https://api.anthropic.com file:/run/secrets/anthropic-api-key",
	}
	if !slices.Equal(got, want) {
		t.Errorf("services = %q, want %q", got, want)
	}
}

func TestModelCard(t *testing.T) {
	_, data := exampleSBOM(t)
	m := component(t, decode(t, data), "trustgate:model/tiny-guard")
	if m.Type != cdx.ComponentTypeMachineLearningModel {
		t.Errorf("type = %s", m.Type)
	}
	if m.ModelCard == nil || m.ModelCard.ModelParameters == nil || m.ModelCard.ModelParameters.Task != "text-classification" {
		t.Fatalf("model card missing or without task: %+v", m.ModelCard)
	}
	if c := m.ModelCard.Considerations; c == nil || c.TechnicalLimitations == nil || len(*c.TechnicalLimitations) != 1 {
		t.Errorf("model card considerations = %+v", c)
	}
}

func TestNoSecretsFromTheEnvironment(t *testing.T) {
	// The credentials exist where the SBOM runs; it must name, not copy, them.
	const secret = "sk-proj-THISISATESTSECRETthatmustneverleak0123456789"
	t.Setenv("OPENAI_API_KEY", secret)
	s, _ := exampleSBOM(t)
	bom, err := sbom.Generate(context.Background(), s, sbom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(bom)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(secret)) {
		t.Fatal("the SBOM contains the value of OPENAI_API_KEY")
	}
}

func BenchmarkGenerateExample(b *testing.B) {
	s, err := stack.Load(testutil.Example(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		bom, err := sbom.Generate(ctx, s, sbom.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sbom.Marshal(bom, sbom.DefaultSpecVersion); err != nil {
			b.Fatal(err)
		}
	}
}
