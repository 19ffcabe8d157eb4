package verifier_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/verifier"
)

// cosignSigned is an image in a registry on loopback, signed by cosign
// v2.6.5 (sign --key, no log), and the key pair cosign made.
type cosignSigned struct {
	img      name.Digest
	key, pub string
	signer   bundle.Signer
}

const cosignPassword = "cosign test password"

func newCosignSigned(t *testing.T, referrers bool, extra ...string) cosignSigned {
	t.Helper()
	interop.Cosign(t)
	ctx := context.Background()
	ref, _ := testutil.Registry(t, referrers, nil, "ai/gateway:1.0")
	img, _, err := attest.ImageSubject(ctx, ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	key, pub := interop.CosignGenerateKeyPair(t, t.TempDir(), cosignPassword)
	interop.CosignSign(t, key, cosignPassword, img.String(), extra...)
	keys, err := verifier.PublicKeys([]string{pub})
	if err != nil {
		t.Fatal(err)
	}
	return cosignSigned{img: img, key: key, pub: pub, signer: bundle.Signer{Key: keys[0]}}
}

// image verifies s.img with opts, signed by signer.
func (s cosignSigned) image(t *testing.T, signer bundle.Signer, opts bundle.Options) *verifier.ImageResult {
	t.Helper()
	res, err := verifier.Image(context.Background(), s.img.String(), verifier.ImageConfig{Signer: signer, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Attestations) != 1 {
		t.Fatalf("%d entries beside the image, want 1: %+v", len(res.Attestations), res.Attestations)
	}
	return res
}

// An image signed with cosign sign --key (the .sig tag) passes verify
// image for that key, and for nothing else.
func TestImageCosignSignature(t *testing.T) {
	s := newCosignSigned(t, false)
	layers := testutil.ReadSigTag(t, s.img)
	if len(layers) != 1 || layers[0].Annotations[testutil.CosignSignatureAnnotation] == "" {
		t.Fatalf("cosign wrote %+v", layers)
	}

	res := s.image(t, s.signer, bundle.Options{})
	a := res.Attestations[0]
	if !res.Passed() || a.Source != attest.SourceSigTag || a.Kind != attest.KindSignature || a.Signature == nil || a.Result != nil {
		t.Fatalf("cosign's signature: %+v", a)
	}
	if out, err := interop.CosignVerify(t, s.pub, s.img.String()); err != nil {
		t.Fatalf("cosign verify refuses the image it signed: %v\n%s", err, out)
	}

	other, _ := attest.GenerateKey(attest.ECDSAP256)
	emptyRoot, err := root.NewTrustedRootFromJSON([]byte(interop.EmptyTrustedRootJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		signer bundle.Signer
		opts   bundle.Options
		want   error
	}{
		{"another key", bundle.Signer{Key: other.Public()}, bundle.Options{}, bundle.ErrSignature},
		{"a predicate type required", s.signer, bundle.Options{PredicateType: attest.PredicateCycloneDX}, bundle.ErrNotAttestation},
		{"a log entry required", s.signer, bundle.Options{RequireLog: true, Material: emptyRoot}, bundle.ErrLog},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := s.image(t, c.signer, c.opts)
			if res.Passed() || !errors.Is(res.Attestations[0].Err, c.want) {
				t.Fatalf("got %v, want %v", res.Attestations[0].Err, c.want)
			}
		})
	}
}

// Each tampering of the .sig tag, starting from cosign's own signature and
// changing one thing, is refused, by trustgate and by cosign, for its own
// reason.
func TestImageCosignSignatureTampered(t *testing.T) {
	s := newCosignSigned(t, false)
	good := testutil.ReadSigTag(t, s.img)[0]
	// Another image of the same repository, signed by the same key.
	img2, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag2 := s.img.Context().Tag("2.0")
	if err := remote.Write(tag2, img2); err != nil {
		t.Fatal(err)
	}
	d2, _ := img2.Digest()
	other := s.img.Context().Digest(d2.String())
	interop.CosignSign(t, s.key, cosignPassword, other.String())
	otherLayer := testutil.ReadSigTag(t, other)[0]

	sig, err := base64.StdEncoding.DecodeString(good.Annotations[testutil.CosignSignatureAnnotation])
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 0x01
	flipped := testutil.SigLayer{Payload: good.Payload, Annotations: map[string]string{testutil.CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}}
	swapped := testutil.SigLayer{Payload: otherLayer.Payload, Annotations: good.Annotations}

	for _, c := range []struct {
		name  string
		layer testutil.SigLayer
		want  error
		says  string
	}{
		{"a flipped signature byte", flipped, bundle.ErrSignature, "signature does not verify"},
		{"the payload of another image under this signature", swapped, bundle.ErrSignature, "signature does not verify"},
		{"another image's signature, whose payload names its digest", otherLayer, bundle.ErrSubject, "names " + other.DigestStr() + ", and the image is " + s.img.DigestStr()},
	} {
		t.Run(c.name, func(t *testing.T) {
			testutil.WriteSigTag(t, s.img, c.layer)
			res := s.image(t, s.signer, bundle.Options{})
			err := res.Attestations[0].Err
			if res.Passed() || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
			}
			if out, err := interop.CosignVerify(t, s.pub, s.img.String()); err == nil {
				t.Fatalf("cosign verify accepts it:\n%s", out)
			}
		})
	}
	// A keyless layer (a certificate in the annotations) is listed and
	// refused: its Rekor SET is not read yet.
	t.Run("keyless", func(t *testing.T) {
		keyless := testutil.SigLayer{Payload: good.Payload, Annotations: map[string]string{
			testutil.CosignSignatureAnnotation: good.Annotations[testutil.CosignSignatureAnnotation],
			"dev.sigstore.cosign/certificate":  testutil.CertificatePEM(t, "me@example.com"),
		}}
		testutil.WriteSigTag(t, s.img, keyless)
		res := s.image(t, s.signer, bundle.Options{})
		if res.Passed() || !errors.Is(res.Attestations[0].Err, bundle.ErrUntrustedSigner) {
			t.Fatalf("got %v", res.Attestations[0].Err)
		}
	})
	// The good one, restored, passes again.
	testutil.WriteSigTag(t, s.img, good)
	if res := s.image(t, s.signer, bundle.Options{}); !res.Passed() {
		t.Fatalf("restored: %v", res.Attestations[0].Err)
	}
}

