package cli_test

import (
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/policy"
)

// The policy workflow on the example deployment: init pins it, lint finds
// nothing, test passes; the same policy denies an SBOM holding a
// compromised litellm; sign makes a bundle that LoadSigned accepts.
func TestPolicyWorkflow(t *testing.T) {
	tr := &transcript{t: t}
	manifest := testutil.Example(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	code, _, stderr := tr.run("policy", "init", "--stack", manifest, "-o", pol)
	if code != 0 || !strings.Contains(stderr, "components pinned") {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	if code, _, _ := tr.run("policy", "init", "--stack", manifest, "-o", pol); code != cli.ExitUsage {
		t.Errorf("init over an existing policy: exit %d, want 2", code)
	}
	code, stdout, _ := tr.run("policy", "lint", pol)
	if code != 0 || !strings.Contains(stdout, "no problems") {
		t.Fatalf("lint of init's policy: exit %d: %s", code, stdout)
	}
	code, stdout, stderr = tr.run("policy", "test", pol, "--stack", manifest)
	if code != 0 || strings.Contains(stdout, "FAIL") {
		t.Fatalf("test of init's policy: exit %d:\n%s%s", code, stdout, stderr)
	}

	// The same deployment with the compromised release in its plugin.
	sbomFile := filepath.Join(dir, "sbom.cdx.json")
	if code, _, stderr := tr.run("sbom", "--stack", manifest, "-o", sbomFile); code != 0 {
		t.Fatal(stderr)
	}
	data, _ := os.ReadFile(sbomFile)
	if !strings.Contains(string(data), "pkg:pypi/litellm@1.82.6") {
		t.Fatal("the example SBOM lost litellm 1.82.6")
	}
	bad := filepath.Join(dir, "sbom-litellm-1.82.7.cdx.json")
	writeFile(t, bad, strings.ReplaceAll(string(data), "pkg:pypi/litellm@1.82.6", "pkg:pypi/litellm@1.82.7"))
	code, stdout, _ = tr.run("policy", "test", pol, "--sbom", bad)
	if code != cli.ExitDenied || !strings.Contains(stdout, "FAIL  plugin/pii-redactor  sbom.deny[0]") || !strings.Contains(stdout, "pkg:pypi/litellm@1.82.7") {
		t.Fatalf("compromised litellm: exit %d:\n%s", code, stdout)
	}
	code, stdout, _ = tr.run("policy", "test", pol, "--sbom", bad, "-o", "json")
	if code != cli.ExitDenied || !strings.Contains(stdout, `"rule": "sbom.deny[0]"`) {
		t.Fatalf("json: exit %d:\n%s", code, stdout)
	}

	// Sign, then load it as a verifier would.
	key, pub := keyPair(tr, dir, "ecdsa-p256")
	code, _, stderr = tr.run("policy", "sign", pol, "--key", key)
	if code != 0 {
		t.Fatalf("sign: %s", stderr)
	}
	polBytes, _ := os.ReadFile(pol)
	bundle, err := os.ReadFile(pol + ".bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := os.ReadFile(pub)
	pk, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	trust := policy.TrustRoot{Keys: []crypto.PublicKey{pk}}
	state := &policy.State{Path: filepath.Join(dir, "state.json")}
	if _, err := policy.LoadSigned(pol, polBytes, bundle, trust, "example-gateway-deployment", state, time.Now()); err != nil {
		t.Fatalf("signed policy does not load: %v", err)
	}
	edited := []byte(strings.Replace(string(polBytes), "capabilities: {}", "capabilities: {env: [AWS_SECRET_ACCESS_KEY]}", 1))
	if _, err := policy.LoadSigned(pol, edited, bundle, trust, "example-gateway-deployment", state, time.Now()); !errors.Is(err, policy.ErrTampered) {
		t.Fatalf("edited after signing: got %v, want ErrTampered", err)
	}
	tr.sweep(key)
}

func TestPolicyLintAndSignRefuseProblems(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	bad := filepath.Join(testutil.RepoRoot(t), "policy", "testdata", "policies", "bad", "unanchored-subject-regexp.yaml")
	code, stdout, _ := tr.run("policy", "lint", bad)
	if code != cli.ExitDenied || !strings.Contains(stdout, "signers[1].keyless.subjectRegexp") || !strings.Contains(stdout, "not anchored") {
		t.Fatalf("lint: exit %d: %s", code, stdout)
	}
	key, _ := keyPair(tr, dir, "ecdsa-p256")
	code, _, stderr := tr.run("policy", "sign", bad, "--key", key, "--bundle", filepath.Join(dir, "b.json"))
	if code != cli.ExitUsage || !strings.Contains(stderr, "not signing") {
		t.Fatalf("sign of a bad policy: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.json")); !os.IsNotExist(err) {
		t.Error("a bundle was written for a policy with problems")
	}
	if code, _, _ := tr.run("policy", "lint", filepath.Join(dir, "missing.yaml")); code != cli.ExitUsage {
		t.Errorf("lint of a missing file: exit %d, want 2", code)
	}
}

func TestPolicySignRefusesKeyFile(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	good := filepath.Join(testutil.RepoRoot(t), "policy", "testdata", "policies", "good.yaml")
	key, _ := keyPair(tr, dir, "ecdsa-p256")
	code, _, stderr := tr.run("policy", "sign", good, "--key", key, "--bundle", filepath.Join(dir, "b.json"))
	if code != cli.ExitUsage || !strings.Contains(stderr, "keyFile") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
