package verify

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/policy"
)

var deployNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// deployFixture is a small deployment: a gateway binary and a Python plugin
// folder, a policy that pins both and wants a CycloneDX attestation signed
// by "release", and that attestation.
type deployFixture struct {
	key        *attest.Key
	policyText string
	gw, plugin digest.Digest
	manifest   digest.Digest
	sbom       string
}

// The fixture's start commands, as the manifest gives them and the SBOM
// records them.
var (
	gwArgv     = []string{"--listen", "127.0.0.1:8080"}
	pluginArgv = []string{"python3", "-m", "redactor"}
)

func newDeployFixture(t testing.TB, litellm string) deployFixture {
	t.Helper()
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	pub, _ := k.MarshalPublic()
	fx := deployFixture{
		key:      k,
		gw:       digest.FromBytes([]byte("gateway v1")),
		plugin:   digest.MustParse("h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
		manifest: digest.FromBytes([]byte("stack manifest v1")),
	}
	fx.policyText = `apiVersion: trustgate.dev/v1
kind: Policy
metadata: {name: deploy}
version: 1
expires: "2027-01-01T00:00:00Z"
signers:
  - name: release
    key: |
      ` + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ") + `
components:
  - name: gw
    kind: gateway
    role: gateway
    digests: ["` + fx.gw.String() + `"]
    attestations: [{type: cyclonedx, signers: {anyOf: [release]}}]
  - name: redactor
    kind: plugin
    role: guardrail
    digests: ["` + fx.plugin.String() + `"]
    signers: {anyOf: [release]}
    attestations: [{type: cyclonedx}]
sbom:
  deny:
    - {purl: pkg:pypi/litellm, versions: ">=1.82.7,<=1.82.8"}
`
	fx.sbom = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,
 "metadata":{"component":{"type":"application","name":"deploy","bom-ref":"trustgate:deployment/deploy","properties":[{"name":"trustgate:kind","value":"deployment"},{"name":"trustgate:digest","value":"` + fx.manifest.String() + `"}]}},
 "components":[
 {"type":"application","name":"gw","bom-ref":"trustgate:gateway/gw","properties":[{"name":"trustgate:kind","value":"gateway"},{"name":"trustgate:digest","value":"` + fx.gw.String() + `"},{"name":"trustgate:command","value":"[\"--listen\",\"127.0.0.1:8080\"]"}]},
 {"type":"application","name":"redactor","bom-ref":"trustgate:plugin/redactor","properties":[{"name":"trustgate:kind","value":"plugin"},{"name":"trustgate:digest","value":"` + fx.plugin.String() + `"},{"name":"trustgate:command","value":"[\"python3\",\"-m\",\"redactor\"]"}],
  "components":[{"type":"library","name":"litellm","version":"` + litellm + `","purl":"pkg:pypi/litellm@` + litellm + `"}]}]}`
	return fx
}

func (fx deployFixture) bundle(t testing.TB, k *attest.Key) []byte {
	t.Helper()
	st, err := attest.NewStatement(attest.PredicateCycloneDX, []byte(fx.sbom),
		attest.Subject{Name: "stack.yaml", Digest: map[string]string{"sha256": fx.manifest.Hex()}},
		attest.Subject{Name: "bin/gw", Digest: map[string]string{"sha256": fx.gw.Hex()}},
		attest.Subject{Name: "plugins/redactor", Digest: map[string]string{"dirHash": fx.plugin.Hex()}})
	if err != nil {
		t.Fatal(err)
	}
	return testsign.Bundle(t, st, k)
}

func (fx deployFixture) deployment(t testing.TB, ev ...Evidence) Deployment {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(fx.policyText), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return Deployment{
		Policy: p, Now: deployNow, Evidence: ev,
		Manifest: Manifest{Name: "deploy", Digest: fx.manifest},
		Components: []Measured{
			{Kind: "gateway", Name: "gw", Role: "gateway", Digest: fx.gw, Argv: gwArgv},
			{Kind: "plugin", Name: "redactor", Role: "guardrail", Digest: fx.plugin, Argv: pluginArgv},
		},
	}
}

func denials(r Report) []string {
	var out []string
	for _, d := range r.Decisions {
		for _, v := range d.Violations {
			if !d.Allowed {
				out = append(out, d.Subject+" "+v.Rule)
			}
		}
	}
	return out
}

func TestDeploymentAllowed(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	r := Check(fx.deployment(t, Evidence{Source: "sbom.bundle.json", Raw: fx.bundle(t, fx.key)}))
	if !r.Allowed {
		t.Fatalf("denied: %v\n%+v", denials(r), r.Evidence)
	}
	if len(r.Evidence) != 1 || !r.Evidence[0].Verified || len(r.Evidence[0].Subjects) != 3 {
		t.Fatalf("evidence %+v", r.Evidence)
	}
}

func TestDeploymentDenials(t *testing.T) {
	good := newDeployFixture(t, "1.82.6")
	stranger, _ := attest.GenerateKey(attest.ECDSAP256)
	cases := []struct {
		name string
		d    func() Deployment
		want []string
	}{
		{"one byte of the plugin changed", func() Deployment {
			d := good.deployment(t, Evidence{Source: "b", Raw: good.bundle(t, good.key)})
			d.Components[1].Digest = digest.MustParse("h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
			return d
		}, []string{"plugin/redactor components[1].digests", "plugin/redactor components[1].signers", "plugin/redactor components[1].attestations[0]", "plugin/redactor sbom"}},
		{"a component the policy does not name", func() Deployment {
			d := good.deployment(t, Evidence{Source: "b", Raw: good.bundle(t, good.key)})
			d.Components = append(d.Components, Measured{Kind: "agent", Name: "shadow", Role: "audit", Digest: digest.FromBytes([]byte("x"))})
			return d
		}, []string{"agent/shadow default"}},
		{"attestation signed by an untrusted key", func() Deployment {
			return good.deployment(t, Evidence{Source: "b", Raw: good.bundle(t, stranger)})
		}, []string{"manifest manifest", "gateway/gw components[0].attestations[0]", "gateway/gw sbom", "plugin/redactor components[1].signers", "plugin/redactor components[1].attestations[0]", "plugin/redactor sbom"}},
		{"no attestation at all", func() Deployment { return good.deployment(t) },
			[]string{"manifest manifest", "gateway/gw components[0].attestations[0]", "gateway/gw sbom", "plugin/redactor components[1].signers", "plugin/redactor components[1].attestations[0]", "plugin/redactor sbom"}},
		{"denied package in the verified SBOM", func() Deployment {
			bad := newDeployFixture(t, "1.82.7")
			bad.key, bad.policyText = good.key, good.policyText
			return good.deployment(t, Evidence{Source: "b", Raw: bad.bundle(t, good.key)})
		}, []string{"plugin/redactor sbom.deny[0]"}},
		{"the verified SBOM does not list the plugin", func() Deployment {
			bad := good
			bad.sbom = strings.Replace(good.sbom, `"name":"redactor"`, `"name":"someone-else"`, 1)
			return good.deployment(t, Evidence{Source: "b", Raw: bad.bundle(t, good.key)})
		}, []string{"plugin/redactor sbom"}},
		{"a garbage bundle proves nothing", func() Deployment {
			return good.deployment(t, Evidence{Source: "b", Raw: []byte("{")})
		}, []string{"manifest manifest", "gateway/gw components[0].attestations[0]", "gateway/gw sbom", "plugin/redactor components[1].signers", "plugin/redactor components[1].attestations[0]", "plugin/redactor sbom"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Check(c.d())
			if r.Allowed || !sameStrings(denials(r), c.want) {
				t.Fatalf("allowed=%v denials %q, want %q", r.Allowed, denials(r), c.want)
			}
		})
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestSummary(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	d := fx.deployment(t, Evidence{Source: "file sbom.bundle.json", Raw: fx.bundle(t, fx.key)}, Evidence{Source: "file junk", Raw: []byte("{")})
	r := Check(d)
	st, err := Summary(d, r, SummaryInput{
		Manifest: "stack.yaml", ManifestDigest: digest.FromBytes([]byte("manifest")),
		Policy: "policy.yaml", PolicyDigest: digest.FromBytes([]byte(fx.policyText)), Version: "test", Time: deployNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != attest.PredicateVSA || len(st.Subject) != 3 {
		t.Fatalf("statement %+v", st)
	}
	var pred struct {
		VerificationResult string
		Policy             struct{ Digest map[string]string }
		InputAttestations  []struct{ URI string }
	}
	if err := json.Unmarshal(st.Predicate, &pred); err != nil {
		t.Fatal(err)
	}
	if pred.VerificationResult != "PASSED" || pred.Policy.Digest["sha256"] != digest.FromBytes([]byte(fx.policyText)).Hex() ||
		len(pred.InputAttestations) != 1 || pred.InputAttestations[0].URI != "file sbom.bundle.json" {
		t.Fatalf("predicate %+v", pred)
	}
	// A denied deployment is summarized as FAILED.
	d.Components[0].Digest = digest.FromBytes([]byte("other gateway"))
	st, _ = Summary(d, Check(d), SummaryInput{Manifest: "stack.yaml", ManifestDigest: digest.FromBytes([]byte("m")), Policy: "p", PolicyDigest: digest.FromBytes([]byte("p")), Time: deployNow})
	if !strings.Contains(string(st.Predicate), `"verificationResult":"FAILED"`) {
		t.Fatalf("denied deployment: %s", st.Predicate)
	}
}

// A signed verification summary that says FAILED, about a tampered plugin,
// fed back as evidence, does not count as its signer's signature over the
// plugin.
func TestFailedSummaryIsNoSignature(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	d := fx.deployment(t, Evidence{Source: "b", Raw: fx.bundle(t, fx.key)})
	d.Components[1].Digest = digest.MustParse("h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	r := Check(d)
	if r.Allowed {
		t.Fatal("tampered plugin allowed")
	}
	st, err := Summary(d, r, SummaryInput{Manifest: "stack.yaml", ManifestDigest: digest.FromBytes([]byte("m")), Policy: "p", PolicyDigest: digest.FromBytes([]byte("p")), Time: deployNow})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := attest.Sign(context.Background(), st, fx.key, attest.Services{})
	vsa, _ := attest.MarshalBundle(b)
	d.Evidence = append(d.Evidence, Evidence{Source: "vsa", Raw: vsa})
	r = Check(d)
	got := denials(r)
	if r.Allowed || !slices.Contains(got, "plugin/redactor components[1].digests") || !slices.Contains(got, "plugin/redactor components[1].signers") {
		t.Fatalf("a FAILED summary changed the verdict: %v", got)
	}
}

// A signed SBOM about some other artifact does not become the deployment's
// SBOM for SBOM-wide rules; two different SBOMs of the deployment leave none.
func TestForeignSBOMIsIgnored(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	fx.policyText += "  require: [serialNumber]\n"
	d := fx.deployment(t, Evidence{Source: "real", Raw: fx.bundle(t, fx.key)})
	if r := Check(d); r.Allowed {
		t.Fatal("an SBOM without a serial number met require: [serialNumber]")
	}
	withSerial := `{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"urn:uuid:1","version":1}`
	st, _ := attest.NewStatement(attest.PredicateCycloneDX, []byte(withSerial), attest.Subject{Name: "other", Digest: map[string]string{"sha256": testsign.Sum("unrelated")}})
	b, _ := attest.Sign(context.Background(), st, fx.key, attest.Services{})
	foreign, _ := attest.MarshalBundle(b)
	d.Evidence = append(d.Evidence, Evidence{Source: "foreign", Raw: foreign})
	if r := Check(d); r.Allowed {
		t.Fatal("an SBOM about another artifact satisfied the deployment's SBOM rules")
	}
	// A second, different SBOM of the same components: neither is used.
	other := fx
	other.sbom = strings.Replace(fx.sbom, `"version":1`, `"version":1,"serialNumber":"urn:uuid:2"`, 1)
	d.Evidence = []Evidence{{Source: "real", Raw: fx.bundle(t, fx.key)}, {Source: "second", Raw: other.bundle(t, fx.key)}}
	if r := Check(d); r.Allowed {
		t.Fatal("two different SBOMs: the last one decided")
	}
}
