package verify

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/registrytest"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/pin"
)

// In a deployment check (verify --stack, the gateway, the webhook), what
// cosign v2.6.5 writes by default beside a ref: image (cosign sign --key,
// a .sig layer; cosign attest --key --type cyclonedx, a .att layer) counts
// for the image's signers rule and its attestation rule, read from the
// registry as gather reads it; another image's entries, and entries by a
// key the policy does not name, do not. Run against Debian's
// docker-registry, a real registry server with no referrers API.
func TestDeploymentCountsCosignTagEntries(t *testing.T) {
	interop.Cosign(t)
	ctx := context.Background()
	img, _, err := attest.ImageSubject(ctx, registrytest.Image(t, "ai/gateway:1.0"), pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	other := testutil.PushRandom(t, img.Context().Tag("2.0"))

	dir := t.TempDir()
	const password = "cosign test password"
	key, pub := interop.CosignGenerateKeyPair(t, dir, password)
	otherDir := filepath.Join(dir, "other")
	if err := os.Mkdir(otherDir, 0o700); err != nil {
		t.Fatal(err)
	}
	strangerKey, _ := interop.CosignGenerateKeyPair(t, otherDir, password)
	bom := filepath.Join(dir, "bom.json")
	if err := os.WriteFile(bom, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}

	fx := newDeployFixture(t, "1.82.6")
	fx.policyText = strings.Replace(fx.policyText, "components:\n", "  - name: cosign\n    key: |\n      "+strings.ReplaceAll(strings.TrimSpace(string(pubPEM)), "\n", "\n      ")+"\ncomponents:\n", 1)
	fx.policyText = strings.Replace(fx.policyText, "\nsbom:\n", "\n  - name: gw-image\n    kind: image\n    signers: {anyOf: [cosign]}\n    attestations: [{type: cyclonedx, signers: {anyOf: [cosign]}}]\nsbom:\n", 1)
	fx.policyText = fx.policyText[:strings.Index(fx.policyText, "sbom:\n")] // no SBOM rules: the image needs no inventory
	sbom := Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}
	check := func(t *testing.T) Report {
		t.Helper()
		ev := []Evidence{sbom}
		as, err := attest.Attachments(ctx, img, pin.Registry{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as { // as gather.ImageEvidence hands them in
			ev = append(ev, Evidence{Source: a.Source + " " + img.Context().Name() + "@" + a.Digest, Raw: a.Bundle, Payload: a.Payload})
		}
		d := fx.deployment(t, ev...)
		d.Components = append(d.Components, Measured{Kind: "image", Name: "gw-image", Digest: digest.MustParse(img.DigestStr())})
		return Check(d)
	}
	const signers, attestation = "image/gw-image components[2].signers", "image/gw-image components[2].attestations[0]"

	t.Run("nothing beside it", func(t *testing.T) { expectDenied(t, check(t), signers, attestation) })
	interop.CosignSign(t, key, password, img.String())
	t.Run("signed, not attested", func(t *testing.T) {
		r := check(t)
		expectDenied(t, r, attestation)
		if slices.Contains(denials(r), signers) {
			t.Fatalf("cosign's signature did not count for signers: %q", denials(r))
		}
	})
	interop.CosignAttest(t, key, password, "cyclonedx", bom, img.String())
	t.Run("signed and attested", func(t *testing.T) { expectAllowed(t, check(t)) })

	goodSig, goodAtt := testutil.ReadSigTag(t, img), testutil.ReadTag(t, testutil.AttTag(t, img))
	t.Run("another image's entries", func(t *testing.T) {
		interop.CosignSign(t, key, password, other.String())
		interop.CosignAttest(t, key, password, "cyclonedx", bom, other.String())
		testutil.WriteSigTag(t, img, testutil.ReadSigTag(t, other)...)
		testutil.WriteTag(t, testutil.AttTag(t, img), testutil.DSSEMediaType, testutil.ReadTag(t, testutil.AttTag(t, other))...)
		expectDenied(t, check(t), signers, attestation)
	})
	t.Run("by a key the policy does not name", func(t *testing.T) {
		testutil.WriteSigTag(t, img)
		testutil.WriteTag(t, testutil.AttTag(t, img), testutil.DSSEMediaType)
		interop.CosignSign(t, strangerKey, password, img.String())
		interop.CosignAttest(t, strangerKey, password, "cyclonedx", bom, img.String())
		expectDenied(t, check(t), signers, attestation)
	})
	testutil.WriteSigTag(t, img, goodSig...)
	testutil.WriteTag(t, testutil.AttTag(t, img), testutil.DSSEMediaType, goodAtt...)
	t.Run("restored", func(t *testing.T) { expectAllowed(t, check(t)) })
}
