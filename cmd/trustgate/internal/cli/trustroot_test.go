package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/conformance"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/internal/tuftest"
	"github.com/trustgate/trustgate/tufroot"
)

// TestKeylessWithTUFTrustedRoot verifies keyless sigstore-conformance
// vectors with no --trusted-root: the public-good trusted root comes
// through TUF from a repository served on 127.0.0.1, refreshed at each
// check, then from the cache alone with --offline once the mirror is down.
func TestKeylessWithTUFTrustedRoot(t *testing.T) {
	confDir := filepath.Join(testutil.RepoRoot(t), "testdata", "sigstore-conformance")
	publicGood, err := os.ReadFile(filepath.Join(confDir, "trusted_root.public-good.json"))
	if err != nil {
		t.Fatal(err)
	}
	repo := tuftest.New(t, map[string][]byte{tufroot.TargetName: publicGood})
	dir := t.TempDir()
	cache := filepath.Join(dir, "tuf")
	anchor := writeFile(t, filepath.Join(dir, "root.json"), string(repo.Anchor()))
	vectors, err := conformance.Vectors(confDir)
	if err != nil {
		t.Fatal(err)
	}
	var keyless, keyed conformance.Vector
	for _, v := range vectors {
		switch v.Name {
		case "happy-path-v0.3":
			keyless = v
		case "managed-key-happy-path":
			keyed = v
		}
	}
	if keyless.Bundle == "" || keyed.Bundle == "" {
		t.Fatal("the vectors this test uses are gone")
	}
	keylessArgs := func(identity string, extra ...string) []string {
		args := []string{"verify-blob", "--tuf-cache", cache, "--bundle", keyless.Bundle,
			"--certificate-identity", identity, "--certificate-oidc-issuer", keyless.Issuer}
		return append(append(args, extra...), keyless.Artifact)
	}

	// An empty cache is refused offline, with how to fill it.
	code, _, stderr := run(t, append(keylessArgs(keyless.Identity), "--offline")...)
	if code != cli.ExitUsage || !strings.Contains(stderr, "trust-root update") {
		t.Fatalf("offline with an empty cache: exit %d, %s", code, stderr)
	}
	if code, _, _ := run(t, "trust-root", "status", "--tuf-cache", cache); code != cli.ExitDenied {
		t.Fatalf("status of an empty cache: exit %d, want %d", code, cli.ExitDenied)
	}
	if code, _, stderr := run(t, "trust-root", "update", "--tuf-cache", cache, "--mirror", repo.URL); code != cli.ExitUsage || !strings.Contains(stderr, "--root") {
		t.Fatalf("--mirror without --root: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := run(t, "trust-root", "update", "--tuf-cache", cache, "--mirror", repo.URL, "--root", anchor)
	if code != 0 || !strings.Contains(stdout, sha256hex(string(publicGood))) || !strings.Contains(stdout, repo.URL) {
		t.Fatalf("trust-root update: exit %d, %s%s", code, stdout, stderr)
	}

	// Online: each check refreshes from the repository the cache holds.
	before := repo.Hits()
	code, stdout, stderr = run(t, keylessArgs(keyless.Identity)...)
	if code != 0 || !strings.HasPrefix(stdout, "PASS") {
		t.Fatalf("keyless through TUF: exit %d, %s%s", code, stdout, stderr)
	}
	if repo.Hits() == before {
		t.Error("the check did not refresh the TUF metadata")
	}
	if code, stdout, _ := run(t, keylessArgs("https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main")...); code != cli.ExitDenied {
		t.Fatalf("another identity: exit %d, %s", code, stdout)
	}

	// A key check needs no trust material: it never reaches the mirror.
	before = repo.Hits()
	code, stdout, stderr = run(t, "verify-blob", "--tuf-cache", cache, "--bundle", keyed.Bundle, "--key", keyed.Key, keyed.Artifact)
	if code != 0 || repo.Hits() != before {
		t.Fatalf("key check: exit %d, %d requests to the mirror, %s%s", code, repo.Hits()-before, stdout, stderr)
	}

	// The mirror goes down: a refreshing check fails and says so; the
	// cache alone still verifies, and --require-tlog with a key uses it.
	repo.Close()
	code, _, stderr = run(t, keylessArgs(keyless.Identity)...)
	if code != cli.ExitUsage || !strings.Contains(stderr, "unreachable") || !strings.Contains(stderr, "offline") {
		t.Fatalf("mirror down: exit %d, %s", code, stderr)
	}
	if code, stdout, stderr := run(t, append(keylessArgs(keyless.Identity), "--offline")...); code != 0 {
		t.Fatalf("offline from the cache: exit %d, %s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := run(t, "verify-blob", "--tuf-cache", cache, "--offline", "--require-tlog", "--bundle", keyed.Bundle, "--key", keyed.Key, keyed.Artifact); code != 0 {
		t.Fatalf("key with --require-tlog, offline: exit %d, %s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "trust-root", "status", "--tuf-cache", cache, "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"rootVersion": 1`) {
		t.Fatalf("status: exit %d, %s%s", code, stdout, stderr)
	}
	if code, _, stderr := run(t, append(keylessArgs(keyless.Identity), "--offline", "--trusted-root", filepath.Join(confDir, "trusted_root.public-good.json"))...); code != cli.ExitUsage || !strings.Contains(stderr, "not both") {
		t.Fatalf("--trusted-root with --offline: exit %d, %s", code, stderr)
	}
}

// TestTrustRootUpdateRefusesTamperedTarget: a mirror that serves other
// bytes for the trusted root than its signed metadata states is refused,
// and the refused update leaves nothing to verify with.
func TestTrustRootUpdateRefusesTamperedTarget(t *testing.T) {
	good := []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
	repo := tuftest.New(t, map[string][]byte{tufroot.TargetName: good})
	repo.TamperTarget(tufroot.TargetName, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[]}`))
	dir := t.TempDir()
	anchor := writeFile(t, filepath.Join(dir, "root.json"), string(repo.Anchor()))
	code, _, stderr := run(t, "trust-root", "update", "--tuf-cache", filepath.Join(dir, "tuf"), "--mirror", repo.URL, "--root", anchor)
	if code != cli.ExitUsage || !strings.Contains(stderr, "does not match its signed metadata") {
		t.Fatalf("tampered target: exit %d, %s", code, stderr)
	}
	if code, _, _ := run(t, "trust-root", "status", "--tuf-cache", filepath.Join(dir, "tuf")); code != cli.ExitDenied {
		t.Fatalf("status after a refused update: exit %d", code)
	}
}

// The admission commands never fetch: --tuf-cache is read as it is, and
// one with nothing in it stops them before any policy is read.
func TestAdmissionReadsTUFCacheOnly(t *testing.T) {
	dir := t.TempDir()
	_, key := testsign.PublicKeyFile(t, filepath.Join(dir, "k.pub"))
	code, _, stderr := run(t, "admission", "check", "--policy", filepath.Join(dir, "policy.yaml"), "--deployment", "d",
		"--trust-root", key, "--tuf-cache", filepath.Join(dir, "empty"), "-f", filepath.Join(dir, "w.yaml"))
	if code != cli.ExitUsage || !strings.Contains(stderr, "no trusted root in the TUF cache") {
		t.Fatalf("exit %d, %s", code, stderr)
	}
	if code, _, stderr := run(t, "admission", "check", "--offline"); code != cli.ExitUsage || !strings.Contains(stderr, "unknown flag: --offline") {
		t.Fatalf("--offline on a command that never fetches: exit %d, %s", code, stderr)
	}
}
