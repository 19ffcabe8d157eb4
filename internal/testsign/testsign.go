// Package testsign signs statements for tests. It is apart from testutil,
// which attest's own tests import.
package testsign

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/attest"
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
