package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/testutil"
)

// omsFixtures are model_signing's published signatures of its sample
// models, and the key of those signed with a key.
func omsFixtures(t *testing.T) (dir, pub string) {
	t.Helper()
	root := filepath.Join(testutil.RepoRoot(t), "testdata", "model-transparency", "scripts", "tests")
	return root, filepath.Join(root, "keys", "certificate", "signing-key-pub.pem")
}

// TestVerifyModelCLI: model_signing's own signatures verify as its test
// scripts verify them (a folder, one file, --ignore-paths, keyless on the
// public-good instance), and the signature file inside the folder is left
// out by itself.
func TestVerifyModelCLI(t *testing.T) {
	dir, pub := omsFixtures(t)
	trustedRoot := filepath.Join(testutil.RepoRoot(t), "testdata", "sigstore-conformance", "trusted_root.public-good.json")
	keyless := []string{"--certificate-identity", "stefanb@us.ibm.com", "--certificate-oidc-issuer", "https://sigstore.verify.ibm.com/oauth2", "--trusted-root", trustedRoot}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"v1.1.0 key", []string{filepath.Join(dir, "v1.1.0-elliptic-key"), "--key", pub}},
		{"v1.0.1 key, --ignore-paths", []string{filepath.Join(dir, "v1.0.1-elliptic-key"), "--key", pub, "--ignore-paths", filepath.Join(dir, "v1.0.1-elliptic-key", "ignore-me")}},
		{"v1.0.0 key, one file", []string{filepath.Join(dir, "v1.0.0-elliptic-key", "signme-1"), "--key", pub, "--signature", filepath.Join(dir, "v1.0.0-elliptic-key", "model.sig")}},
		{"v1.1.0 keyless", append([]string{filepath.Join(dir, "v1.1.0-sigstore")}, keyless...)},
		{"v1.0.0 keyless, regexp", []string{filepath.Join(dir, "v1.0.0-sigstore"), "--certificate-identity-regexp", `^stefanb@us\.ibm\.com$`, "--certificate-oidc-issuer", "https://sigstore.verify.ibm.com/oauth2", "--trusted-root", trustedRoot}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"verify-model"}, c.args...)
			if !strings.Contains(strings.Join(args, " "), "--signature") {
				args = append(args, "--signature", filepath.Join(c.args[0], "model.sig"))
			}
			code, stdout, stderr := run(t, args...)
			if code != cli.ExitOK || !strings.HasPrefix(stdout, "PASS  ") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
		})
	}
}

// TestVerifyModelCLIDenied: a changed model fails (exit 1) with a line that
// names the file; -o json says the same.
func TestVerifyModelCLIDenied(t *testing.T) {
	fixtures, pub := omsFixtures(t)
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(fixtures, "v1.1.0-elliptic-key"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "signme-2"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	sig := filepath.Join(dir, "model.sig")
	code, stdout, _ := run(t, "verify-model", dir, "--signature", sig, "--key", pub)
	if code != cli.ExitDenied || !strings.HasPrefix(stdout, "FAIL  ") || !strings.Contains(stdout, `"signme-2" (signed sha256:`) {
		t.Errorf("exit %d, stdout %q: want exit 1 and a FAIL line naming signme-2", code, stdout)
	}
	code, stdout, _ = run(t, "verify-model", dir, "--signature", sig, "--key", pub, "-o", "json")
	var doc struct {
		Verified bool   `json:"verified"`
		Error    string `json:"error"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != cli.ExitDenied || doc.Verified || !strings.Contains(doc.Error, "signme-2") {
		t.Errorf("-o json: exit %d, %q", code, stdout)
	}
	// Without the signature's own ignore paths (v1.0.1 records none), the
	// file --ignore-paths leaves out is unsigned.
	v101 := filepath.Join(fixtures, "v1.0.1-elliptic-key")
	code, stdout, _ = run(t, "verify-model", v101, "--signature", filepath.Join(v101, "model.sig"), "--key", pub)
	if code != cli.ExitDenied || !strings.Contains(stdout, `"ignore-me"`) {
		t.Errorf("v1.0.1 without --ignore-paths: exit %d, stdout %q", code, stdout)
	}
}

// TestVerifyModelCLIJSON: -o json reports the verified model.
func TestVerifyModelCLIJSON(t *testing.T) {
	dir, pub := omsFixtures(t)
	model := filepath.Join(dir, "v1.1.0-elliptic-key")
	code, stdout, stderr := run(t, "verify-model", model, "--signature", filepath.Join(model, "model.sig"), "--key", pub, "-o", "json")
	var doc struct {
		Verified  bool   `json:"verified"`
		Model     string `json:"model"`
		Digest    string `json:"digest"`
		Method    string `json:"method"`
		Resources int    `json:"resources"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != cli.ExitOK {
		t.Fatalf("exit %d, %q, %s", code, stdout, stderr)
	}
	want := "sha256:92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4"
	if !doc.Verified || doc.Model != "v1.1.0-elliptic-key" || doc.Digest != want || doc.Method != "files" || doc.Resources != 2 {
		t.Errorf("report %+v", doc)
	}
}

// TestVerifyModelCLIBadInput: bad flags and paths are exit 2, before any
// verdict.
func TestVerifyModelCLIBadInput(t *testing.T) {
	dir, pub := omsFixtures(t)
	model := filepath.Join(dir, "v1.1.0-elliptic-key")
	sig := filepath.Join(model, "model.sig")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no signature", []string{model, "--key", pub}, "--signature"},
		{"no signer", []string{model, "--signature", sig}, "--key"},
		{"a missing signature file", []string{model, "--signature", filepath.Join(t.TempDir(), "none.sig"), "--key", pub}, "--signature"},
		{"a missing model", []string{filepath.Join(t.TempDir(), "none"), "--signature", sig, "--key", pub}, "model"},
		{"an ignore path outside the model", []string{model, "--signature", sig, "--key", pub, "--ignore-paths", dir}, "--ignore-paths"},
		{"a predicate type", []string{model, "--signature", sig, "--key", pub, "--type", "cyclonedx"}, "--type"},
		{"bad output", []string{model, "--signature", sig, "--key", pub, "-o", "yaml"}, "--output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, append([]string{"verify-model"}, c.args...)...)
			if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit 2 and an error about %s", code, stdout, stderr, c.want)
			}
		})
	}
}
