package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/oms/omstest"
)

// failLine is the line of a verify report that denies subject ("" when
// none does).
func failLine(stdout, subject string) string {
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "FAIL" && f[1] == subject {
			return l
		}
	}
	return ""
}

// attest signs the manifest as it is now (sbom --attest), as a release
// pipeline would: what is left to refuse a change is the policy alone.
func (e verifyEnv) attest(t *testing.T, tr *transcript) {
	t.Helper()
	if code, _, stderr := tr.run("sbom", "--stack", e.stack, "-o", filepath.Join(e.dir, "sbom.cdx.json"), "--attest", "--key", e.key); code != 0 {
		t.Fatalf("sbom --attest: exit %d: %s", code, stderr)
	}
}

// The example's models are named by the policy policy init writes (the
// remote ones bound to their providers, the local one pinned) and verify;
// a model the policy does not name, a model moved to another provider, a
// fallback the policy does not list, and a changed local model file are
// each denied with the rule, what was expected and what was found, even
// when the changed manifest is signed.
func TestVerifyModels(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	code, stdout, stderr := tr.run(e.args()...)
	if code != 0 {
		t.Fatalf("the example does not verify: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, m := range []string{"model/gpt-4o-mini", "model/claude-sonnet-4-5", "model/tiny-guard"} {
		if !strings.Contains(stdout, "PASS  "+m+"\n") {
			t.Errorf("no PASS for %s:\n%s", m, stdout)
		}
	}
	policyText, err := os.ReadFile(e.policy)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(policyText), "  - name: \"gpt-4o-mini\"\n    kind: model\n") || !strings.Contains(string(policyText), "provider: \"openai\"") {
		t.Fatalf("policy init does not name the models with their providers:\n%s", policyText)
	}
	cases := []struct {
		name, file string
		edit       func(string) string
		signed     bool // the changed manifest is attested again
		subject    string
		want       []string
	}{
		{"a model the policy does not name", "stack.yaml", func(s string) string {
			return strings.Replace(s, "models:\n", "models:\n  - name: gpt-5\n    provider: openai\n", 1)
		}, true, "model/gpt-5", []string{"default: expected a components entry for model/gpt-5 (kind: model, provider: openai), found none"}},
		{"a model moved to another provider", "stack.yaml", func(s string) string {
			return strings.Replace(s, "  - name: gpt-4o-mini\n    provider: openai\n", "  - name: gpt-4o-mini\n    provider: anthropic\n", 1)
		}, true, "model/gpt-4o-mini", []string{".provider: expected openai (the provider the policy binds the model to), found anthropic"}},
		{"a fallback the policy does not list", "stack.yaml", func(s string) string {
			return strings.Replace(s, "  - name: gpt-4o-mini\n    provider: openai\n", "  - name: gpt-4o-mini\n    provider: openai\n    fallbacks: [anthropic]\n", 1)
		}, true, "model/gpt-4o-mini", []string{".fallbacks: expected no fallback, found anthropic"}},
		{"a changed local model file", "models/tiny-guard.gguf", func(s string) string { return s + "\x00" },
			false, "model/tiny-guard", []string{".digests: expected sha256:", "found sha256:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.edit(t, c.file, c.edit)
			if c.signed {
				e.attest(t, tr)
				t.Cleanup(func() { e.attest(t, tr) })
			}
			code, stdout, stderr := tr.run(e.args()...)
			line := failLine(stdout, c.subject)
			if code != cli.ExitDenied || line == "" {
				t.Fatalf("exit %d, want %s denied\n%s%s", code, c.subject, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q does not say %q", line, w)
				}
			}
			if c.signed && failLine(stdout, "manifest") != "" {
				t.Errorf("the manifest, signed again, is denied: the model's denial must come from the policy alone\n%s", stdout)
			}
		})
	}
	tr.sweep(e.key)
}

