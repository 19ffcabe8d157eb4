package policy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/policy"
)

// The published schema, schema/policy.schema.json, accepts every policy
// the loader accepts in the tests, and refuses the mistakes its structure
// can express.
func TestPublishedSchema(t *testing.T) {
	root := testutil.RepoRoot(t)
	s := testutil.JSONSchema(t, filepath.Join(root, "schema"), "https://trustgate.dev/schema/policy-v1.schema.json")
	validate := func(t *testing.T, text []byte) error {
		var doc any
		if err := yaml.Unmarshal(text, &doc); err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return testutil.ValidateJSON(s, js)
	}
	good, err := os.ReadFile("testdata/policies/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, good); err != nil {
		t.Errorf("good.yaml: %v", err)
	}
	initText, err := policy.Init("demo", policy.Facts{
		Now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		Components: []policy.ComponentFacts{
			{Kind: "gateway", Name: "gw", Role: "gateway", Digest: "sha256:" + strings.Repeat("1", 64)},
			{Kind: "plugin", Name: "py", Role: "guardrail", Digest: "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
			{Kind: "model", Name: "gpt-4o", Provider: "openai", Fallbacks: []string{"backup"}},
			{Kind: "model", Name: "tiny-guard", Digest: "sha256:" + strings.Repeat("2", 64)},
		},
		Providers: []policy.ProviderFacts{{Name: "openai", BaseURL: "https://api.openai.com/v1", Credential: "env:OPENAI_API_KEY"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, initText); err != nil {
		t.Errorf("policy init's output: %v", err)
	}
	cases, _ := filepath.Glob("testdata/cases/*.yaml")
	for _, f := range cases {
		if strings.HasSuffix(f, ".golden.yaml") {
			continue
		}
		data, _ := os.ReadFile(f)
		var c struct{ Policy string }
		if err := yaml.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		if err := validate(t, []byte(c.Policy)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, name := range []string{
		"unknown-field", "wrong-kind", "bad-mode", "unknown-hook", "http-base-url", "bad-digest",
		"unknown-required-field", "identity-exact-and-regexp", "purl-with-version", "expires-not-rfc3339",
		"key-not-pem", "unanchored-subject-regexp", "unanchored-issuer-regexp", "no-digests-or-signers",
		"credential-no-host", "provider-on-plugin", "model-fallbacks-without-provider", "model-no-provider-digests-or-signers",
		"model-fallback-twice",
	} {
		data, err := os.ReadFile(filepath.Join("testdata/policies/bad", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(t, data); err == nil {
			t.Errorf("%s: the schema accepted it", name)
		}
	}
}
