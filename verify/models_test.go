package verify

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/localmodel"
	"github.com/trustgate/trustgate/oms/omstest"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
)

// A verified SBOM that lists a denied package at its top level, under no
// component (as syft lists packages), is denied by the deny list like one
// nested in a component; the same SBOM without it passes.
func TestTopLevelSBOMPackageDenied(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	clean := fx.sbom
	fx.sbom = strings.Replace(fx.sbom, `"components":[`, `"components":[{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi/litellm@1.82.7"},`, 1)
	if fx.sbom == clean {
		t.Fatal("the fixture's SBOM has no components list")
	}
	r := Check(fx.deployment(t, Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}))
	if r.Allowed || !slices.Equal(denials(r), []string{"sbom sbom.deny[0]"}) {
		t.Fatalf("allowed=%v denials %q, want only the SBOM's top-level litellm denied", r.Allowed, denials(r))
	}
	fx.sbom = clean
	if r := Check(fx.deployment(t, Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)})); !r.Allowed {
		t.Fatalf("the clean SBOM is denied: %q", denials(r))
	}
}

// modelFixture is the deployment fixture with a local model folder whose
// policy entry takes an OMS signature by "publisher", and remote models
// bound to their providers.
type modelFixture struct {
	deployFixture
	publisher *attest.Key
	dir       string // the manifest's folder
	spec      stack.Model
	sig       []byte
}