// A model folder signed in the OMS format (model_signing's layout: the
// signature model.sig inside it) by a signer the policy names for it
// verifies in verify --stack; one file changed, added or removed is
// refused, naming the file.
func TestVerifyStackSignedModel(t *testing.T) {
	tr := &transcript{t: t}
	dir := filepath.Join(t.TempDir(), "deploy")
	testutil.CopyDir(t, filepath.Dir(testutil.Example(t)), dir)
	e := verifyEnv{dir: dir, stack: filepath.Join(dir, "stack.yaml"), policy: filepath.Join(dir, "policy.yaml"), state: filepath.Join(t.TempDir(), "state.json")}
	e.sbomBundle = filepath.Join(dir, "sbom.cdx.json.bundle.json")
	e.key, e.pub = keyPair(tr, t.TempDir(), "ecdsa-p256")

	model := filepath.Join(dir, "models", "guard-llm")
	for name, content := range map[string]string{
		"config.json": `{"architectures": ["LlamaForCausalLM"]}`, "model.safetensors": "weights of the guard",
		"tokenizer/tokenizer.json": `{"vocab": {}}`,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(model, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(model, filepath.FromSlash(name)), content)
	}
	publisher, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := omstest.ModelSignature(t, model, publisher, "model.sig")
	writeFile(t, filepath.Join(model, "model.sig"), string(sig))
	e.edit(t, "stack.yaml", func(s string) string {
		return strings.Replace(s, "models:\n", "models:\n  - name: guard-llm\n    file: models/guard-llm\n    signature: models/guard-llm/model.sig\n", 1)
	})
	e.attest(t, tr)
	if code, _, stderr := tr.run("policy", "init", "--stack", e.stack, "--signer", "release="+e.pub, "-o", e.policy); code != 0 {
		t.Fatalf("policy init: exit %d: %s", code, stderr)
	}
	// The model is bound to its publisher's signature alone: no digest, no
	// SBOM attestation pins its files.
	pub, err := publisher.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	editPolicy(t, e.policy, func(doc map[string]any) {
		doc["signers"] = append(doc["signers"].([]any), map[string]any{"name": "publisher", "key": string(pub)})
		for _, c := range doc["components"].([]any) {
			if m := c.(map[string]any); m["name"] == "guard-llm" {
				delete(m, "digests")
				delete(m, "attestations")
				m["signers"] = map[string]any{"anyOf": []any{"publisher"}}
			}
		}
	})
	if code, _, stderr := tr.run("policy", "sign", e.policy, "--key", e.key); code != 0 {
		t.Fatalf("policy sign: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := tr.run(e.args()...)
	if code != 0 || !strings.Contains(stdout, "PASS  model/guard-llm\n") ||
		!strings.Contains(stdout, `evidence  model signature models/guard-llm/model.sig: model signature signed by publisher, about model/guard-llm`) {
		t.Fatalf("the signed model does not verify: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, c := range []struct {
		name, file string
		edit       func(string) string
		want       string
	}{
		{"a changed file", "models/guard-llm/model.safetensors", func(s string) string { return s + "!" }, `1 changed: "model.safetensors"`},
		{"an added file", "models/guard-llm/config.json", nil, `not signed and not ignored: "tokenizer/added.py"`},
		{"a removed file", "models/guard-llm/tokenizer/tokenizer.json", nil, `not found: "tokenizer/tokenizer.json"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			switch c.name {
			case "an added file":
				p := writeFile(t, filepath.Join(model, "tokenizer", "added.py"), "import os")
				t.Cleanup(func() { _ = os.Remove(p) })
			case "a removed file":
				p := filepath.Join(dir, c.file)
				orig, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { writeFile(t, p, string(orig)) })
			default:
				e.edit(t, c.file, c.edit)
			}
			code, stdout, stderr := tr.run(e.args()...)
			line := failLine(stdout, "model/guard-llm")
			if code != cli.ExitDenied || !strings.Contains(line, "signature: expected the files its model signature lists (signed by publisher)") || !strings.Contains(line, c.want) {
				t.Fatalf("exit %d, want model/guard-llm denied by its signature, naming %s\n%s%s", code, c.want, stdout, stderr)
			}
		})
	}
	if code, stdout, _ := tr.run(e.args()...); code != 0 {
		t.Fatalf("the model put back does not verify: exit %d\n%s", code, stdout)
	}
	tr.sweep(e.key)
}

// editPolicy rewrites a policy file through f (its comments are lost).
func editPolicy(t *testing.T, path string, f func(doc map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	f(doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(out))
}
