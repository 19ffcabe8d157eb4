package oms_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/oms"
	"github.com/trustgate/trustgate/verifier"
)

// published are model_signing releases' own signatures of their sample
// models (scripts/tests of sigstore/model-transparency), verified as its
// scripts/tests/test-verify-*.sh verify them: which model path, which
// ignore paths (--ignore-paths, and the signature file, which the CLI
// always ignores), which signer.
var published = []struct {
	dir, model string
	ignore     []string
	keyless    bool
}{
	// Key signatures of v0.3.1 and v1.0.0 sign one file, not the folder;
	// those of v0.3.1 to v1.0.1 write the public key where a bundle holds
	// a hint (see LegacyKeyBundle).
	{dir: "v0.3.1-elliptic-key", model: "signme-1"},
	{dir: "v1.0.0-elliptic-key", model: "signme-1"},
	{dir: "v1.0.1-elliptic-key", ignore: []string{"ignore-me", "model.sig"}},
	// v1.1.0 records its ignore paths in the signature: none needed.
	{dir: "v1.1.0-elliptic-key"},
	{dir: "v0.3.1-sigstore", ignore: []string{"model.sig"}, keyless: true},
	{dir: "v1.0.0-sigstore", ignore: []string{"model.sig"}, keyless: true},
	{dir: "v1.0.1-sigstore", ignore: []string{"ignore-me", "model.sig"}, keyless: true},
	{dir: "v1.1.0-sigstore", keyless: true},
}

// publishedSigner is who signed the published fixtures: the test key, or
// keyless the identity the scripts name, on Sigstore's public-good
// instance.
func publishedSigner(t *testing.T, keyless bool) (bundle.Signer, bundle.Options) {
	t.Helper()
	if !keyless {
		keys, err := verifier.PublicKeys([]string{filepath.Join(upstream, "scripts/tests/keys/certificate/signing-key-pub.pem")})
		if err != nil {
			t.Fatal(err)
		}
		return bundle.Signer{Key: keys[0]}, bundle.Options{}
	}
	tr, err := verifier.TrustedRoot("../testdata/sigstore-conformance/trusted_root.public-good.json")
	if err != nil {
		t.Fatal(err)
	}
	id, err := bundle.NewIdentity("https://sigstore.verify.ibm.com/oauth2", "", "stefanb@us.ibm.com", "")
	if err != nil {
		t.Fatal(err)
	}
	return bundle.Signer{Identity: id}, bundle.Options{Material: tr}
}

// TestPublishedSignatures: every published key and public-good keyless
// signature verifies.
func TestPublishedSignatures(t *testing.T) {
	for _, c := range published {
		t.Run(c.dir, func(t *testing.T) {
			dir := filepath.Join(upstream, "scripts/tests", c.dir)
			signer, opts := publishedSigner(t, c.keyless)
			res, err := oms.Verify(context.Background(), filepath.Join(dir, c.model), readFile(t, filepath.Join(dir, "model.sig")), signer, opts, oms.VerifyOptions{IgnorePaths: c.ignore})
			if err != nil {
				t.Fatal(err)
			}
			if c.keyless && len(res.Bundle.Times) == 0 {
				t.Error("a keyless signature verified with no verified time")
			}
		})
	}
}

// TestPublishedSignaturesRefused: the published signatures, broken one
// way at a time.
func TestPublishedSignaturesRefused(t *testing.T) {
	key, keyOpts := publishedSigner(t, false)
	keyless, keylessOpts := publishedSigner(t, true)
	copyFixture := func(t *testing.T, name string) string {
		dst := filepath.Join(t.TempDir(), name)
		if err := os.CopyFS(dst, os.DirFS(filepath.Join(upstream, "scripts/tests", name))); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	verify := func(dir string, s bundle.Signer, opts bundle.Options, vo oms.VerifyOptions) error {
		_, err := oms.Verify(context.Background(), dir, readFile(t, filepath.Join(dir, "model.sig")), s, opts, vo)
		return err
	}

	// Without the ignore paths its script gives, v1.0.1's folder holds
	// two unsigned files.
	if err := verify(filepath.Join(upstream, "scripts/tests/v1.0.1-elliptic-key"), key, keyOpts, oms.VerifyOptions{}); !errors.Is(err, oms.ErrExtra) {
		t.Errorf("v1.0.1 without ignore paths: got %v, want ErrExtra", err)
	}
	dir := copyFixture(t, "v1.1.0-elliptic-key")
	writeFile(t, filepath.Join(dir, "signme-1"), "signme-1 changed\n")
	if err := verify(dir, key, keyOpts, oms.VerifyOptions{}); !errors.Is(err, oms.ErrMismatch) {
		t.Errorf("v1.1.0 with a changed file: got %v, want ErrMismatch", err)
	}
	dir = copyFixture(t, "v1.1.0-sigstore")
	remove(t, filepath.Join(dir, "signme-2"))
	if err := verify(dir, keyless, keylessOpts, oms.VerifyOptions{}); !errors.Is(err, oms.ErrMissing) {
		t.Errorf("v1.1.0 keyless with a removed file: got %v, want ErrMissing", err)
	}
	other, _ := bundle.NewIdentity("https://sigstore.verify.ibm.com/oauth2", "", "someone@us.ibm.com", "")
	if err := verify(filepath.Join(upstream, "scripts/tests/v1.1.0-sigstore"), bundle.Signer{Identity: other}, keylessOpts, oms.VerifyOptions{}); !errors.Is(err, bundle.ErrUntrustedSigner) {
		t.Errorf("v1.1.0 keyless for another identity: got %v, want ErrUntrustedSigner", err)
	}
	// A keyless signature is no key signature, and the other way round.
	if err := verify(filepath.Join(upstream, "scripts/tests/v1.1.0-sigstore"), key, keyOpts, oms.VerifyOptions{}); !errors.Is(err, bundle.ErrUntrustedSigner) {
		t.Errorf("keyless signature, key required: got %v, want ErrUntrustedSigner", err)
	}
}
