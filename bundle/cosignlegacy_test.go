package bundle_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/testsign"
)

// verifyCosignBlob converts cosign's older blob bundle and verifies it as a
// message signature over artifact.
func verifyCosignBlob(raw, artifact []byte, s bundle.Signer, opts bundle.Options) error {
	cs, err := attest.ParseCosignBlobBundle(raw)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(artifact)
	b, err := cs.BundleJSON(sum[:])
	if err != nil {
		return err
	}
	_, err = bundle.VerifyMessage(b, bundle.Artifact{Name: "a", SHA256: hex.EncodeToString(sum[:])}, s, opts)
	return err
}

// A keyless signature in cosign's older blob bundle verifies offline: the
// certificate against the trusted root's CA at the time the Rekor signed
// entry timestamp proves, the SET against the root's Rekor key, the entry
// against the signature and certificate. Each thing wrong refuses.
func TestCosignBlobBundleKeyless(t *testing.T) {
	v := testsign.NewVirtual(t)
	const identity = "release@example.com"
	artifact := []byte("model weights")
	id, err := bundle.NewIdentity(testsign.Issuer, "", identity, "")
	if err != nil {
		t.Fatal(err)
	}
	s := bundle.Signer{Identity: id}
	opts := bundle.Options{Material: v.TrustedMaterial()}
	if err := verifyCosignBlob(v.CosignBlobBundle(t, identity, artifact, nil), artifact, s, opts); err != nil {
		t.Fatalf("the good one: %v", err)
	}
	flip := func(b64 string) string {
		raw, _ := base64.StdEncoding.DecodeString(b64)
		raw[len(raw)/2] ^= 1
		return base64.StdEncoding.EncodeToString(raw)
	}
	other, err := bundle.NewIdentity(testsign.Issuer, "", "someone@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		edit     func(m map[string]any)
		artifact []byte
		signer   bundle.Signer
		want     error
	}{
		// The log entry is checked against the signature and the digest
		// first: another file, or another signature, is not what was logged.
		{"another file", nil, []byte("other weights"), s, bundle.ErrLog},
		{"another identity", nil, artifact, bundle.Signer{Identity: other}, bundle.ErrUntrustedSigner},
		{"forged SET", func(m map[string]any) {
			rb := m["rekorBundle"].(map[string]any)
			rb["SignedEntryTimestamp"] = flip(rb["SignedEntryTimestamp"].(string))
		}, artifact, s, bundle.ErrLog},
		{"flipped signature", func(m map[string]any) { m["base64Signature"] = flip(m["base64Signature"].(string)) }, artifact, s, bundle.ErrLog},
		{"no log entry", func(m map[string]any) { delete(m, "rekorBundle") }, artifact, s, bundle.ErrLog},
		{"an unknown field", func(m map[string]any) { m["rekorBundle2"] = 1 }, artifact, s, bundle.ErrLegacy},
		{"a bad log ID", func(m map[string]any) {
			m["rekorBundle"].(map[string]any)["Payload"].(map[string]any)["logID"] = "zz"
		}, artifact, s, bundle.ErrLegacy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyCosignBlob(v.CosignBlobBundle(t, identity, artifact, tc.edit), tc.artifact, tc.signer, opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// A key signature in cosign's older blob bundle (base64Signature alone)
// verifies with the key, and not with another key or for another file.
func TestCosignBlobBundleKey(t *testing.T) {
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	other, _ := attest.GenerateKey(attest.ECDSAP256)
	artifact := []byte("plugin.whl")
	sig, _ := testsign.ImageSignature(t, k, artifact)
	raw := []byte(`{"base64Signature":"` + base64.StdEncoding.EncodeToString(sig) + `"}`)
	if err := verifyCosignBlob(raw, artifact, bundle.Signer{Key: k.Public()}, bundle.Options{}); err != nil {
		t.Fatalf("the good one: %v", err)
	}
	if err := verifyCosignBlob(raw, artifact, bundle.Signer{Key: other.Public()}, bundle.Options{}); !errors.Is(err, bundle.ErrSignature) {
		t.Fatalf("another key: %v", err)
	}
	if err := verifyCosignBlob(raw, []byte("other.whl"), bundle.Signer{Key: k.Public()}, bundle.Options{}); !errors.Is(err, bundle.ErrSignature) {
		t.Fatalf("another file: %v", err)
	}
	if attest.IsCosignBlobBundle(testsign.Message(t, k, artifact)) || !attest.IsCosignBlobBundle(raw) {
		t.Fatal("IsCosignBlobBundle confuses the two formats")
	}
}