func newModelFixture(t *testing.T) *modelFixture {
	t.Helper()
	fx := &modelFixture{deployFixture: newDeployFixture(t, "1.82.6"), dir: t.TempDir()}
	fx.publisher, _ = attest.GenerateKey(attest.ECDSAP256)
	pub, _ := fx.publisher.MarshalPublic()
	model := filepath.Join(fx.dir, "models", "tiny")
	for name, content := range map[string]string{"config.json": `{"layers": 2}`, "weights/model.safetensors": "weights", "tokenizer.json": "{}"} {
		p := filepath.Join(model, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fx.sig, _ = omstest.ModelSignature(t, model, fx.publisher, "model.sig")
	if err := os.WriteFile(filepath.Join(model, "model.sig"), fx.sig, 0o644); err != nil {
		t.Fatal(err)
	}
	fx.spec = stack.Model{Name: "tiny", File: "models/tiny", Signature: "models/tiny/model.sig"}
	fx.policyText = strings.Replace(fx.policyText, "components:\n", `  - name: publisher
    key: |
      `+strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")+`
components:
  - name: tiny
    kind: model
    signers: {anyOf: [publisher]}
    attestations: [{type: "https://model_signing/signature/v1.0", signers: {anyOf: [publisher]}}]
  - name: gpt-4o
    kind: model
    provider: openai
    fallbacks: [backup]
`, 1)
	return fx
}

// deployment measures the model folder as gather does and adds it, with
// the remote model and the evidence given (the model's signature, read
// with it, first).
func (fx *modelFixture) deployment(t *testing.T, ev ...Evidence) Deployment {
	t.Helper()
	lm, err := localmodel.Measure(context.Background(), fx.dir, fx.spec)
	if err != nil {
		t.Fatal(err)
	}
	d := fx.deployFixture.deployment(t, append([]Evidence{{Source: "sbom", Raw: fx.bundle(t, fx.key)}}, ev...)...)
	d.Components = append(d.Components,
		Measured{Kind: "model", Name: "tiny", Digest: lm.Digest, Model: lm},
		Measured{Kind: "model", Name: "gpt-4o", Provider: "openai", Fallbacks: []string{"backup"}})
	if lm.Signed() {
		d.Evidence = append(d.Evidence, Evidence{Source: "model signature " + fx.spec.Signature, Raw: lm.Signature})
	}
	return d
}

func decision(r Report, subject string) policy.Decision {
	for _, d := range r.Decisions {
		if d.Subject == subject {
			return d
		}
	}
	return policy.Decision{}
}

// A model folder signed in the OMS format by a policy signer verifies;
// one changed, added or removed file, or a signature by someone else, is
// refused with the rule, what was expected and what was found; a model
// the policy does not name, moved to another provider or given a
// fallback the policy does not allow, is denied.
func TestModelsAreComponents(t *testing.T) {
	fx := newModelFixture(t)
	r := Check(fx.deployment(t))
	if !r.Allowed {
		t.Fatalf("the signed model does not verify: %q\n%+v", denials(r), r.Evidence)
	}
	if i := slices.IndexFunc(r.Evidence, func(e EvidenceResult) bool { return e.PredicateType == ModelSignature }); i < 0 ||
		!r.Evidence[i].Verified || !slices.Equal(r.Evidence[i].Subjects, []string{"model/tiny"}) || !slices.Equal(r.Evidence[i].Signers, []string{"publisher"}) {
		t.Fatalf("the model signature is not reported as verified for model/tiny by publisher: %+v", r.Evidence)
	}
	model := filepath.Join(fx.dir, "models", "tiny")
	write := func(rel, content string) func() {
		return func() {
			if err := os.WriteFile(filepath.Join(model, filepath.FromSlash(rel)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name   string
		change func()
		edit   func(d *Deployment)
		deny   []string
		found  string
	}{
		{name: "a changed file", change: write("weights/model.safetensors", "other weights"),
			deny: []string{"model/tiny signature", "model/tiny components[0].signers", "model/tiny components[0].attestations[0]"}, found: `"weights/model.safetensors" (signed sha256:`},
		{name: "an added file", change: write("weights/extra.py", "import os"),
			deny: []string{"model/tiny signature", "model/tiny components[0].signers", "model/tiny components[0].attestations[0]"}, found: `not signed and not ignored: "weights/extra.py"`},
		{name: "a removed file", change: func() { _ = os.Remove(filepath.Join(model, "config.json")) },
			deny: []string{"model/tiny signature", "model/tiny components[0].signers", "model/tiny components[0].attestations[0]"}, found: `not found: "config.json"`},
		{name: "a signature by a key the policy does not trust", change: func() {
			stranger, _ := attest.GenerateKey(attest.ECDSAP256)
			sig, _ := omstest.ModelSignature(t, model, stranger, "model.sig")
			write("model.sig", string(sig))()
		}, deny: []string{"model/tiny components[0].signers", "model/tiny components[0].attestations[0]"}, found: "no trusted signature"},
		{name: "the signature handed in as a bundle file, the manifest naming none", edit: func(d *Deployment) {
			lm, err := localmodel.Measure(context.Background(), fx.dir, stack.Model{Name: "tiny", File: "models/tiny"})
			if err != nil {
				t.Fatal(err)
			}
			d.Components[2] = Measured{Kind: "model", Name: "tiny", Digest: lm.Digest, Model: lm}
			d.Evidence = append(d.Evidence[:1], Evidence{Source: "file model.sig", Raw: fx.sig})
		}, deny: []string{"model/tiny components[0].signers", "model/tiny components[0].attestations[0]"}, found: "no trusted signature"},
		{name: "a model the policy does not name", edit: func(d *Deployment) {
			d.Components = append(d.Components, Measured{Kind: "model", Name: "gpt-5", Provider: "openai"})
		}, deny: []string{"model/gpt-5 default"}, found: "none"},
		{name: "a model moved to another provider", edit: func(d *Deployment) {
			d.Components[3].Provider, d.Components[3].Fallbacks = "backup", nil
		}, deny: []string{"model/gpt-4o components[1].provider"}, found: "backup"},
		{name: "a fallback the policy does not allow", edit: func(d *Deployment) {
			d.Components[3].Fallbacks = []string{"backup", "cheap"}
		}, deny: []string{"model/gpt-4o components[1].fallbacks"}, found: "cheap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := newModelFixture(t)
			model = filepath.Join(fx.dir, "models", "tiny")
			if c.change != nil {
				c.change()
			}
			d := fx.deployment(t)
			if c.edit != nil {
				c.edit(&d)
			}
			r := Check(d)
			if r.Allowed || !sameStrings(denials(r), c.deny) {
				t.Fatalf("allowed=%v denials %q, want %q", r.Allowed, denials(r), c.deny)
			}
			subject, _, _ := strings.Cut(c.deny[0], " ")
			if dec := decision(r, subject); !strings.Contains(dec.Found, c.found) || dec.Expected == "" {
				t.Fatalf("decision %+v: want found %q and what was expected", dec, c.found)
			}
		})
	}
}

// A remote model has no digest: an SBOM or a signature cannot name it,
// and only its provider binds it.
func TestRemoteModelHasNoDigest(t *testing.T) {
	fx := newModelFixture(t)
	d := fx.deployment(t)
	if !d.Components[3].Digest.IsZero() {
		t.Fatalf("a remote model measured with a digest: %+v", d.Components[3])
	}
	r := Check(d)
	if dec := decision(r, "model/gpt-4o"); !dec.Allowed {
		t.Fatalf("the remote model is denied: %+v", dec)
	}
}
