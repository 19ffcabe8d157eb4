package verify

import (
	"slices"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/policy"
)

// imageSig is a cosign signature (cosign sign --key: a .sig layer) by k of
// an image, whose payload names digest d.
func imageSig(t *testing.T, k *attest.Key, d digest.Digest) Evidence {
	t.Helper()
	payload := testsign.ImagePayload("registry.example/gw", d.String())
	_, raw := testsign.ImageSignature(t, k, payload)
	return Evidence{Source: "tag .sig registry.example/gw@sha256:layer", Raw: raw, Payload: payload}
}

// signStatementJSON is cosign sign --new-bundle-format's statement about
// the image d, signed by k: no predicate.
func signStatementJSON(t *testing.T, k *attest.Key, d digest.Digest) Evidence {
	t.Helper()
	st := `{"_type":"https://in-toto.io/Statement/v1", "subject":[{"digest":{"sha256":"` + d.Hex() + `"}}], "predicateType":"` + attest.PredicateCosignSign + `"}`
	return Evidence{Source: "referrer registry.example/gw@sha256:ref", Raw: testsign.Payload(t, k, st, attest.PayloadType)}
}

// A cosign signature (cosign sign) of an image's exact digest counts as
// its signer's signature for the image's signers rule, and for nothing
// else: not as an attestation, not for the manifest; once per signer.
func TestCosignSignatureCountsForSigners(t *testing.T) {
	fx := newDeployFixture(t, "1.82.6")
	img := digest.FromBytes([]byte("gateway image manifest"))
	fx.policyText = strings.Replace(fx.policyText, "\nsbom:\n", "\n  - name: gw-image\n    kind: image\n    signers: {anyOf: [release]}\nsbom:\n", 1)
	fx.policyText = fx.policyText[:strings.Index(fx.policyText, "sbom:\n")] // no SBOM rules: the image needs no inventory
	sbom := Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}
	deploy := func(fx deployFixture, ev ...Evidence) Deployment {
		d := fx.deployment(t, append([]Evidence{sbom}, ev...)...)
		d.Components = append(d.Components, Measured{Kind: "image", Name: "gw-image", Digest: img})
		return d
	}
	const rule = "image/gw-image components[2].signers"
	expectDenied(t, Check(deploy(fx)), rule)

	signed := imageSig(t, fx.key, img)
	r := Check(deploy(fx, signed))
	expectAllowed(t, r)
	if e := r.Evidence[1]; !e.Verified || e.PredicateType != CosignSignature || len(e.Subjects) != 1 || e.Subjects[0] != "image/gw-image" || len(e.Signers) != 1 || e.Signers[0] != "release" {
		t.Fatalf("the signature's evidence: %+v", e)
	}
	// cosign sign --new-bundle-format's statement counts the same way.
	r = Check(deploy(fx, signStatementJSON(t, fx.key, img)))
	expectAllowed(t, r)
	if e := r.Evidence[1]; !e.Verified || e.PredicateType != CosignSignature || len(e.Subjects) != 1 || e.Subjects[0] != "image/gw-image" {
		t.Fatalf("the statement's evidence: %+v", e)
	}

	other, _ := attest.GenerateKey(attest.ECDSAP256)
	otherImg := digest.FromBytes([]byte("another image manifest"))
	for _, c := range []struct {
		name string
		ev   Evidence
		says string
	}{
		{"a payload naming another digest", imageSig(t, fx.key, otherImg), "the signed payload names " + otherImg.String()},
		// A file that hashes to the digest a cosign signature names is no
		// image: the signature counts for images alone.
		{"a payload naming the gateway file's digest", imageSig(t, fx.key, fx.gw), "the signed payload names " + fx.gw.String()},
		{"a statement naming another digest", signStatementJSON(t, fx.key, otherImg), "a cosign signature of no component's digest"},
		{"by a key the policy does not trust", imageSig(t, other, img), "signature does not verify"},
		{"a swapped payload", Evidence{Source: "x", Raw: signed.Raw, Payload: imageSig(t, fx.key, otherImg).Payload}, "not over this payload"},
		{"a payload without its bundle", Evidence{Source: "x", Payload: signed.Payload}, "a cosign signature without its bundle"},
		{"a payload that is no simple signing document", func() Evidence {
			p := []byte(`{"critical":{"image":{"docker-manifest-digest":"` + img.String() + `"}}}`)
			_, raw := testsign.ImageSignature(t, fx.key, p)
			return Evidence{Source: "x", Raw: raw, Payload: p}
		}(), "invalid cosign signature payload"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Check(deploy(fx, c.ev))
			expectDenied(t, r, rule)
			if e := r.Evidence[1]; e.Verified || !strings.Contains(e.Error, c.says) {
				t.Fatalf("evidence %+v, want an error saying %q", e, c.says)
			}
		})
	}
	t.Run("is no attestation", func(t *testing.T) {
		fx := fx
		fx.policyText = strings.Replace(fx.policyText, "    kind: image\n    signers: {anyOf: [release]}\n", "    kind: image\n    signers: {anyOf: [release]}\n    attestations: [{type: cyclonedx, signers: {anyOf: [release]}}]\n", 1)
		r := Check(deploy(fx, signed))
		expectDenied(t, r, "image/gw-image components[2].attestations[0]")
		if slices.Contains(denials(r), rule) {
			t.Fatalf("the signature did not count for signers: %q", denials(r))
		}
		fx.policyText = strings.Replace(fx.policyText, "type: cyclonedx, signers", "type: \""+attest.PredicateCosignSign+"\", signers", 1)
		expectDenied(t, Check(deploy(fx, signed, signStatementJSON(t, fx.key, img))), "image/gw-image components[2].attestations[0]")
	})
	t.Run("does not bind the manifest", func(t *testing.T) {
		subjects := fx.subjects()
		plugin := Evidence{Source: "sbom", Raw: signStatement(t, fx.key, attest.PredicateCycloneDX, []byte(fx.sbom), subjects[1], subjects[2])}
		d := fx.deployment(t, plugin, imageSig(t, fx.key, fx.manifest), signStatementJSON(t, fx.key, fx.manifest))
		d.Components = append(d.Components, Measured{Kind: "image", Name: "gw-image", Digest: img})
		expectDenied(t, Check(d), "manifest manifest")
	})
	t.Run("counts once however often it is handed in", func(t *testing.T) {
		fx := fx
		fx.policyText = strings.Replace(fx.policyText, "    kind: image\n    signers: {anyOf: [release]}\n", "    kind: image\n    signers: {anyOf: [release, release2], threshold: 2}\n", 1)
		pub, _ := other.MarshalPublic()
		fx.policyText = strings.Replace(fx.policyText, "components:\n", "  - name: release2\n    key: |\n      "+strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")+"\ncomponents:\n", 1)
		again := imageSig(t, fx.key, img) // a second signature, same key
		expectDenied(t, Check(deploy(fx, signed, again, signStatementJSON(t, fx.key, img))), rule)
		expectAllowed(t, Check(deploy(fx, signed, again, imageSig(t, other, img))))
	})
}

