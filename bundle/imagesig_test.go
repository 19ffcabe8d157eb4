package bundle

import (
	"errors"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/testsign"
)

// cosignPayload is what cosign v2.6.5 sign --key wrote for an image in a
// test registry, byte for byte.
const cosignPayload = `{"critical":{"identity":{"docker-reference":"127.0.0.1:45635/app"},"image":{"docker-manifest-digest":"sha256:a2bafbb5ec924cc15842fc28508b406b2ff04895bee2ba46cf3104260ebf0f47"},"type":"cosign container image signature"},"optional":null}`

const cosignImage = "a2bafbb5ec924cc15842fc28508b406b2ff04895bee2ba46cf3104260ebf0f47"

func TestCheckImagePayload(t *testing.T) {
	img := Artifact{SHA256: cosignImage}
	p, err := CheckImagePayload([]byte(cosignPayload), img)
	if err != nil {
		t.Fatal(err)
	}
	if p.Reference != "127.0.0.1:45635/app" || p.Digest.String() != "sha256:"+cosignImage {
		t.Fatalf("%+v", p)
	}
	edited := func(old, new string) string {
		t.Helper()
		if !strings.Contains(cosignPayload, old) {
			t.Fatalf("fixture has no %q", old)
		}
		return strings.Replace(cosignPayload, old, new, 1)
	}
	for _, ok := range []string{
		edited(`"optional":null`, `"optional":{"foo":"bar","nested":{"a":[1,2]}}`),
		edited(`,"optional":null`, ``),
		" \n" + cosignPayload + "\n",
	} {
		if _, err := CheckImagePayload([]byte(ok), img); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	other := strings.Repeat("0", 64)
	for _, c := range []struct {
		name, payload string
		want          error
	}{
		{"another digest", edited(cosignImage, other), ErrSubject},
		{"another type", edited("cosign container image signature", "atomic container signature"), ErrImagePayload},
		{"no type", edited(`,"type":"cosign container image signature"`, ``), ErrImagePayload},
		{"type not a string", edited(`"cosign container image signature"`, `["cosign container image signature"]`), ErrImagePayload},
		{"no digest", edited(`"docker-manifest-digest":"sha256:`+cosignImage+`"`, ``), ErrImagePayload},
		{"digest not a string", edited(`"sha256:`+cosignImage+`"`, `null`), ErrImagePayload},
		{"upper-case digest", edited(cosignImage, strings.ToUpper(cosignImage)), ErrImagePayload},
		{"digest without algorithm", edited("sha256:"+cosignImage, cosignImage), ErrImagePayload},
		{"sha512 digest", edited("sha256:"+cosignImage, "sha512:"+strings.Repeat("0", 128)), ErrImagePayload},
		{"no identity", edited(`"identity":{"docker-reference":"127.0.0.1:45635/app"},`, ``), ErrImagePayload},
		{"a second field in image", edited(`"image":{`, `"image":{"x":"y",`), ErrImagePayload},
		{"unknown field in critical", edited(`"critical":{`, `"critical":{"extra":1,`), ErrImagePayload},
		{"unknown top-level field", edited(`"optional":null`, `"optional":null,"x":1`), ErrImagePayload},
		{"optional a string", edited(`"optional":null`, `"optional":"x"`), ErrImagePayload},
		{"critical twice", `{"critical":{},"critical":` + cosignPayload[len(`{"critical":`):], ErrImagePayload},
		{"key twice by case", edited(`"image":{`, `"Image":{"docker-manifest-digest":"sha256:`+other+`"},"image":{`), ErrImagePayload},
		{"key in other case", edited(`"critical"`, `"Critical"`), ErrImagePayload},
		{"critical null", `{"critical":null}`, ErrImagePayload},
		{"an array", `[` + cosignPayload + `]`, ErrImagePayload},
		{"two documents", cosignPayload + cosignPayload, ErrImagePayload},
		{"not JSON", "sha256:" + cosignImage, ErrImagePayload},
		{"empty", "", ErrImagePayload},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), ErrImagePayload},
		{"too large", edited(`"optional":null`, `"optional":{"x":"`+strings.Repeat("a", attest.MaxSignaturePayload)+`"}`), ErrTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := CheckImagePayload([]byte(c.payload), img); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// FuzzImagePayload: a payload comes from a registry. Checking any bytes
// never panics, and a payload that passes names the image.
func FuzzImagePayload(f *testing.F) {
	f.Add([]byte(cosignPayload))
	f.Add([]byte(strings.Replace(cosignPayload, `null`, `{"a":{"b":[1,"x",null]}}`, 1)))
	f.Add([]byte(`{"critical":{"identity":{},"image":{},"type":""}}`))
	f.Add([]byte(`{"critical":{"Image":{},"image":{}}}`))
	img := Artifact{SHA256: cosignImage}
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := CheckImagePayload(payload, img)
		if err != nil {
			return
		}
		if p.Digest.String() != "sha256:"+cosignImage || !strings.Contains(string(payload), cosignImage) {
			t.Fatalf("accepted a payload that does not name the image: %q", payload)
		}
	})
}

