package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/registrytest"
	"github.com/trustgate/trustgate/internal/sigstoretest"
	"github.com/trustgate/trustgate/pin"
)

// A keyless cosign signature made without a log (cosign sign against the
// local Fulcio, --tlog-upload=false, a timestamp from the local TSA; a .sig
// layer on Debian's docker-registry) counts for a ref: image's signers rule
// only when the signed policy's keyless signer waives the log
// (ignoreTlog: true), and then only for that identity.
func TestDeploymentKeylessSignerWithoutLog(t *testing.T) {
	interop.Cosign(t)
	env := sigstoretest.Start(t)
	ctx := context.Background()
	img, _, err := attest.ImageSubject(ctx, registrytest.Image(t, "ai/gateway:1.0"), pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	interop.CosignSignKeyless(t, interop.KeylessFor(t, env, sigstoretest.DefaultIdentity), img.String())
	material, err := root.NewTrustedRootFromPath(env.TrustedRootPath)
	if err != nil {
		t.Fatal(err)
	}
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	as, err := attest.Attachments(ctx, img, pin.Registry{})
	if err != nil || len(as) != 1 {
		t.Fatalf("listed %d entries: %v", len(as), err)
	}
	ev := Evidence{Source: as[0].Source + " " + img.Context().Name() + "@" + as[0].Digest, Raw: as[0].Bundle, Payload: as[0].Payload}

	fx := newDeployFixture(t, "1.82.6")
	sbom := Evidence{Source: "sbom", Raw: fx.bundle(t, fx.key)}
	base := fx.policyText[:strings.Index(fx.policyText, "sbom:\n")] + "  - name: gw-image\n    kind: image\n    signers: {anyOf: [ci]}\n"
	check := func(t *testing.T, keyless string) Report {
		t.Helper()
		fx := fx
		fx.policyText = strings.Replace(base, "components:\n", "  - name: ci\n    keyless: "+keyless+"\ncomponents:\n", 1)
		d := fx.deployment(t, sbom, ev)
		d.Material = material
		d.Components = append(d.Components, Measured{Kind: "image", Name: "gw-image", Digest: digest.MustParse(img.DigestStr())})
		return Check(d)
	}
	const rule = "image/gw-image components[2].signers"
	t.Run("the signer, log waived", func(t *testing.T) {
		expectAllowed(t, check(t, "{issuer: "+issuer+", subject: "+san+", ignoreTlog: true}"))
	})
	t.Run("the signer, log required", func(t *testing.T) {
		r := check(t, "{issuer: "+issuer+", subject: "+san+"}")
		expectDenied(t, r, rule)
		if e := r.Evidence[1]; e.Verified || !strings.Contains(e.Error, "log") {
			t.Fatalf("evidence %+v, want a refusal for the log", e)
		}
	})
	t.Run("another identity, log waived", func(t *testing.T) {
		expectDenied(t, check(t, "{issuer: "+issuer+", subject: someone-else@sigstoretest.example.com, ignoreTlog: true}"), rule)
	})
}