// The admission webhook's check of one image counts a cosign signature the
// same way.
func TestCheckImageCountsCosignSignature(t *testing.T) {
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	pub, _ := k.MarshalPublic()
	p, err := policy.Parse("policy.yaml", []byte(`apiVersion: trustgate.dev/v1
kind: Policy
metadata: {name: cluster}
version: 1
expires: "2099-01-01T00:00:00Z"
signers:
  - name: release
    key: |
      `+strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")+`
components:
  - name: gateway
    kind: image
    repositories: [registry.example/gw]
    signers: {anyOf: [release]}
`), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	img := digest.FromBytes([]byte("gateway image manifest"))
	check := func(ev ...Evidence) Report {
		return CheckImage(Image{Policy: p, Component: "gateway", Digest: img, Evidence: ev, Now: deployNow})
	}
	if r := check(); r.Allowed {
		t.Fatal("an unsigned image allowed")
	}
	if r := check(imageSig(t, k, img)); !r.Allowed {
		t.Fatalf("denied: %q %+v", denials(r), r.Evidence)
	}
	if r := check(signStatementJSON(t, k, img)); !r.Allowed {
		t.Fatalf("the statement form denied: %q %+v", denials(r), r.Evidence)
	}
	if r := check(imageSig(t, k, digest.FromBytes([]byte("another image")))); r.Allowed {
		t.Fatal("a signature of another image allowed")
	}
}
