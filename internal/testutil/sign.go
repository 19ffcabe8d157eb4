package testutil

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/attest"
)

// SignBundle signs st with k (no log, no timestamp) and returns the
// Sigstore bundle JSON, failing the test on any error.
func SignBundle(t testing.TB, st *attest.Statement, k *attest.Key) []byte {
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
