package verifier_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/verifier"
)

// A real entry of the public Rekor log in cosign's older blob bundle
// (testdata/cosign-legacy, see its NOTICE) verifies offline against the
// public-good trusted root: the certificate at the time the signed entry
// timestamp proves, the SET against the root's Rekor key. A forged SET,
// another file and another identity are refused.
func TestCosignBlobBundlePublicGood(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "cosign-legacy")
	material, err := verifier.TrustedRoot(filepath.Join(testutil.RepoRoot(t), "testdata", "sigstore-conformance", "trusted_root.public-good.json"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(subject string) bundle.Signer {
		i, err := bundle.NewIdentity("https://github.com/login/oauth", "", subject, "")
		if err != nil {
			t.Fatal(err)
		}
		return bundle.Signer{Identity: i}
	}
	good := filepath.Join(dir, "artifact.bundle")
	art := filepath.Join(dir, "artifact.txt")
	opts := bundle.Options{Material: material}
	files := verifier.SignatureFiles{Bundle: good}
	res, err := verifier.BlobFrom(files, art, id("daniel.bevenius@gmail.com"), opts)
	if err != nil {
		t.Fatalf("the published bundle: %v", err)
	}
	if len(res.Times) == 0 {
		t.Error("no verified time: the SET's integrated time was not used")
	}
	if _, err := verifier.BlobFrom(files, "sha256:4bc453b53cb3d914b45f4b250294236adba2c0e09ff6f03793949e7e39fd4cc1", id("daniel.bevenius@gmail.com"), opts); err != nil {
		t.Fatalf("by digest: %v", err)
	}

	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	rb := m["rekorBundle"].(map[string]any)
	set, _ := base64.StdEncoding.DecodeString(rb["SignedEntryTimestamp"].(string))
	set[len(set)-3] ^= 1
	rb["SignedEntryTimestamp"] = base64.StdEncoding.EncodeToString(set)
	forged, _ := json.Marshal(m)
	forgedPath := filepath.Join(t.TempDir(), "forged.bundle")
	if err := os.WriteFile(forgedPath, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.txt")
	if err := os.WriteFile(other, []byte("something else\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		files       verifier.SignatureFiles
		target, who string
		want        error
	}{
		{"forged SET", verifier.SignatureFiles{Bundle: forgedPath}, art, "daniel.bevenius@gmail.com", bundle.ErrLog},
		{"another file", files, other, "daniel.bevenius@gmail.com", bundle.ErrLog},
		{"another identity", files, art, "someone@example.com", bundle.ErrUntrustedSigner},
	} {
		_, err := verifier.BlobFrom(tc.files, tc.target, id(tc.who), opts)
		if !errors.Is(err, verifier.ErrDenied) || !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// Without the trusted root's logs, nothing proves when the
	// certificate was valid: refused.
	if _, err := verifier.BlobFrom(files, art, id("daniel.bevenius@gmail.com"), bundle.Options{}); err == nil {
		t.Error("verified keyless with no trusted root")
	}
}
