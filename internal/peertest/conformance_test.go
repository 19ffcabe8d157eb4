package peertest

import (
	"path/filepath"
	"testing"

	"github.com/trustgate/trustgate/internal/conformance"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/testutil"
)

// cosignDiffers lists the vectors where cosign v2.6.5's verdict differs
// from the suite's (and trustgate's, which TestSigstoreConformance in
// verifier checks), with who is right.
var cosignDiffers = map[string]string{
	// The bundle's messageDigest is not the artifact's, while the
	// signature is over the artifact. cosign verifies the signature over
	// the artifact and ignores the stated digest; the suite, sigstore-go's
	// policy in trustgate and trustgate refuse the inconsistent bundle.
	// The digest is an unauthenticated hint, so neither verdict admits
	// other bytes; trustgate follows the suite.
	"message-digest-mismatch_fail": "cosign accepts an inconsistent messageDigest",
}

// TestConformanceMessageSignaturesCosign runs every message-signature
// vector of sigstore-conformance through cosign verify-blob, offline, with
// the vector's trusted root: cosign's verdict must be the suite's (and so
// trustgate's), but for the differences listed in cosignDiffers, which
// must still differ (so that the list cannot go stale).
func TestConformanceMessageSignaturesCosign(t *testing.T) {
	interop.Cosign(t)
	vectors, err := conformance.Vectors(filepath.Join(testutil.RepoRoot(t), "testdata", "sigstore-conformance"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range vectors {
		if !v.Message {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			args := []string{"--bundle", v.Bundle, "--trusted-root", v.TrustedRoot}
			if v.Key != "" {
				args = append(args, "--key", v.Key)
			} else {
				args = append(args, "--certificate-identity", v.Identity, "--certificate-oidc-issuer", v.Issuer)
			}
			if !v.IntegratedTime {
				// cosign's default asks for a log entry's integrated
				// time, which a Rekor v2 entry does not have: the time
				// then comes from the bundle's RFC 3161 timestamps.
				args = append(args, "--use-signed-timestamps")
			}
			out, err := interop.CosignVerifyBlob(t, append(args, v.Artifact)...)
			agrees := (err == nil) == v.WantPass
			if why, known := cosignDiffers[v.Name]; known {
				if agrees {
					t.Fatalf("cosign now agrees with the suite (%s no longer holds): remove it from cosignDiffers", why)
				}
				return
			}
			if !agrees {
				t.Fatalf("cosign verified=%v, the suite wants %v:\n%s", err == nil, v.WantPass, out)
			}
		})
	}
	if n < 40 {
		t.Fatalf("only %d message-signature vectors", n)
	}
}
