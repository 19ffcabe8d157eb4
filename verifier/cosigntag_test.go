package verifier_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/registrytest"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/verifier"
)

// registries are the two registry servers the tag-scheme tests run
// against: go-containerregistry's, in-process (no referrers API here), and
// Debian's docker-registry (distribution 2.8), a real server process. Each
// returns the reference of a fresh random image.
var registries = []struct {
	name  string
	image func(t *testing.T) string
}{
	{"in-process", func(t *testing.T) string {
		ref, _ := testutil.Registry(t, false, nil, "ai/gateway:1.0")
		return ref
	}},
	{"docker-registry", func(t *testing.T) string { return registrytest.Image(t, "ai/gateway:1.0") }},
}

// cdxPredicate is a CycloneDX document for cosign attest --type cyclonedx.
const cdxPredicate = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"litellm","version":"1.82.6"}]}`

// verdict is what became of each entry beside an image, by source and
// format: "ok" or the bundle error it wraps.
func verdict(res *verifier.ImageResult) string {
	var out []string
	for _, a := range res.Attestations {
		out = append(out, a.Source+" ("+a.Format+"): "+errorClass(a.Err))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

func errorClass(err error) string {
	if err == nil {
		return "ok"
	}
	for _, e := range []error{bundle.ErrNotAttestation, bundle.ErrSubject, bundle.ErrSignature, bundle.ErrUntrustedSigner, bundle.ErrPredicateType, bundle.ErrLog, bundle.ErrMalformed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other: " + err.Error()
}

// What cosign v2.6.5 writes by default in its tag scheme (cosign sign
// --key: a .sig layer; cosign attest --key: a .att layer, the verification
// material in annotations) verifies, offline, in verifier.Image, and each
// change an adversary with push access could make is refused: another
// key, a flipped signature byte, a swapped payload, a payload or statement
// naming another digest, entries copied to another image. cosign agrees on
// each. Both registries give the same verdicts.
func TestCosignTagSchemeOnBothRegistries(t *testing.T) {
	interop.Cosign(t)
	got := map[string]map[string]string{}
	for _, r := range registries {
		t.Run(r.name, func(t *testing.T) {
			got[r.name] = cosignTagScheme(t, r.image(t))
		})
	}
	if len(got) == len(registries) && !maps.Equal(got[registries[0].name], got[registries[1].name]) {
		t.Fatalf("the registries disagree:\n%v\n%v", got[registries[0].name], got[registries[1].name])
	}
}

func cosignTagScheme(t *testing.T, ref string) map[string]string {
	ctx := context.Background()
	img, _, err := attest.ImageSubject(ctx, ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	// Another image in the same repository, signed and attested by the
	// same key.
	other := testutil.PushRandom(t, img.Context().Tag("2.0"))

	dir := t.TempDir()
	key, pub := interop.CosignGenerateKeyPair(t, dir, cosignPassword)
	bom := filepath.Join(dir, "bom.json")
	if err := os.WriteFile(bom, []byte(cdxPredicate), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []name.Digest{img, other} {
		interop.CosignSign(t, key, cosignPassword, d.String())
		interop.CosignAttest(t, key, cosignPassword, "cyclonedx", bom, d.String())
	}
	keys, err := verifier.PublicKeys([]string{pub})
	if err != nil {
		t.Fatal(err)
	}
	signer := bundle.Signer{Key: keys[0]}
	otherKey, _ := attest.GenerateKey(attest.ECDSAP256)
	cdx := bundle.Options{PredicateType: attest.PredicateCycloneDX}

	check := func(t *testing.T, d name.Digest, s bundle.Signer, opts bundle.Options) *verifier.ImageResult {
		t.Helper()
		res, err := verifier.Image(ctx, d.String(), verifier.ImageConfig{Signer: s, Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Attestations {
			if a.Format != attest.FormatCosign {
				t.Fatalf("%s %s: format %q, want %q", a.Source, a.Digest, a.Format, attest.FormatCosign)
			}
		}
		return res
	}
	verdicts := map[string]string{}
	record := func(name string, res *verifier.ImageResult, want string) {
		t.Helper()
		verdicts[name] = verdict(res)
		if verdicts[name] != want {
			t.Errorf("%s: got %s\nwant %s", name, verdicts[name], want)
		}
	}
	// v is the verdict for the .att layer and the .sig layer.
	v := func(att, sig string) string {
		return "tag (cosign annotations): " + att + "; tag .sig (cosign annotations): " + sig
	}

	// As cosign wrote them.
	res := check(t, img, signer, bundle.Options{})
	record("as written", res, v("ok", "ok"))
	for _, a := range res.Attestations {
		switch a.Source {
		case attest.SourceSigTag:
			if a.Kind != attest.KindSignature || a.Signature == nil || a.Signature.Digest != strings.TrimPrefix(img.DigestStr(), "sha256:") {
				t.Fatalf(".sig: %+v", a)
			}
		case attest.SourceTag:
			if a.Kind != attest.KindAttestation || a.Result == nil || a.Result.PredicateType != attest.PredicateCycloneDX {
				t.Fatalf(".att: %+v", a)
			}
		}
	}
	record("as written, --type cyclonedx", check(t, img, signer, cdx), v("ok", bundle.ErrNotAttestation.Error()))
	record("another key", check(t, img, bundle.Signer{Key: otherKey.Public()}, bundle.Options{}), v(bundle.ErrSignature.Error(), bundle.ErrSignature.Error()))
	if out, err := interop.CosignVerify(t, pub, img.String()); err != nil {
		t.Fatalf("cosign verify refuses what it signed: %v\n%s", err, out)
	}
	if out, err := interop.CosignVerifyAttestation(t, pub, "cyclonedx", img.String()); err != nil {
		t.Fatalf("cosign verify-attestation refuses what it attested: %v\n%s", err, out)
	}

	goodSig, goodAtt := testutil.ReadSigTag(t, img)[0], testutil.ReadTag(t, testutil.AttTag(t, img))[0]
	otherSig, otherAtt := testutil.ReadSigTag(t, other)[0], testutil.ReadTag(t, testutil.AttTag(t, other))[0]
	restore := func() {
		testutil.WriteSigTag(t, img, goodSig)
		testutil.WriteTag(t, testutil.AttTag(t, img), testutil.DSSEMediaType, goodAtt)
	}

	// Tampered layers, each cosign's own with one change, put in place of
	// the good ones; cosign must refuse each as well.
	sig, _ := base64.StdEncoding.DecodeString(goodSig.Annotations[testutil.CosignSignatureAnnotation])
	sig[len(sig)/2] ^= 0x01
	flippedSig := testutil.SigLayer{Payload: goodSig.Payload, Annotations: withAnnotation(goodSig.Annotations, testutil.CosignSignatureAnnotation, base64.StdEncoding.EncodeToString(sig))}
	for _, c := range []struct {
		name     string
		sig, att testutil.SigLayer
		want     string
	}{
		{"a flipped signature byte", flippedSig, envelopeWith(t, goodAtt, flipSignature), v(bundle.ErrSignature.Error(), bundle.ErrSignature.Error())},
		{"a swapped payload", testutil.SigLayer{Payload: otherSig.Payload, Annotations: goodSig.Annotations}, envelopeWith(t, goodAtt, payloadOf(t, otherAtt)), v(bundle.ErrSignature.Error(), bundle.ErrSignature.Error())},
		{"another image's entries, naming its digest", otherSig, otherAtt, v(bundle.ErrSubject.Error(), bundle.ErrSubject.Error())},
	} {
		t.Run(c.name, func(t *testing.T) {
			testutil.WriteSigTag(t, img, c.sig)
			testutil.WriteTag(t, testutil.AttTag(t, img), testutil.DSSEMediaType, c.att)
			record(c.name, check(t, img, signer, bundle.Options{}), c.want)
			if out, err := interop.CosignVerify(t, pub, img.String()); err == nil {
				t.Errorf("cosign verify accepts it:\n%s", out)
			}
			if out, err := interop.CosignVerifyAttestation(t, pub, "cyclonedx", img.String()); err == nil {
				t.Errorf("cosign verify-attestation accepts it:\n%s", out)
			}
		})
	}
	restore()

	// This image's entries copied beside another image: their payloads
	// name this image, not that one.
	testutil.WriteSigTag(t, other, goodSig)
	testutil.WriteTag(t, testutil.AttTag(t, other), testutil.DSSEMediaType, goodAtt)
	record("copied to another image", check(t, other, signer, bundle.Options{}), v(bundle.ErrSubject.Error(), bundle.ErrSubject.Error()))
	record("as written, again", check(t, img, signer, bundle.Options{}), v("ok", "ok"))
	return verdicts
}

func withAnnotation(ann map[string]string, k, v string) map[string]string {
	out := maps.Clone(ann)
	out[k] = v
	return out
}

// envelopeWith is the .att layer l with its DSSE envelope changed by edit.
func envelopeWith(t *testing.T, l testutil.SigLayer, edit func(env map[string]any)) testutil.SigLayer {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(l.Payload, &env); err != nil {
		t.Fatal(err)
	}
	edit(env)
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.SigLayer{Payload: raw, Annotations: l.Annotations}
}

func flipSignature(env map[string]any) {
	s := env["signatures"].([]any)[0].(map[string]any)
	sig, _ := base64.StdEncoding.DecodeString(s["sig"].(string))
	sig[len(sig)/2] ^= 0x01
	s["sig"] = base64.StdEncoding.EncodeToString(sig)
}

// payloadOf replaces an envelope's payload with the one of l's envelope.
func payloadOf(t *testing.T, l testutil.SigLayer) func(env map[string]any) {
	var o map[string]any
	if err := json.Unmarshal(l.Payload, &o); err != nil {
		t.Fatal(err)
	}
	return func(env map[string]any) { env["payload"] = o["payload"] }
}

// A keyless cosign signature in the .sig tag (the certificate and the
// Rekor bundle in annotations, as cosign v2 writes them) verifies offline:
// the certificate against the trusted root's CA at the time the signed
// entry timestamp proves, the SET against the root's Rekor key (a virtual
// Sigstore instance plays Fulcio and Rekor v1). A forged SET, a missing
// one, another identity and a payload naming another digest are refused,
// on both registries alike.
func TestCosignKeylessSigLayerSET(t *testing.T) {
	v := testsign.NewVirtual(t)
	const identity = "release@example.com"
	id, err := bundle.NewIdentity(testsign.Issuer, "", identity, "")
	if err != nil {
		t.Fatal(err)
	}
	someone, err := bundle.NewIdentity(testsign.Issuer, "", "someone@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	opts := bundle.Options{Material: v.TrustedMaterial()}
	got := map[string]map[string]string{}
	for _, r := range registries {
		t.Run(r.name, func(t *testing.T) {
			ctx := context.Background()
			img, _, err := attest.ImageSubject(ctx, r.image(t), pin.Registry{})
			if err != nil {
				t.Fatal(err)
			}
			payload := testsign.ImagePayload(img.Context().Name(), img.DigestStr())
			good := testutil.SigLayer{Payload: payload, Annotations: v.CosignSigAnnotations(t, identity, payload)}
			otherDigest := testsign.ImagePayload(img.Context().Name(), "sha256:"+strings.Repeat("ab", 32))
			forged := maps.Clone(good.Annotations)
			var rb map[string]any
			if err := json.Unmarshal([]byte(forged["dev.sigstore.cosign/bundle"]), &rb); err != nil {
				t.Fatal(err)
			}
			set, _ := base64.StdEncoding.DecodeString(rb["SignedEntryTimestamp"].(string))
			set[len(set)/2] ^= 1
			rb["SignedEntryTimestamp"] = base64.StdEncoding.EncodeToString(set)
			raw, _ := json.Marshal(rb)
			forged["dev.sigstore.cosign/bundle"] = string(raw)
			unlogged := maps.Clone(good.Annotations)
			delete(unlogged, "dev.sigstore.cosign/bundle")

			verdicts := map[string]string{}
			for _, c := range []struct {
				name   string
				layer  testutil.SigLayer
				signer bundle.Signer
				want   error
			}{
				{"as signed", good, bundle.Signer{Identity: id}, nil},
				{"another identity", good, bundle.Signer{Identity: someone}, bundle.ErrUntrustedSigner},
				{"a forged SET", testutil.SigLayer{Payload: payload, Annotations: forged}, bundle.Signer{Identity: id}, bundle.ErrLog},
				{"no Rekor bundle", testutil.SigLayer{Payload: payload, Annotations: unlogged}, bundle.Signer{Identity: id}, bundle.ErrLog},
				{"a payload naming another digest", testutil.SigLayer{Payload: otherDigest, Annotations: v.CosignSigAnnotations(t, identity, otherDigest)}, bundle.Signer{Identity: id}, bundle.ErrSubject},
			} {
				testutil.WriteSigTag(t, img, c.layer)
				res, err := verifier.Image(ctx, img.String(), verifier.ImageConfig{Signer: c.signer, Options: opts})
				if err != nil {
					t.Fatal(err)
				}
				a := res.Attestations[0]
				verdicts[c.name] = errorClass(a.Err)
				if len(res.Attestations) != 1 || a.Format != attest.FormatCosign || !errors.Is(a.Err, c.want) || (c.want == nil) != res.Passed() {
					t.Errorf("%s: %+v, want %v", c.name, a, c.want)
				}
				if c.want == nil && (a.Signature == nil || len(a.Signature.Times) == 0) {
					t.Errorf("%s: no verified time from the SET: %+v", c.name, a.Signature)
				}
			}
			got[r.name] = verdicts
		})
	}
	if len(got) == len(registries) && !maps.Equal(got[registries[0].name], got[registries[1].name]) {
		t.Fatalf("the registries disagree:\n%v\n%v", got[registries[0].name], got[registries[1].name])
	}
}