// TestImageSignature: a cosign signature, as attest lists it from a .sig
// layer, verifies for the image its payload names, signed by its key; each
// case breaks one thing.
func TestImageSignature(t *testing.T) {
	for _, kt := range attest.KeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			k, err := attest.GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			testImageSignature(t, k)
		})
	}
}

func testImageSignature(t *testing.T, k *attest.Key) {
	other, _ := attest.GenerateKey(attest.ECDSAP256)
	img := Artifact{Name: "app", SHA256: sum("image A")}
	otherImg := sum("image B")
	payload := testsign.ImagePayload("registry.example/app", "sha256:"+img.SHA256)
	sig, raw := testsign.ImageSignature(t, k, payload)
	key := Signer{Key: k.Public()}

	res, err := VerifyImageSignature(raw, payload, img, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Algorithm != "sha256" || res.Digest != img.SHA256 || res.SignerID != "key:"+k.Hint() {
		t.Fatalf("%+v", res)
	}

	otherPayload := testsign.ImagePayload("registry.example/app", "sha256:"+otherImg)
	_, otherRaw := testsign.ImageSignature(t, k, otherPayload)
	flipped := append([]byte(nil), sig...)
	flipped[len(flipped)/2] ^= 1
	flippedRaw, err := attest.SignatureBundle(payload, flipped)
	if err != nil {
		t.Fatal(err)
	}
	swapped, err := attest.SignatureBundle(otherPayload, sig) // B's payload, A's signature
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte(`{"critical":{"image":{}}}`)
	_, garbageRaw := testsign.ImageSignature(t, k, garbage)
	emptyRoot, err := root.NewTrustedRootFromJSON([]byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := NewIdentity("https://issuer.example", "", "me@example.com", "")
	for _, c := range []struct {
		name         string
		raw, payload []byte
		s            Signer
		opts         Options
		want         error
	}{
		{"another key", raw, payload, Signer{Key: other.Public()}, Options{}, ErrSignature},
		{"a flipped signature byte", flippedRaw, payload, key, Options{}, ErrSignature},
		{"a swapped payload", swapped, otherPayload, key, Options{}, ErrSignature},
		{"the payload of another image, signed", otherRaw, otherPayload, key, Options{}, ErrSubject},
		{"the bundle of another payload", otherRaw, payload, key, Options{}, ErrSubject},
		{"a malformed payload, signed", garbageRaw, garbage, key, Options{}, ErrImagePayload},
		{"a predicate type required", raw, payload, key, Options{PredicateType: attest.PredicateCycloneDX}, ErrNotAttestation},
		{"a log entry required", raw, payload, key, Options{RequireLog: true, Material: emptyRoot}, ErrLog},
		{"a timestamp required", raw, payload, key, Options{RequireTimestamp: true, Material: emptyRoot}, ErrTimestamp},
		{"an identity required", raw, payload, Signer{Identity: id}, Options{Material: emptyRoot}, ErrUntrustedSigner},
		{"no bundle", nil, payload, key, Options{}, ErrMalformed},
		{"an attestation", signPayload(t, k, statementJSON(attest.StatementType, img.SHA256, attest.PredicateCycloneDX), attest.PayloadType), payload, key, Options{}, ErrPayloadType},
		{"too large a payload", raw, make([]byte, attest.MaxSignaturePayload+1), key, Options{}, ErrTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := VerifyImageSignature(c.raw, c.payload, img, c.s, c.opts); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// The image signature's bundle is no attestation.
	if _, err := Verify(raw, img, key, Options{}); !errors.Is(err, ErrPayloadType) {
		t.Fatalf("Verify of an image signature: %v", err)
	}
}

// A statement of cosign's signing predicate type (cosign sign
// --new-bundle-format) verifies as a statement about the image, and never
// as an attestation of a required predicate type, not even its own.
func TestCosignSignStatementIsNoAttestation(t *testing.T) {
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	img := Artifact{SHA256: sum("image A")}
	st := `{"_type":"https://in-toto.io/Statement/v1", "subject":[{"digest":{"sha256":"` + img.SHA256 + `"}}], "predicateType":"` + attest.PredicateCosignSign + `"}`
	raw := signPayload(t, k, st, attest.PayloadType)
	res, err := Verify(raw, img, Signer{Key: k.Public()}, Options{})
	if err != nil || res.PredicateType != attest.PredicateCosignSign {
		t.Fatalf("%v %+v", err, res)
	}
	for _, want := range []string{attest.PredicateCycloneDX, attest.PredicateCosignSign} {
		if _, err := Verify(raw, img, Signer{Key: k.Public()}, Options{PredicateType: want}); !errors.Is(err, ErrNotAttestation) {
			t.Errorf("--type %s: %v", want, err)
		}
	}
	if _, err := Verify(raw, Artifact{SHA256: sum("image B")}, Signer{Key: k.Public()}, Options{}); !errors.Is(err, ErrSubject) {
		t.Errorf("another image: %v", err)
	}
}