// cosign sign --new-bundle-format stores a Sigstore bundle as a referrer:
// a statement of type attest.PredicateCosignSign about the image. It is a
// signature too, and no attestation.
func TestImageCosignSignatureBundle(t *testing.T) {
	s := newCosignSigned(t, true, "--new-bundle-format")
	if _, err := remote.Head(testutil.SigTag(t, s.img)); err == nil {
		t.Fatal("cosign wrote a .sig tag with --new-bundle-format")
	}
	res := s.image(t, s.signer, bundle.Options{})
	a := res.Attestations[0]
	if !res.Passed() || a.Source != attest.SourceReferrer || a.Kind != attest.KindSignature || a.Signature == nil || a.Result != nil {
		t.Fatalf("cosign's bundle: %+v %v", a, a.Err)
	}
	res = s.image(t, s.signer, bundle.Options{PredicateType: attest.PredicateCosignSign})
	if res.Passed() || !errors.Is(res.Attestations[0].Err, bundle.ErrNotAttestation) {
		t.Fatalf("--type %s: %v", attest.PredicateCosignSign, res.Attestations[0].Err)
	}
	other, _ := attest.GenerateKey(attest.ECDSAP256)
	if res := s.image(t, bundle.Signer{Key: other.Public()}, bundle.Options{}); res.Passed() || !errors.Is(res.Attestations[0].Err, bundle.ErrSignature) {
		t.Fatalf("another key: %v", res.Attestations[0].Err)
	}
}
