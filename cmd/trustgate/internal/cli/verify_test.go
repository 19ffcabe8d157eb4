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

// verifyEnv is the example deployment in a folder of its own, with a key,
// an SBOM attestation, and a policy signed by that key that requires it.
type verifyEnv struct {
	dir, stack, key, pub, policy, sbomBundle, state string
}

func newVerifyEnv(t *testing.T, tr *transcript) verifyEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "deploy")
	testutil.CopyDir(t, filepath.Dir(testutil.Example(t)), dir)
	e := verifyEnv{dir: dir, stack: filepath.Join(dir, "stack.yaml"), policy: filepath.Join(dir, "policy.yaml"), state: filepath.Join(t.TempDir(), "state.json")}
	e.key, e.pub = keyPair(tr, t.TempDir(), "ecdsa-p256")
	sbomOut := filepath.Join(dir, "sbom.cdx.json")
	e.sbomBundle = sbomOut + ".bundle.json"
	for _, args := range [][]string{
		{"sbom", "--stack", e.stack, "-o", sbomOut, "--attest", "--key", e.key},
		{"policy", "init", "--stack", e.stack, "--signer", "release=" + e.pub, "-o", e.policy},
		{"policy", "sign", e.policy, "--key", e.key},
	} {
		if code, _, stderr := tr.run(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	return e
}

func (e verifyEnv) args(extra ...string) []string {
	return append([]string{"verify", "--stack", e.stack, "--policy", e.policy, "--trust-root", e.pub, "--bundle", e.sbomBundle, "--state", e.state}, extra...)
}

func TestVerifyDeployment(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	code, stdout, stderr := tr.run(e.args()...)
	if code != 0 || strings.Contains(stdout, "FAIL") || !strings.Contains(stdout, "signed by release") {
		t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = tr.run(e.args("-o", "json")...)
	var report struct {
		Allowed   bool
		Decisions []struct{ Subject string }
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &report) != nil || !report.Allowed || len(report.Decisions) < 6 {
		t.Fatalf("json: exit %d: %s", code, stdout)
	}

	code, stdout, _ = tr.run(e.args("-o", "sarif")...)
	if code != 0 || !strings.Contains(stdout, `"version": "2.1.0"`) {
		t.Fatalf("sarif: exit %d: %.200s", code, stdout)
	}

	// A signed verification summary of the run, about the manifest and
	// every component, that verifies for the manifest with the key.
	vsa := filepath.Join(t.TempDir(), "vsa.json")
	if code, _, stderr := tr.run(e.args("--vsa", vsa, "--key", e.key)...); code != 0 {
		t.Fatalf("--vsa: exit %d: %s", code, stderr)
	}
	code, stdout, _ = tr.run("verify-attestation", "--bundle", vsa, "--key", e.pub, "--type", "vsa", e.stack)
	if code != 0 || !strings.Contains(stdout, "https://slsa.dev/verification_summary/v1") {
		t.Fatalf("the summary does not verify: exit %d: %s", code, stdout)
	}
	if code, _, stderr := tr.run(e.args("--key", e.key)...); code != cli.ExitUsage || !strings.Contains(stderr, "--vsa") {
		t.Fatalf("--key without --vsa: exit %d: %s", code, stderr)
	}

	// One byte more in a file of the Python plugin: denied, with the rule,
	// the expected and the found digest.
	victim := filepath.Join(e.dir, "plugins", "pii-redactor", "pii_redactor", "__init__.py")
	orig, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, victim, string(orig)+"#")
	code, stdout, _ = tr.run(e.args()...)
	if code != cli.ExitDenied || !strings.Contains(stdout, "FAIL  plugin/pii-redactor  components[3].digests: expected h1:") {
		t.Fatalf("tampered plugin: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = tr.run(e.args("-o", "sarif")...)
	if code != cli.ExitDenied || !strings.Contains(stdout, "trustgate/components.digests") || !strings.Contains(stdout, `"level": "error"`) {
		t.Fatalf("sarif of a denial: exit %d: %.400s", code, stdout)
	}
	writeFile(t, victim, string(orig))
	tr.sweep(e.key)
}

func TestVerifyRefusesPolicy(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	_, otherPub := keyPair(tr, t.TempDir(), "ecdsa-p256")
	cases := []struct {
		name string
		args []string
		prep func()
		code int
		want string
	}{
		{"policy signed by a key the verifier does not trust", []string{"verify", "--stack", e.stack, "--policy", e.policy, "--trust-root", otherPub, "--state", e.state}, nil, cli.ExitDenied, "not signed by a trusted signer"},
		{"policy bundle missing", e.args("--policy-bundle", filepath.Join(e.dir, "nope.json")), nil, cli.ExitDenied, "not signed"},
		{"no policy trust root", []string{"verify", "--stack", e.stack, "--policy", e.policy, "--state", e.state}, nil, cli.ExitUsage, "no policy trust root"},
		{"policy edited after signing", e.args(), func() {
			data, _ := os.ReadFile(e.policy)
			writeFile(t, e.policy, strings.Replace(string(data), "capabilities: {}", "capabilities: {env: [HOME]}", 1))
		}, cli.ExitDenied, "changed after signing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.prep != nil {
				c.prep()
			}
			code, _, stderr := tr.run(c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, %q; want exit %d with %q", code, stderr, c.code, c.want)
			}
		})
	}
}

func TestVerifyAttestationCLI(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, pub := keyPair(tr, dir, "ecdsa-p256")
	_, otherPub := keyPair(tr, t.TempDir(), "ed25519")
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	art := writeFile(t, filepath.Join(dir, "agent.bin"), "agent v1")
	other := writeFile(t, filepath.Join(dir, "agent-evil.bin"), "agent v1, changed")
	bundle := filepath.Join(dir, "agent.bundle.json")
	if code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art, "--key", key, "--bundle", bundle); code != 0 {
		t.Fatal(stderr)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"verifies", []string{"--key", pub, "--type", "cyclonedx", art}, 0, "PASS"},
		{"by digest", []string{"--key", pub, "sha256:" + sha256hex("agent v1")}, 0, "PASS"},
		{"another file", []string{"--key", pub, other}, cli.ExitDenied, "not a subject"},
		{"another key", []string{"--key", otherPub, art}, cli.ExitDenied, "signature does not verify"},
		{"another predicate type", []string{"--key", pub, "--type", "slsaprovenance", art}, cli.ExitDenied, "another predicate type"},
		{"identity for a key bundle", []string{"--certificate-identity", "me@example.com", "--certificate-oidc-issuer", "https://issuer.example", "--trusted-root", interopEmptyRoot(t), art}, cli.ExitDenied, "signer is not the one required"},
		{"key and identity", []string{"--key", pub, "--certificate-identity", "me@example.com", art}, cli.ExitUsage, "exactly one"},
		{"unanchored identity pattern", []string{"--certificate-identity-regexp", "example.com", "--certificate-oidc-issuer", "https://issuer.example", art}, cli.ExitUsage, "not anchored"},
		{"bad digest", []string{"--key", pub, "sha256:abc"}, cli.ExitUsage, "not sha256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := tr.run(append([]string{"verify-attestation", "--bundle", bundle}, c.args...)...)
			if code != c.code || !strings.Contains(stdout+stderr, c.want) {
				t.Fatalf("exit %d, %q %q; want exit %d with %q", code, stdout, stderr, c.code, c.want)
			}
		})
	}
	tr.sweep(key)
}

