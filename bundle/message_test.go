package bundle

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/testsign"
)

func TestMessageSignature(t *testing.T) {
	k, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := attest.GenerateKey(attest.ECDSAP256)
	content := []byte("model weights")
	raw := testsign.Message(t, k, content)
	art := Artifact{Name: "model.gguf", SHA256: sum(string(content))}

	res, err := VerifyMessage(raw, art, Signer{Key: k.Public()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Algorithm != "sha256" || res.Digest != art.SHA256 || res.SignerID == "" {
		t.Fatalf("%+v", res)
	}

	for _, c := range []struct {
		name string
		raw  []byte
		art  Artifact
		s    Signer
		want error
	}{
		{"another file", raw, Artifact{SHA256: sum("other weights")}, Signer{Key: k.Public()}, ErrSubject},
		{"no sha256 for the artifact", raw, Artifact{DirHash: sum("x")}, Signer{Key: k.Public()}, ErrSubject},
		{"another key", raw, art, Signer{Key: other.Public()}, ErrSignature},
		{"no signer", raw, art, Signer{}, ErrNoSigner},
		{"the stated digest edited to the other file's", testsign.Edit(t, raw, func(m map[string]any) {
			ms := m["messageSignature"].(map[string]any)
			ms["messageDigest"].(map[string]any)["digest"] = b64hex(t, sum("other weights"))
		}), Artifact{SHA256: sum("other weights")}, Signer{Key: k.Public()}, ErrSignature},
		{"the signature edited", testsign.Edit(t, raw, func(m map[string]any) {
			ms := m["messageSignature"].(map[string]any)
			sig, _ := base64.StdEncoding.DecodeString(ms["signature"].(string))
			sig[len(sig)-1] ^= 1
			ms["signature"] = base64.StdEncoding.EncodeToString(sig)
		}), art, Signer{Key: k.Public()}, ErrSignature},
		{"an attestation is not a message signature", signPayload(t, k, statementJSON(attest.StatementType, art.SHA256, attest.PredicateCycloneDX), attest.PayloadType), art, Signer{Key: k.Public()}, ErrPayloadType},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := VerifyMessage(c.raw, c.art, c.s, Options{}); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// And a message signature is no attestation: Verify refuses it.
	if _, err := Verify(raw, art, Signer{Key: k.Public()}, Options{}); !errors.Is(err, ErrPayloadType) {
		t.Fatalf("Verify of a message signature: %v", err)
	}
}

func b64hex(t *testing.T, h string) string {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}
