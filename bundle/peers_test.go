package bundle

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/sigstoretest"
	"github.com/trustgate/trustgate/internal/testsign"
)

// A bundle cosign made (attest-blob --new-bundle-format --key) verifies
// with trustgate, and is refused for another file.
func TestCosignMadeBundleVerifies(t *testing.T) {
	dir := t.TempDir()
	key, pub := interop.CosignGenerateKeyPair(t, dir, "cosign-pw")
	file := filepath.Join(dir, "guardrail.bin")
	if err := os.WriteFile(file, []byte("guardrail v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	pred := filepath.Join(dir, "bom.json")
	if err := os.WriteFile(pred, []byte(bomPredicate), 0o644); err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "cosign.bundle.json")
	interop.CosignAttestBlob(t, key, "cosign-pw", "cyclonedx", pred, file, bundlePath)
	raw, err := os.ReadFile(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := os.ReadFile(pub)
	pk, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(raw, Artifact{SHA256: sum("guardrail v1")}, Signer{Key: pk}, Options{PredicateType: attest.PredicateCycloneDX})
	if err != nil {
		t.Fatalf("cosign's bundle does not verify: %v", err)
	}
	if res.Statement.Type != "https://in-toto.io/Statement/v0.1" && res.Statement.Type != attest.StatementType {
		t.Fatalf("statement type %q", res.Statement.Type)
	}
	if _, err := Verify(raw, Artifact{SHA256: sum("guardrail v2")}, Signer{Key: pk}, Options{}); !errors.Is(err, ErrSubject) {
		t.Fatalf("another file: got %v, want ErrSubject", err)
	}
}

// TestAdversarialKeyless: a valid keyless attestation (Fulcio, Rekor v2,
// TSA, all real processes on loopback), and one thing broken per case.
func TestAdversarialKeyless(t *testing.T) {
	env := sigstoretest.Start(t)
	rawA := testsign.Keyless(t, env, "artifact A")
	rawB := testsign.Keyless(t, env, "artifact B")
	a := Artifact{Name: "A", SHA256: sum("artifact A")}
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	id, err := NewIdentity(issuer, "", san, "")
	if err != nil {
		t.Fatal(err)
	}
	good := Options{Material: testsign.TrustedRoot(t, env, nil), PredicateType: attest.PredicateCycloneDX}
	if _, err := Verify(rawA, a, Signer{Identity: id}, good); err != nil {
		t.Fatalf("valid keyless bundle: %v", err)
	}
	fork, _ := NewIdentity(issuer, "", "someone@fork.example", "")
	otherIssuer, _ := NewIdentity("https://token.actions.githubusercontent.com", "", san, "")
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	vm := func(m map[string]any) map[string]any { return m["verificationMaterial"].(map[string]any) }
	far := "2099-01-01T00:00:00Z"
	long := "2000-01-01T00:00:00Z"
	cases := []struct {
		name   string
		raw    []byte
		signer Signer
		opts   Options
		want   error
	}{
		{"identity of another subject", rawA, Signer{Identity: fork}, good, ErrUntrustedSigner},
		{"identity from another issuer", rawA, Signer{Identity: otherIssuer}, good, ErrUntrustedSigner},
		{"keyless bundle, key required", rawA, Signer{Key: k.Public()}, good, ErrUntrustedSigner},
		{"no trusted root", rawA, Signer{Identity: id}, Options{}, ErrNoSigner},
		{"log entry removed", edit(t, rawA, func(m map[string]any) { delete(vm(m), "tlogEntries") }), Signer{Identity: id}, good, ErrLog},
		{"timestamp removed (Rekor v2 has no time of its own)", edit(t, rawA, func(m map[string]any) { delete(vm(m), "timestampVerificationData") }), Signer{Identity: id}, good, ErrTimestamp},
		{"log entry of another artifact grafted in", edit(t, rawA, func(m map[string]any) {
			var mb map[string]any
			_ = json.Unmarshal(rawB, &mb)
			vm(m)["tlogEntries"] = vm(mb)["tlogEntries"]
		}), Signer{Identity: id}, good, ErrLog},
		{"timestamp of another signature grafted in", edit(t, rawA, func(m map[string]any) {
			var mb map[string]any
			_ = json.Unmarshal(rawB, &mb)
			vm(m)["timestampVerificationData"] = vm(mb)["timestampVerificationData"]
		}), Signer{Identity: id}, good, ErrTimestamp},
		{"certificate of another signature grafted in", edit(t, rawA, func(m map[string]any) {
			var mb map[string]any
			_ = json.Unmarshal(rawB, &mb)
			vm(m)["certificate"] = vm(mb)["certificate"]
		}), Signer{Identity: id}, good, ErrLog},
		{"certificate authority not yet valid at signing time", rawA, Signer{Identity: id}, Options{Material: testsign.TrustedRoot(t, env, func(m map[string]any) {
			first(m, "certificateAuthorities")["validFor"] = map[string]any{"start": far}
		})}, ErrCertificate},
		{"timestamp authority expired before signing", rawA, Signer{Identity: id}, Options{Material: testsign.TrustedRoot(t, env, func(m map[string]any) {
			first(m, "timestampAuthorities")["validFor"] = map[string]any{"start": "1999-01-01T00:00:00Z", "end": long}
		})}, ErrTimestamp},
		{"log not in the trusted root", rawA, Signer{Identity: id}, Options{Material: testsign.TrustedRoot(t, env, func(m map[string]any) { delete(m, "tlogs") })}, ErrLog},
		{"attestation for A offered for B", rawA, Signer{Identity: id}, good, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			art := a
			if c.want == nil {
				art, c.want = Artifact{Name: "B", SHA256: sum("artifact B")}, ErrSubject
			}
			_, err := Verify(c.raw, art, c.signer, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func first(m map[string]any, key string) map[string]any {
	return m[key].([]any)[0].(map[string]any)
}