func interopEmptyRoot(t *testing.T) string {
	return writeFile(t, filepath.Join(t.TempDir(), "root.json"), `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
}

func TestVerifyImage(t *testing.T) {
	for _, referrers := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers", false: "cosign tag"}[referrers], func(t *testing.T) {
			tr := &transcript{t: t}
			dir := t.TempDir()
			key, pub := keyPair(tr, dir, "ecdsa-p256")
			_, otherPub := keyPair(tr, t.TempDir(), "ecdsa-p256")
			pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
			ref, _ := testutil.Registry(t, referrers, nil, "ai/gateway:1.0")
			code, stdout, _ := tr.run("verify", "image", ref, "--key", pub)
			if code != cli.ExitDenied || !strings.Contains(stdout, "no attestation stored") {
				t.Fatalf("no attestation: exit %d: %s", code, stdout)
			}
			if code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", ref, "--key", key, "--attach"); code != 0 {
				t.Fatal(stderr)
			}
			code, stdout, _ = tr.run("verify", "image", ref, "--key", pub, "--type", "cyclonedx")
			if code != 0 || !strings.Contains(stdout, "PASS") {
				t.Fatalf("verify image: exit %d: %s", code, stdout)
			}
			code, stdout, _ = tr.run("verify", "image", ref, "--key", otherPub)
			if code != cli.ExitDenied || !strings.Contains(stdout, "signature does not verify") {
				t.Fatalf("other key: exit %d: %s", code, stdout)
			}
			code, stdout, _ = tr.run("verify", "image", ref, "--key", pub, "--type", "slsaprovenance")
			if code != cli.ExitDenied || !strings.Contains(stdout, "another predicate type") {
				t.Fatalf("other type: exit %d: %s", code, stdout)
			}
			tr.sweep(key)
		})
	}
}
