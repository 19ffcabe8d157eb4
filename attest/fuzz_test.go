package attest

import (
	"context"
	"testing"
)

// FuzzParseBundle: bundles come from registries and files; parsing never
// panics, and whatever parses describes itself without error or with one.
func FuzzParseBundle(f *testing.F) {
	k, err := GenerateKey(ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	b, err := Sign(context.Background(), testStatement(f, "seed"), k, Services{})
	if err != nil {
		f.Fatal(err)
	}
	raw, err := MarshalBundle(b)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, err := ParseBundle(data); err == nil {
			_ = Signer(b)
		}
	})
}

// FuzzTagEntry: a cosign tag layer and its annotations come from a registry.
func FuzzTagEntry(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}`), `{"publicKey":{"hint":"x"}}`, true)
	f.Add([]byte(`{}`), ``, false)
	f.Fuzz(func(t *testing.T, env []byte, vm string, withVM bool) {
		ann := map[string]string{annCosignPredicateType: PredicateCycloneDX}
		if withVM {
			ann[annVerificationMat] = vm
		}
		_, _ = tagEntry(env, ann)
	})
}

// FuzzParsePrivateKey: a key file is read before anything else; no input
// panics, and no password decrypts a key it did not encrypt into a usable
// key without error.
func FuzzParsePrivateKey(f *testing.F) {
	k, _ := GenerateKey(Ed25519)
	enc, _ := k.MarshalPrivate([]byte(testPassword))
	plain, _ := k.MarshalPrivate(nil)
	f.Add(enc, []byte(testPassword))
	f.Add(plain, []byte(nil))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), []byte(nil))
	f.Fuzz(func(t *testing.T, data, password []byte) {
		if k, err := ParsePrivateKey(data, password); err == nil && k.Hint() == "" {
			t.Fatal("parsed key has no hint")
		}
	})
}
