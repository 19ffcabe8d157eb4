package verifier_test

import (
	"path/filepath"
	"testing"

	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/conformance"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/verifier"
)

// TestSigstoreConformance runs every bundle-verify vector of
// sigstore-conformance (testdata/sigstore-conformance, see its NOTICE)
// through the CLI's library calls, the artifact given as the file and as
// sha256:DIGEST: a vector whose folder ends in _fail must be refused, any
// other must verify. A message signature goes through verifier.Blob (what
// verify-blob runs), an attestation through verifier.Attestation (what
// verify-attestation runs). internal/peertest runs the message-signature
// vectors through cosign too.
func TestSigstoreConformance(t *testing.T) {
	vectors, err := conformance.Vectors(filepath.Join(testutil.RepoRoot(t), "testdata", "sigstore-conformance"))
	if err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 60 {
		t.Fatalf("only %d vectors", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			signer, opts, err := trustOf(v)
			if err != nil {
				// A key or trusted root that does not load is refused
				// before any bundle is read, as the CLI refuses it.
				if v.WantPass {
					t.Errorf("the vector's trust material is refused: %v", err)
				}
				return
			}
			for _, target := range []string{v.Artifact, "sha256:" + v.ArtifactSHA256} {
				if v.Message {
					_, err = verifier.Blob(v.Bundle, target, signer, opts)
				} else {
					_, err = verifier.Attestation(v.Bundle, target, signer, opts)
				}
				if got := err == nil; got != v.WantPass {
					t.Errorf("%s: verified=%v, want %v: %v", filepath.Base(target), got, v.WantPass, err)
				}
			}
		})
	}
}

// trustOf is who must have signed a vector, and against what: the CLI's
// --key (with the trusted root's logs, since a managed key's bundle
// carries its log entry, as the suite's clients check), or
// --certificate-identity and --certificate-oidc-issuer with --trusted-root.
func trustOf(v conformance.Vector) (bundle.Signer, bundle.Options, error) {
	var s bundle.Signer
	var opts bundle.Options
	var err error
	if opts.Material, err = verifier.TrustedRoot(v.TrustedRoot); err != nil {
		return s, opts, err
	}
	if v.Key != "" {
		keys, err := verifier.PublicKeys([]string{v.Key})
		if err != nil {
			return s, opts, err
		}
		s.Key, opts.RequireLog = keys[0], true
		return s, opts, nil
	}
	s.Identity, err = bundle.NewIdentity(v.Issuer, "", v.Identity, "")
	return s, opts, err
}
