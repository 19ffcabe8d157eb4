package verify

import (
	"strings"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/testsign"
)

// A message signature (cosign sign-blob --bundle) over a component's exact
// bytes counts as its signer's signature for the component's signers
// rule, and for nothing else: not as an attestation, not for the manifest.
func TestMessageSignatureCountsForSigners(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	// The gateway needs release's signature and no attestation; the SBOM
	// (which binds the manifest and inventories the plugin) does not name
	// the gateway, so only a message signature can sign it.
	fx.policyText = strings.Replace(fx.policyText, "    attestations: [{type: cyclonedx, signers: {anyOf: [release]}}]\n", "    signers: {anyOf: [release]}\n", 1)
	fx.policyText = fx.policyText[:strings.Index(fx.policyText, "sbom:\n")] // no SBOM rules: the gateway needs no inventory
	subjects := fx.subjects()
	sbom := Evidence{Source: "sbom", Raw: signStatement(t, fx.key, attest.PredicateCycloneDX, []byte(fx.sbom), subjects[0], subjects[2])}
	other, _ := attest.GenerateKey(attest.ECDSAP256)

	expectDenied(t, Check(fx.deployment(t, sbom)), "gateway/gw components[0].signers")

	signed := Evidence{Source: "file gw.bundle.json", Raw: testsign.Message(t, fx.key, []byte("gateway v1"))}
	r := Check(fx.deployment(t, sbom, signed))
	expectAllowed(t, r)
	if e := r.Evidence[1]; !e.Verified || e.PredicateType != MessageSignature || len(e.Subjects) != 1 || e.Subjects[0] != "gateway/gw" || e.Signers[0] != "release" {
		t.Fatalf("the message signature's evidence: %+v", e)
	}

	t.Run("over other bytes", func(t *testing.T) {
		ev := Evidence{Source: "x", Raw: testsign.Message(t, fx.key, []byte("gateway v2"))}
		r := Check(fx.deployment(t, sbom, ev))
		expectDenied(t, r, "gateway/gw components[0].signers")
		if r.Evidence[1].Verified {
			t.Fatal("a signature over other bytes verified")
		}
	})
	t.Run("by a key the policy does not trust", func(t *testing.T) {
		ev := Evidence{Source: "x", Raw: testsign.Message(t, other, []byte("gateway v1"))}
		expectDenied(t, Check(fx.deployment(t, sbom, ev)), "gateway/gw components[0].signers")
	})
	t.Run("is no attestation", func(t *testing.T) {
		fx := fx
		fx.policyText = strings.Replace(fx.policyText, "    signers: {anyOf: [release]}\n  - name: redactor", "    attestations: [{type: cyclonedx, signers: {anyOf: [release]}}]\n  - name: redactor", 1)
		expectDenied(t, Check(fx.deployment(t, sbom, signed)), "gateway/gw components[0].attestations[0]")
	})
	t.Run("does not bind the manifest", func(t *testing.T) {
		manifestOnly := Evidence{Source: "x", Raw: testsign.Message(t, fx.key, []byte("stack manifest v1"))}
		plugin := Evidence{Source: "sbom", Raw: signStatement(t, fx.key, attest.PredicateCycloneDX, []byte(fx.sbom), subjects[2])}
		expectDenied(t, Check(fx.deployment(t, plugin, signed, manifestOnly)), "manifest manifest")
	})
	t.Run("counts once however often it is handed in", func(t *testing.T) {
		fx := fx
		fx.policyText = strings.Replace(fx.policyText, "    signers: {anyOf: [release]}\n  - name: redactor", "    signers: {anyOf: [release, release2], threshold: 2}\n  - name: redactor", 1)
		pub, _ := other.MarshalPublic()
		fx.policyText = strings.Replace(fx.policyText, "components:\n", "  - name: release2\n    key: |\n      "+strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")+"\ncomponents:\n", 1)
		again := Evidence{Source: "y", Raw: testsign.Message(t, fx.key, []byte("gateway v1"))}
		expectDenied(t, Check(fx.deployment(t, sbom, signed, again)), "gateway/gw components[0].signers")
		second := Evidence{Source: "z", Raw: testsign.Message(t, other, []byte("gateway v1"))}
		expectAllowed(t, Check(fx.deployment(t, sbom, signed, again, second)))
	})
}
