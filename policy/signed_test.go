package policy

import (
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/testsign"
)

var signNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// policyText is good.yaml with its version and expiry replaced.
func policyText(t *testing.T, version, expires string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/policies/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "version: 3", "version: "+version, 1)
	s = strings.Replace(s, `expires: "2099-01-01T00:00:00Z"`, `expires: "`+expires+`"`, 1)
	// Signed policies carry keys inline in practice; keyFile needs a
	// folder, which LoadSigned does not take. Use an inline key.
	pub, _ := os.ReadFile("testdata/policies/keys/release.pub")
	inline := "    key: |\n      " + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")
	return []byte(strings.Replace(s, "    keyFile: keys/release.pub", inline, 1))
}

func signPolicy(t *testing.T, k *attest.Key, data []byte) []byte {
	t.Helper()
	p, err := Parse("policy.yaml", data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Statement("policy.yaml", data, p)
	if err != nil {
		t.Fatal(err)
	}
	return testsign.Bundle(t, st, k)
}

func TestLoadSigned(t *testing.T) {
	signer, _ := attest.GenerateKey(attest.ECDSAP256)
	stranger, _ := attest.GenerateKey(attest.ECDSAP256)
	trust := TrustRoot{Keys: []crypto.PublicKey{signer.Public()}}
	state := &State{Path: filepath.Join(t.TempDir(), "state", "policy-state.json")}

	v3 := policyText(t, "3", "2027-01-01T00:00:00Z")
	v3bundle := signPolicy(t, signer, v3)
	p, err := LoadSigned("policy.yaml", v3, v3bundle, trust, "example", state, signNow)
	if err != nil {
		t.Fatalf("a signed policy does not load: %v", err)
	}
	if p.Version != 3 {
		t.Fatalf("version %d", p.Version)
	}
	// Loading it again is fine; the state already holds it.
	if _, err := LoadSigned("policy.yaml", v3, v3bundle, trust, "example", state, signNow); err != nil {
		t.Fatalf("reloading the same policy: %v", err)
	}

	v2 := policyText(t, "2", "2027-01-01T00:00:00Z")
	v3other := policyText(t, "3", "2027-06-01T00:00:00Z")
	expired := policyText(t, "4", "2026-11-01T00:00:00Z")
	tampered := []byte(strings.Replace(string(v3), "LOG_LEVEL", "AWS_SECRET_ACCESS_KEY", 1))
	sbomStatement, _ := attest.NewStatement(attest.PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX"}`),
		attest.Subject{Name: "policy.yaml", Digest: map[string]string{"sha256": digest.FromBytes(v3).Hex()}})
	sbomBundle, _ := attest.Sign(context.Background(), sbomStatement, signer, attest.Services{})
	sbomRaw, _ := attest.MarshalBundle(sbomBundle)

	cases := []struct {
		name   string
		data   []byte
		bundle []byte
		trust  TrustRoot
		want   error
	}{
		{"unsigned", v3, nil, trust, ErrUnsigned},
		{"not a bundle", v3, []byte(`{"hello":"world"}`), trust, ErrUnsigned},
		{"untrusted key", v3, signPolicy(t, stranger, v3), trust, ErrUntrustedSigner},
		{"no trusted keys at all", v3, v3bundle, TrustRoot{}, ErrUntrustedSigner},
		{"tampered after signing", tampered, v3bundle, trust, ErrTampered},
		{"another attestation of the same file", v3, sbomRaw, trust, ErrNotPolicy},
		{"expired", expired, signPolicy(t, signer, expired), trust, ErrExpired},
		{"older version", v2, signPolicy(t, signer, v2), trust, ErrRollback},
		{"same version, other content", v3other, signPolicy(t, signer, v3other), trust, ErrRollback},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadSigned("policy.yaml", c.data, c.bundle, c.trust, "example", state, signNow)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}

	// A policy for another deployment (a lax staging policy signed by the
	// same key, with a higher version) is refused for this one, and does
	// not move this deployment's rollback state: the production policy
	// still loads afterwards.
	staging := []byte(strings.Replace(string(policyText(t, "9", "2027-01-01T00:00:00Z")), "name: example", "name: staging-example", 1) + "\ndefault: audit\n")
	stagingBundle := signPolicy(t, signer, staging)
	if _, err := LoadSigned("policy.yaml", staging, stagingBundle, trust, "example", state, signNow); !errors.Is(err, ErrWrongDeployment) {
		t.Fatalf("a policy for another deployment: got %v, want ErrWrongDeployment", err)
	}
	if _, err := LoadSigned("policy.yaml", v3, v3bundle, trust, "example", state, signNow); err != nil {
		t.Fatalf("the production policy after a refused staging one: %v", err)
	}
	// Each deployment keeps its own version: staging's v9 for staging
	// leaves production at v3, and an older staging policy is a rollback
	// for staging only.
	if _, err := LoadSigned("policy.yaml", staging, stagingBundle, trust, "staging-example", state, signNow); err != nil {
		t.Fatalf("the staging policy for staging: %v", err)
	}
	if _, err := LoadSigned("policy.yaml", v3, v3bundle, trust, "example", state, signNow); err != nil {
		t.Fatalf("production after staging moved its own version: %v", err)
	}
	staging8 := []byte(strings.Replace(string(staging), "version: 9", "version: 8", 1))
	if _, err := LoadSigned("policy.yaml", staging8, signPolicy(t, signer, staging8), trust, "staging-example", state, signNow); !errors.Is(err, ErrRollback) {
		t.Fatalf("older staging policy: got %v, want ErrRollback", err)
	}
	// No deployment name: refused, never "any".
	if _, err := LoadSigned("policy.yaml", v3, v3bundle, trust, "", state, signNow); err == nil {
		t.Fatal("loaded for no deployment")
	}
	// A zero clock never passes for "not expired".
	if _, err := LoadSigned("policy.yaml", v3, v3bundle, trust, "example", state, time.Time{}); err == nil {
		t.Fatal("loaded with a zero time")
	}
	// A trust root identity pattern must be anchored: sigstore-go would
	// match it anywhere in the subject.
	loose := TrustRoot{Identities: []Identity{{Issuer: "https://token.actions.githubusercontent.com", SubjectRegexp: "https://github.com/acme/"}}}
	if _, err := LoadSigned("policy.yaml", v3, v3bundle, loose, "example", state, signNow); !errors.Is(err, ErrTrustRoot) {
		t.Fatalf("unanchored trust root identity: got %v, want ErrTrustRoot", err)
	}

	// A state file of the earlier one-slot format keeps its version for
	// the policy name it recorded.
	old := filepath.Join(t.TempDir(), "old-state.json")
	if err := os.WriteFile(old, []byte(`{"accepted":{"name":"example","version":5,"digest":"sha256:00"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigned("policy.yaml", v3, v3bundle, trust, "example", &State{Path: old}, signNow); !errors.Is(err, ErrRollback) {
		t.Fatalf("v3 after an old-format state at v5: got %v, want ErrRollback", err)
	}

	// A damaged state file refuses instead of forgetting the version.
	if err := os.WriteFile(state.Path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigned("policy.yaml", v3, v3bundle, trust, "example", state, signNow); err == nil || !strings.Contains(err.Error(), "not readable") {
		t.Fatalf("damaged state: %v", err)
	}
}

// A keyless-signed policy loads under the identity that signed it (the
// in-process Sigstore; internal/peertest does the same against the real
// services), and is refused under another identity or without a trusted
// root.
func TestLoadSignedKeyless(t *testing.T) {
	v := testsign.NewVirtual(t)
	data := policyText(t, "5", "2027-01-01T00:00:00Z")
	p, err := Parse("policy.yaml", data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Statement("policy.yaml", data, p)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := st.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	raw := v.Keyless(t, "policy-signer@example.com", payload)
	good := TrustRoot{Material: v.TrustedMaterial(), Identities: []Identity{{Issuer: testsign.Issuer, Subject: "policy-signer@example.com"}}}
	if _, err := LoadSigned("policy.yaml", data, raw, good, "example", nil, signNow); err != nil {
		t.Fatalf("keyless policy does not load: %v", err)
	}
	other := TrustRoot{Material: v.TrustedMaterial(), Identities: []Identity{{Issuer: testsign.Issuer, SubjectRegexp: `^someone-else@.*$`}}}
	if _, err := LoadSigned("policy.yaml", data, raw, other, "example", nil, signNow); !errors.Is(err, ErrUntrustedSigner) {
		t.Fatalf("other identity: got %v, want ErrUntrustedSigner", err)
	}
	if _, err := LoadSigned("policy.yaml", data, raw, TrustRoot{Identities: good.Identities}, "example", nil, signNow); !errors.Is(err, ErrUntrustedSigner) {
		t.Fatalf("no trusted root: got %v, want ErrUntrustedSigner", err)
	}
}

// Two verifiers loading v4 and v5 at once, sharing a state file: whatever
// the interleaving, the state ends at v5 and v4 is refused afterwards.
func TestStateIsSerialized(t *testing.T) {
	signer, _ := attest.GenerateKey(attest.ECDSAP256)
	trust := TrustRoot{Keys: []crypto.PublicKey{signer.Public()}}
	v4 := policyText(t, "4", "2027-01-01T00:00:00Z")
	v5 := policyText(t, "5", "2027-01-01T00:00:00Z")
	b4, b5 := signPolicy(t, signer, v4), signPolicy(t, signer, v5)
	for round := 0; round < 20; round++ {
		state := &State{Path: filepath.Join(t.TempDir(), "state.json")}
		done := make(chan struct{}, 2)
		go func() { _, _ = LoadSigned("p", v4, b4, trust, "example", state, signNow); done <- struct{}{} }()
		go func() { _, _ = LoadSigned("p", v5, b5, trust, "example", state, signNow); done <- struct{}{} }()
		<-done
		<-done
		if _, err := LoadSigned("p", v4, b4, trust, "example", state, signNow); !errors.Is(err, ErrRollback) {
			t.Fatalf("round %d: v4 after v5: got %v, want ErrRollback", round, err)
		}
	}
}

// A signed policy goes through the same verifier as any attestation: a
// bundle over the limits, or whose statement has a key twice, is refused
// with the very error bundle.Verify gives an attestation.
func TestLoadSignedUsesTheBundleVerifier(t *testing.T) {
	signer, _ := attest.GenerateKey(attest.ECDSAP256)
	trust := TrustRoot{Keys: []crypto.PublicKey{signer.Public()}}
	v3 := policyText(t, "3", "2027-01-01T00:00:00Z")
	sum := digest.FromBytes(v3).Hex()
	good := signPolicy(t, signer, v3)
	manyEntries := testsign.Edit(t, good, func(m map[string]any) {
		vm := m["verificationMaterial"].(map[string]any)
		var entries []any
		for range bundle.MaxTlogEntries + 1 {
			entries = append(entries, map[string]any{"logIndex": "1"})
		}
		vm["tlogEntries"] = entries
	})
	duplicate := testsign.Payload(t, signer, `{"_type":"`+attest.StatementType+`","subject":[{"name":"policy.yaml","digest":{"sha256":"`+sum+`"}}],"predicateType":"`+attest.PredicatePolicy+`","predicateType":"`+attest.PredicateCycloneDX+`","predicate":{}}`, attest.PayloadType)
	oversize := make([]byte, attest.MaxBundleSize+1)
	for name, c := range map[string]struct {
		raw  []byte
		want error
	}{
		"too many log entries":       {manyEntries, bundle.ErrTooLarge},
		"over the size limit":        {oversize, bundle.ErrTooLarge},
		"a key twice in a statement": {duplicate, bundle.ErrStatement},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadSigned("policy.yaml", v3, c.raw, trust, "example", nil, signNow)
			if !errors.Is(err, c.want) {
				t.Fatalf("LoadSigned: got %v, want %v", err, c.want)
			}
			_, aerr := bundle.Verify(c.raw, bundle.Artifact{SHA256: sum}, bundle.Signer{Key: signer.Public()}, bundle.Options{})
			if !errors.Is(aerr, c.want) {
				t.Fatalf("bundle.Verify: got %v, want %v", aerr, c.want)
			}
		})
	}
}
