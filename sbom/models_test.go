package sbom_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/gather"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/oms/omstest"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/sbomprop"
	"github.com/trustgate/trustgate/stack"
)

// The SBOM records every model as the verifier measures it (gather): a
// remote one with its provider and fallbacks, a signed folder by the digest
// its OMS signature names, with the signature's path; policy facts read
// both back.
func TestModelsRecordedAsMeasured(t *testing.T) {
	dir := testutil.StackDir(t)
	model := filepath.Join(dir, "models", "tiny")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "weights.bin"), []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	sig, _ := omstest.ModelSignature(t, model, k, "model.sig")
	if err := os.WriteFile(filepath.Join(model, "model.sig"), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Parse("stack.yaml", dir, []byte(`apiVersion: trustgate.dev/v1
kind: Stack
metadata: {name: models}
gateway: {name: gw, path: bin/gateway}
providers:
  - {name: openai, baseURL: "https://api.openai.com/v1", credential: {env: OPENAI_API_KEY}}
  - {name: backup, baseURL: "https://backup.example.com/v1", credential: {env: BACKUP_API_KEY}}
models:
  - {name: gpt-4o, provider: openai, fallbacks: [backup]}
  - {name: tiny, file: models/tiny, signature: models/tiny/model.sig}
`))
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbom.Generate(context.Background(), s, sbom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := gather.Stack(context.Background(), s, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	measured := map[string]string{}
	for _, c := range m.Components {
		measured[c.Kind+"/"+c.Name] = c.Digest.String()
	}
	tiny := component(t, bom, "trustgate:model/tiny")
	if got := sbomprop.Get(tiny.Properties, sbomprop.Digest); got == "" || got != measured["model/tiny"] {
		t.Errorf("the SBOM records %q for the signed model, the verifier measures %q", got, measured["model/tiny"])
	}
	if sbomprop.Get(tiny.Properties, sbomprop.Signature) != "models/tiny/model.sig" || tiny.Hashes != nil {
		t.Errorf("signed model: %+v", tiny)
	}
	f, err := policy.FactsFromSBOM(bom, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var remote policy.ComponentFacts
	for _, c := range f.Components {
		if c.Kind == "model" && c.Name == "gpt-4o" {
			remote = c
		}
	}
	if remote.Provider != "openai" || !slices.Equal(remote.Fallbacks, []string{"backup"}) || remote.Digest != "" {
		t.Errorf("remote model facts %+v", remote)
	}
}
