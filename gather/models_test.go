package gather

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/oms/omstest"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verify"

	"github.com/trustgate/trustgate/internal/testutil"
)

// Every model of the stack is measured: a remote one with its provider and
// fallbacks and no digest, a local file by its SHA-256, a local folder
// signed in the OMS format as its signature serializes it (the digest its
// subject names), and that signature is handed in as evidence, read once.
func TestStackMeasuresModels(t *testing.T) {
	dir := testutil.StackDir(t)
	model := filepath.Join(dir, "models", "tiny")
	for name, content := range map[string]string{"config.json": "{}", "weights.bin": "weights"} {
		if err := os.MkdirAll(model, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(model, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	sig, signed := omstest.ModelSignature(t, model, k, "model.sig")
	if err := os.WriteFile(filepath.Join(model, "model.sig"), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := `apiVersion: trustgate.dev/v1
kind: Stack
metadata:
  name: models
gateway:
  name: gw
  path: bin/gateway
providers:
  - name: openai
    baseURL: https://api.openai.com/v1
    credential: {env: OPENAI_API_KEY}
  - name: backup
    baseURL: https://backup.example.com/v1
    credential: {env: BACKUP_API_KEY}
models:
  - name: gpt-4o
    provider: openai
    fallbacks: [backup]
  - name: guard
    file: models/m.gguf
  - name: tiny
    file: models/tiny
    signature: models/tiny/model.sig
`
	s, err := stack.Parse("stack.yaml", dir, []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Stack(context.Background(), s, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]verify.Measured{}
	for _, c := range m.Components {
		if c.Kind == "model" {
			models[c.Name] = c
		}
	}
	gguf, err := os.ReadFile(filepath.Join(dir, "models", "m.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if c := models["gpt-4o"]; c.Provider != "openai" || !slices.Equal(c.Fallbacks, []string{"backup"}) || !c.Digest.IsZero() || c.Model != nil {
		t.Errorf("remote model measured as %+v", c)
	}
	if c := models["guard"]; c.Digest != digest.FromBytes(gguf) || c.Model.Signed() {
		t.Errorf("local file measured as %+v", c)
	}
	if c := models["tiny"]; c.Digest.String() != "sha256:"+signed.Digest() || !c.Model.Signed() {
		t.Errorf("signed folder measured as %s, its signature names sha256:%s", c.Digest, signed.Digest())
	}
	ev, err := Attached(context.Background(), m, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 1 || ev[0].Source != "model signature models/tiny/model.sig" || string(ev[0].Raw) != string(sig) {
		t.Fatalf("evidence %+v, want the model's signature", ev)
	}
}
