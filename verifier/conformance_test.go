package verifier_test

import (
	"os"
	"path/filepath"
	"testing"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/trustgate/trustgate/attest"
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

// sigstoreGoDiffers lists the vectors where sigstore-go v1.3.0, configured
// as sigstoreGoVerify says, gives another verdict than the suite (and
// trustgate), with who is right.
var sigstoreGoDiffers = map[string]string{}

// TestSigstoreConformanceSigstoreGo runs every vector through sigstore-go
// alone, the reference trustgate builds on, with a configuration read from
// the trusted root and the bundle alone (sigstoreGoVerify), not trustgate's
// code: its verdict must be the suite's (and so trustgate's, which
// TestSigstoreConformance checks), but for sigstoreGoDiffers, which must
// still differ.
func TestSigstoreConformanceSigstoreGo(t *testing.T) {
	vectors, err := conformance.Vectors(filepath.Join(testutil.RepoRoot(t), "testdata", "sigstore-conformance"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			err := sigstoreGoVerify(v)
			agrees := (err == nil) == v.WantPass
			if why, known := sigstoreGoDiffers[v.Name]; known {
				if agrees {
					t.Fatalf("sigstore-go now agrees with the suite (%s no longer holds): remove it from sigstoreGoDiffers", why)
				}
				return
			}
			if !agrees {
				t.Fatalf("sigstore-go verified=%v, the suite wants %v: %v", err == nil, v.WantPass, err)
			}
		})
	}
}

// sigstoreGoVerify verifies a vector with sigstore-go's verifier and
// policy, configured from the trusted root and the bundle as the suite
// expects of a client.
func sigstoreGoVerify(v conformance.Vector) error {
	tr, err := root.NewTrustedRootFromPath(v.TrustedRoot)
	if err != nil {
		return err
	}
	b, err := sgbundle.LoadJSONFromPath(v.Bundle)
	if err != nil {
		return err
	}
	// A log entry whenever the trusted root has logs; a time from an
	// observer (the entry's inclusion promise, Rekor v1, or the bundle's
	// RFC 3161 timestamps), every one given verified; SCTs for a
	// certificate when the root has CT logs.
	var opts []sgverify.VerifierOption
	if v.Key == "" && len(tr.CTLogs()) > 0 {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	if len(tr.RekorLogs()) > 0 {
		opts = append(opts, sgverify.WithTransparencyLog(1))
	}
	opts = append(opts, sgverify.WithObserverTimestamps(1))
	var material root.TrustedMaterial = tr
	var who sgverify.PolicyOption
	if v.Key != "" {
		keys, err := verifier.PublicKeys([]string{v.Key})
		if err != nil {
			return err
		}
		km, err := attest.TrustedKey(keys[0])
		if err != nil {
			return err
		}
		material, who = root.TrustedMaterialCollection{tr, km}, sgverify.WithKey()
	} else {
		id, err := sgverify.NewShortCertificateIdentity(v.Issuer, "", v.Identity, "")
		if err != nil {
			return err
		}
		who = sgverify.WithCertificateIdentity(id)
	}
	sev, err := sgverify.NewVerifier(material, opts...)
	if err != nil {
		return err
	}
	f, err := os.Open(v.Artifact)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = sev.Verify(b, sgverify.NewPolicy(sgverify.WithArtifact(f), who))
	return err
}
