package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/sigstoretest"
	"github.com/trustgate/trustgate/policy"
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
	res, err := Bundle(raw, Artifact{SHA256: sum("guardrail v1")}, Signer{Key: pk}, Options{PredicateType: attest.PredicateCycloneDX})
	if err != nil {
		t.Fatalf("cosign's bundle does not verify: %v", err)
	}
	if res.Statement.Type != "https://in-toto.io/Statement/v0.1" && res.Statement.Type != attest.StatementType {
		t.Fatalf("statement type %q", res.Statement.Type)
	}
	if _, err := Bundle(raw, Artifact{SHA256: sum("guardrail v2")}, Signer{Key: pk}, Options{}); !errors.Is(err, ErrSubject) {
		t.Fatalf("another file: got %v, want ErrSubject", err)
	}
}

// keylessFixture signs an attestation about "artifact A" keyless against
// the real local Sigstore services.
func keylessFixture(t *testing.T, env *sigstoretest.Env, content string) []byte {
	return keylessFixtureTB(t, env, content)
}

func keylessFixtureTB(t testing.TB, env *sigstoretest.Env, content string) []byte {
	t.Helper()
	st, err := attest.NewStatement(attest.PredicateCycloneDX, []byte(bomPredicate),
		attest.Subject{Name: "A", Digest: map[string]string{"sha256": sum(content)}})
	if err != nil {
		t.Fatal(err)
	}
	svc := attest.Services{Fulcio: env.FulcioURL, Rekor: []attest.Log{{URL: env.RekorURL, Version: 2}}, TSA: []string{env.TSAURL}}
	b, err := attest.SignKeyless(context.Background(), st, env.Token(t, sigstoretest.DefaultIdentity), svc)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := attest.MarshalBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// rootWith returns the env's trusted root with f applied to its JSON.
func rootWithTB(tb testing.TB, env *sigstoretest.Env) root.TrustedMaterial {
	return rootWithF(tb, env, nil)
}

func rootWith(t *testing.T, env *sigstoretest.Env, f func(m map[string]any)) root.TrustedMaterial {
	return rootWithF(t, env, f)
}

func rootWithF(t testing.TB, env *sigstoretest.Env, f func(m map[string]any)) root.TrustedMaterial {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(env.TrustedRootJSON, &m); err != nil {
		t.Fatal(err)
	}
	if f != nil {
		f(m)
	}
	data, _ := json.Marshal(m)
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func first(m map[string]any, key string) map[string]any {
	return m[key].([]any)[0].(map[string]any)
}

// TestAdversarialKeyless: a valid keyless attestation (Fulcio, Rekor v2,
// TSA, all real processes on loopback), and one thing broken per case.
func TestAdversarialKeyless(t *testing.T) {
	env := sigstoretest.Start(t)
	rawA := keylessFixture(t, env, "artifact A")
	rawB := keylessFixture(t, env, "artifact B")
	a := Artifact{Name: "A", SHA256: sum("artifact A")}
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	id, err := NewIdentity(issuer, "", san, "")
	if err != nil {
		t.Fatal(err)
	}
	good := Options{Material: rootWith(t, env, nil), PredicateType: attest.PredicateCycloneDX}
	if _, err := Bundle(rawA, a, Signer{Identity: id}, good); err != nil {
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
		{"certificate authority not yet valid at signing time", rawA, Signer{Identity: id}, Options{Material: rootWith(t, env, func(m map[string]any) {
			first(m, "certificateAuthorities")["validFor"] = map[string]any{"start": far}
		})}, ErrCertificate},
		{"timestamp authority expired before signing", rawA, Signer{Identity: id}, Options{Material: rootWith(t, env, func(m map[string]any) {
			first(m, "timestampAuthorities")["validFor"] = map[string]any{"start": "1999-01-01T00:00:00Z", "end": long}
		})}, ErrTimestamp},
		{"log not in the trusted root", rawA, Signer{Identity: id}, Options{Material: rootWith(t, env, func(m map[string]any) { delete(m, "tlogs") })}, ErrLog},
		{"attestation for A offered for B", rawA, Signer{Identity: id}, good, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			art := a
			if c.want == nil {
				art, c.want = Artifact{Name: "B", SHA256: sum("artifact B")}, ErrSubject
			}
			_, err := Bundle(c.raw, art, c.signer, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// Finding 4: a k-of-n rule counts signers, not evidence. Two policy names
// whose keyless identities both match one certificate, threshold 2: one
// signer's bundle, given twice, re-encoded, or signed again with a fresh
// certificate, is still one signature. Two identities meet it.
func TestThresholdCountsSignersNotEvidence(t *testing.T) {
	env := sigstoretest.Start(t)
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	_, san2 := env.Identity("second@example.com")
	gw := digest.FromBytes([]byte("gateway v1"))
	manifest := digest.FromBytes([]byte("stack manifest v1"))
	policyText := `apiVersion: trustgate.dev/v1
kind: Policy
metadata: {name: deploy}
version: 1
expires: "2099-01-01T00:00:00Z"
signers:
  - name: exact
    keyless: {issuer: "` + issuer + `", subject: "` + san + `"}
  - name: pattern
    keyless: {issuer: "` + issuer + `", subjectRegexp: '^(?:` + regexp.QuoteMeta(san) + `|` + regexp.QuoteMeta(san2) + `)$'}
components:
  - name: gw
    kind: gateway
    signers: {anyOf: [exact, pattern], threshold: 2}
`
	p, err := policy.Parse("policy.yaml", []byte(policyText), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(identity string) []byte {
		st, err := attest.NewStatement(attest.PredicateCycloneDX, []byte(bomPredicate),
			attest.Subject{Name: "stack.yaml", Digest: map[string]string{"sha256": manifest.Hex()}},
			attest.Subject{Name: "gw", Digest: map[string]string{"sha256": gw.Hex()}})
		if err != nil {
			t.Fatal(err)
		}
		svc := attest.Services{Fulcio: env.FulcioURL, Rekor: []attest.Log{{URL: env.RekorURL, Version: 2}}, TSA: []string{env.TSAURL}}
		b, err := attest.SignKeyless(context.Background(), st, env.Token(t, identity), svc)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := attest.MarshalBundle(b)
		return raw
	}
	one := sign(sigstoretest.DefaultIdentity)
	respelled := edit(t, one, func(m map[string]any) {
		sig := envelope(m)["signatures"].([]any)[0].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
		sig["sig"] = base64.RawURLEncoding.EncodeToString(raw)
	})
	check := func(ev ...[]byte) Report {
		d := Deployment{Policy: p, Material: rootWith(t, env, nil), Now: time.Now(),
			Manifest:   Manifest{Name: "deploy", Digest: manifest},
			Components: []Measured{{Kind: "gateway", Name: "gw", Digest: gw}}}
		for i, raw := range ev {
			d.Evidence = append(d.Evidence, Evidence{Source: fmt.Sprint("bundle ", i), Raw: raw})
		}
		return Check(d)
	}
	for name, ev := range map[string][][]byte{
		"once":                            {one},
		"the same bundle twice":           {one, one},
		"a re-encoded copy":               {one, respelled},
		"signed again, a new certificate": {one, sign(sigstoretest.DefaultIdentity)},
	} {
		t.Run(name, func(t *testing.T) {
			r := check(ev...)
			for i := range ev {
				if !r.Evidence[i].Verified {
					t.Fatalf("evidence %d does not verify: %s", i, r.Evidence[i].Error)
				}
			}
			expectDenied(t, r, "gateway/gw components[0].signers")
		})
	}
	// Two identities, one per name: two signers.
	expectAllowed(t, check(one, sign("second@example.com")))
}
