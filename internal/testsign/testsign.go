// Package testsign signs statements for tests. It is apart from testutil,
// which attest's own tests import.
package testsign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/sigstoretest"
)

// Bundle signs st with k (no log, no timestamp) and returns the
// Sigstore bundle JSON, failing the test on any error.
func Bundle(t testing.TB, st *attest.Statement, k *attest.Key) []byte {
	t.Helper()
	b, err := attest.Sign(context.Background(), st, k, attest.Services{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := attest.MarshalBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// BOMPredicate is a minimal CycloneDX predicate.
const BOMPredicate = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`

// Sum is the SHA-256 of s in hex.
func Sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// StatementJSON is a statement about artifact "A" with the given
// statement type, sha256 and predicate type.
func StatementJSON(typ, sha, predType string) string {
	return `{"_type":"` + typ + `","subject":[{"name":"A","digest":{"sha256":"` + sha + `"}}],"predicateType":"` + predType + `","predicate":` + BOMPredicate + `}`
}

// Payload signs any payload as DSSE with k: adversarial fixtures are
// validly signed, so only the one broken thing can make them fail.
func Payload(t testing.TB, k *attest.Key, payload, payloadType string) []byte {
	t.Helper()
	pb, err := sign.Bundle(&sign.DSSEData{Data: []byte(payload), PayloadType: payloadType}, k, sign.BundleOptions{Context: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.ParseBundleProto(pb)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := attest.MarshalBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Edit decodes a bundle, lets f change it, and encodes it again.
func Edit(t testing.TB, raw []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Envelope is a decoded bundle's DSSE envelope.
func Envelope(m map[string]any) map[string]any { return m["dsseEnvelope"].(map[string]any) }

// Keyless signs a CycloneDX attestation about "artifact A"'s content
// keyless against the local Sigstore services of env.
func Keyless(t testing.TB, env *sigstoretest.Env, content string) []byte {
	t.Helper()
	st, err := attest.NewStatement(attest.PredicateCycloneDX, []byte(BOMPredicate),
		attest.Subject{Name: "A", Digest: map[string]string{"sha256": Sum(content)}})
	if err != nil {
		t.Fatal(err)
	}
	return KeylessStatement(t, env, st, sigstoretest.DefaultIdentity)
}

// KeylessStatement signs st keyless as identity against env's services.
func KeylessStatement(t testing.TB, env *sigstoretest.Env, st *attest.Statement, identity string) []byte {
	t.Helper()
	svc := attest.Services{Fulcio: env.FulcioURL, Rekor: []attest.Log{{URL: env.RekorURL, Version: 2}}, TSA: []string{env.TSAURL}}
	b, err := attest.SignKeyless(context.Background(), st, env.Token(t, identity), svc)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := attest.MarshalBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TrustedRoot is env's trusted root with f (if any) applied to its JSON.
func TrustedRoot(t testing.TB, env *sigstoretest.Env, f func(m map[string]any)) root.TrustedMaterial {
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
