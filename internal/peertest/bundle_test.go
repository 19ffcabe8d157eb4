package peertest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
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
	if err := os.WriteFile(pred, []byte(testsign.BOMPredicate), 0o644); err != nil {
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
	res, err := bundle.Verify(raw, bundle.Artifact{SHA256: testsign.Sum("guardrail v1")}, bundle.Signer{Key: pk}, bundle.Options{PredicateType: attest.PredicateCycloneDX})
	if err != nil {
		t.Fatalf("cosign's bundle does not verify: %v", err)
	}
	if res.Statement.Type != "https://in-toto.io/Statement/v0.1" && res.Statement.Type != attest.StatementType {
		t.Fatalf("statement type %q", res.Statement.Type)
	}
	if _, err := bundle.Verify(raw, bundle.Artifact{SHA256: testsign.Sum("guardrail v2")}, bundle.Signer{Key: pk}, bundle.Options{}); !errors.Is(err, bundle.ErrSubject) {
		t.Fatalf("another file: got %v, want bundle.ErrSubject", err)
	}
}

// TestAdversarialKeyless: a valid keyless attestation (Fulcio, Rekor v2,
// TSA, all real processes on loopback), and one thing broken per case.
func TestAdversarialKeyless(t *testing.T) {
	env := sigstoretest.Start(t)
	rawA := testsign.Keyless(t, env, "artifact A")
	rawB := testsign.Keyless(t, env, "artifact B")
	a := bundle.Artifact{Name: "A", SHA256: testsign.Sum("artifact A")}
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	id, err := bundle.NewIdentity(issuer, "", san, "")
	if err != nil {
		t.Fatal(err)
	}
	good := bundle.Options{Material: testsign.TrustedRoot(t, env, nil), PredicateType: attest.PredicateCycloneDX}
	if _, err := bundle.Verify(rawA, a, bundle.Signer{Identity: id}, good); err != nil {
		t.Fatalf("valid keyless bundle: %v", err)
	}
	fork, _ := bundle.NewIdentity(issuer, "", "someone@fork.example", "")
	otherIssuer, _ := bundle.NewIdentity("https://token.actions.githubusercontent.com", "", san, "")
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	vm := func(m map[string]any) map[string]any { return m["verificationMaterial"].(map[string]any) }
	far := "2099-01-01T00:00:00Z"
	long := "2000-01-01T00:00:00Z"
	cases := []struct {
		name   string
		raw    []byte
		signer bundle.Signer
		opts   bundle.Options
		want   error
	}{
		{"identity of another subject", rawA, bundle.Signer{Identity: fork}, good, bundle.ErrUntrustedSigner},
		{"identity from another issuer", rawA, bundle.Signer{Identity: otherIssuer}, good, bundle.ErrUntrustedSigner},
		{"keyless bundle, key required", rawA, bundle.Signer{Key: k.Public()}, good, bundle.ErrUntrustedSigner},
		{"no trusted root", rawA, bundle.Signer{Identity: id}, bundle.Options{}, bundle.ErrNoSigner},
		{"log entry removed", testsign.Edit(t, rawA, func(m map[string]any) { delete(vm(m), "tlogEntries") }), bundle.Signer{Identity: id}, good, bundle.ErrLog},
		{"timestamp removed (Rekor v2 has no time of its own)", testsign.Edit(t, rawA, func(m map[string]any) { delete(vm(m), "timestampVerificationData") }), bundle.Signer{Identity: id}, good, bundle.ErrTimestamp},
		{"log entry of another artifact grafted in", testsign.Edit(t, rawA, func(m map[string]any) {
			var mb map[string]any
			_ = json.Unmarshal(rawB, &mb)
			vm(m)["tlogEntries"] = vm(mb)["tlogEntries"]
		}), bundle.Signer{Identity: id}, good, bundle.ErrLog},
		{"timestamp of another signature grafted in", testsign.Edit(t, rawA, func(m map[string]any) {
			var mb map[string]any
			_ = json.Unmarshal(rawB, &mb)
			vm(m)["timestampVerificationData"] = vm(mb)["timestampVerificationData"]
		}), bundle.Signer{Identity: id}, good, bundle.ErrTimestamp},
		{"certificate of another signature grafted in", testsign.Edit(t, rawA, func(m map[string]any) {
			var mb map[string]any
			_ = json.Unmarshal(rawB, &mb)
			vm(m)["certificate"] = vm(mb)["certificate"]
		}), bundle.Signer{Identity: id}, good, bundle.ErrLog},
		{"certificate authority not yet valid at signing time", rawA, bundle.Signer{Identity: id}, bundle.Options{Material: testsign.TrustedRoot(t, env, func(m map[string]any) {
			first(m, "certificateAuthorities")["validFor"] = map[string]any{"start": far}
		})}, bundle.ErrCertificate},
		{"timestamp authority expired before signing", rawA, bundle.Signer{Identity: id}, bundle.Options{Material: testsign.TrustedRoot(t, env, func(m map[string]any) {
			first(m, "timestampAuthorities")["validFor"] = map[string]any{"start": "1999-01-01T00:00:00Z", "end": long}
		})}, bundle.ErrTimestamp},
		{"log not in the trusted root", rawA, bundle.Signer{Identity: id}, bundle.Options{Material: testsign.TrustedRoot(t, env, func(m map[string]any) { delete(m, "tlogs") })}, bundle.ErrLog},
		{"attestation for A offered for B", rawA, bundle.Signer{Identity: id}, good, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			art := a
			if c.want == nil {
				art, c.want = bundle.Artifact{Name: "B", SHA256: testsign.Sum("artifact B")}, bundle.ErrSubject
			}
			_, err := bundle.Verify(c.raw, art, c.signer, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func first(m map[string]any, key string) map[string]any {
	return m[key].([]any)[0].(map[string]any)
}

// BenchmarkBundleKeyless: one keyless attestation (Fulcio certificate,
// Rekor v2 inclusion proof and checkpoint, RFC 3161 timestamp) verified
// offline against a trusted root.
func BenchmarkBundleKeyless(b *testing.B) {
	env := sigstoretest.Start(b)
	raw := testsign.Keyless(b, env, "artifact A")
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	id, err := bundle.NewIdentity(issuer, "", san, "")
	if err != nil {
		b.Fatal(err)
	}
	opts := bundle.Options{Material: testsign.TrustedRoot(b, env, nil)}
	art := bundle.Artifact{SHA256: testsign.Sum("artifact A")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bundle.Verify(raw, art, bundle.Signer{Identity: id}, opts); err != nil {
			b.Fatal(err)
		}
	}
}
