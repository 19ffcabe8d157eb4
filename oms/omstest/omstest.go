// Package omstest signs model folders in the OMS format for tests.
package omstest

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/oms"
)

// ModelSignature signs the model folder (or file) at path as
// `model_signing sign key` does: serialized by files with SHA-256, the git
// paths and the paths in ignore (the signature file's, say, relative to
// the model) left out, its statement signed by k. It returns the OMS
// signature (a Sigstore bundle) and the signed manifest.
func ModelSignature(t testing.TB, path string, k *attest.Key, ignore ...string) ([]byte, *oms.Manifest) {
	t.Helper()
	m, err := oms.Serialize(context.Background(), path, oms.Options{IgnorePaths: append(append([]string{}, oms.GitPaths...), ignore...)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Statement()
	if err != nil {
		t.Fatal(err)
	}
	return testsign.Bundle(t, st, k), m
}
