package verifier_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/verifier"
)

// The sigstore-conformance identity and issuer the vectors use unless a
// vector names its own.
const (
	conformanceIdentity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
	conformanceIssuer   = "https://token.actions.githubusercontent.com"
)

// TestSigstoreConformance runs every bundle-verify vector of
// sigstore-conformance (testdata/sigstore-conformance, see its NOTICE)
// through the CLI's library calls, the artifact given as the file and as
// sha256:DIGEST: a vector whose folder ends in _fail must be refused, any
// other must verify. A message signature goes through verifier.Blob (what
// verify-blob runs), an attestation through verifier.Attestation (what
// verify-attestation runs).
func TestSigstoreConformance(t *testing.T) {
	root := filepath.Join(testutil.RepoRoot(t), "testdata", "sigstore-conformance")
	dirs, err := os.ReadDir(filepath.Join(root, "bundle-verify"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		dir := filepath.Join(root, "bundle-verify", d.Name())
		t.Run(d.Name(), func(t *testing.T) {
			want := !strings.HasSuffix(d.Name(), "_fail")
			v, err := readVector(t, root, dir)
			if err != nil {
				// A key or trusted root that does not load is refused
				// before any bundle is read, as the CLI refuses it.
				if want {
					t.Errorf("the vector's trust material is refused: %v", err)
				}
				return
			}
			for _, target := range []string{v.artifact, "sha256:" + v.sha256} {
				err := v.verify(target)
				if got := err == nil; got != want {
					t.Errorf("%s: verified=%v, want %v: %v", filepath.Base(target), got, want, err)
				}
			}
		})
	}
	if n < 60 {
		t.Fatalf("only %d vectors", n)
	}
}

type vector struct {
	bundle, artifact, sha256 string
	signer                   bundle.Signer
	opts                     bundle.Options
	message                  bool
}

func readVector(t *testing.T, root, dir string) (vector, error) {
	t.Helper()
	v := vector{bundle: filepath.Join(dir, "bundle.sigstore.json"), artifact: filepath.Join(dir, "artifact")}
	if _, err := os.Stat(v.artifact); err != nil {
		v.artifact = filepath.Join(root, "bundle-verify", "a.txt")
	}
	data, err := os.ReadFile(v.artifact)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	v.sha256 = hex.EncodeToString(sum[:])
	trusted := filepath.Join(dir, "trusted_root.json")
	if _, err := os.Stat(trusted); err != nil {
		trusted = filepath.Join(root, "trusted_root.public-good.json")
	}
	if v.opts.Material, err = verifier.TrustedRoot(trusted); err != nil {
		return v, err
	}
	if _, err := os.Stat(filepath.Join(dir, "key.pub")); err == nil {
		keys, err := verifier.PublicKeys([]string{filepath.Join(dir, "key.pub")})
		if err != nil {
			return v, err
		}
		v.signer.Key = keys[0]
		// A managed key's bundle carries its log entry: it is checked
		// against the trusted root, as the suite's clients do.
		v.opts.RequireLog = true
	} else {
		identity, issuer := conformanceIdentity, conformanceIssuer
		if b, err := os.ReadFile(filepath.Join(dir, "identity")); err == nil {
			identity = strings.TrimSpace(string(b))
		}
		if b, err := os.ReadFile(filepath.Join(dir, "issuer")); err == nil {
			issuer = strings.TrimSpace(string(b))
		}
		if v.signer.Identity, err = bundle.NewIdentity(issuer, "", identity, ""); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(v.bundle)
	v.message = strings.Contains(string(raw), `"messageSignature"`)
	return v, nil
}

func (v vector) verify(target string) error {
	if v.message {
		_, err := verifier.Blob(v.bundle, target, v.signer, v.opts)
		return err
	}
	_, err := verifier.Attestation(v.bundle, target, v.signer, v.opts)
	return err
}
