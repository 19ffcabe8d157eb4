package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/example"
	"github.com/trustgate/trustgate/internal/testutil"
)

// notInCheckout starts the line the demo prints when it builds the
// example's Go programs from the sources built into the binary.
const notInCheckout = "not in a trustgate checkout: its Go programs are built from the sources of trustgate "

// TestDemoOutsideCheckout runs trustgate demo as after go install: the
// binary copied out of the checkout and run from an empty folder, with an
// environment that names no path in the checkout. The demo builds the
// example's Go programs from the sources built into the binary, prints
// what it prints in a checkout, and the programs come out byte for byte as
// the ones built in the checkout.
func TestDemoOutsideCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trustgate binary and runs the demo with it")
	}
	root := testutil.RepoRoot(t)
	built := buildTrustgate(t)
	home := t.TempDir()
	if strings.HasPrefix(home, root+string(os.PathSeparator)) {
		t.Skipf("the temporary folder %s is inside the checkout", home)
	}
	bin := filepath.Join(home, "bin", "trustgate")
	data, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	work, tmp := filepath.Join(home, "work"), filepath.Join(home, "tmp")
	for _, d := range []string{work, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PWD=" + work, "TMPDIR=" + tmp}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "PWD" || k == "OLDPWD" || k == "TMPDIR" || k == "GOWORK":
		case k == "PATH":
			var keep []string
			for _, p := range filepath.SplitList(v) {
				if !strings.Contains(p, root) {
					keep = append(keep, p)
				}
			}
			env = append(env, "PATH="+strings.Join(keep, string(os.PathListSeparator)))
		case strings.Contains(v, root):
		default:
			env = append(env, kv)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--dir", "demo") // relative, as a user types it
	cmd.Dir, cmd.Env = work, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("trustgate demo outside the checkout: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("the demo took %v outside the checkout", time.Since(start).Round(time.Second))
	dir := filepath.Join(work, "demo")
	checkDemo(t, dir, stdout.String(), false)

	// The sources written out to build from are gone, and what was built
	// from them is what the checkout builds.
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "trustgate-example-src-") {
			t.Errorf("the demo left the sources it built from in %s", filepath.Join(tmp, e.Name()))
		}
	}
	inCheckout := filepath.Join(filepath.Dir(testutil.Example(t)), "bin")
	for name := range example.Programs {
		if a, b := fileSHA256(t, filepath.Join(dir, "bin", name)), fileSHA256(t, filepath.Join(inCheckout, name)); a != b {
			t.Errorf("bin/%s built outside the checkout has sha256 %s, in the checkout %s", name, a, b)
		}
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// checkDemo checks what trustgate demo --dir dir printed (stdout) and kept
// in dir at its main steps; inCheckout says where it ran.
func checkDemo(t *testing.T, dir, stdout string, inCheckout bool) {
	t.Helper()
	if says := strings.Contains(stdout, notInCheckout); inCheckout && says {
		t.Errorf("the demo, run in the checkout, says %q", notInCheckout)
	} else if !inCheckout && !says {
		t.Errorf("the demo, run outside the checkout, does not say %q", notInCheckout)
	}
	for _, want := range []string{"trustgate-gateway", "guardrail", "pii-redactor", "audit-agent", "gateway-image", "tiny-guard",
		"github.com/hashicorp/go-hclog@v1.6.3", "litellm@1.82.6", "grpcio@1.51.1", "env:OPENAI_API_KEY"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"policy.yaml", "policy.yaml.bundle.json", "policy-state.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("demo kept no %s: %v", f, err)
		}
	}
	// 12 decisions: the manifest, five components, the three models (two
	// bound to their providers, one local), two providers and the SBOM.
	if !strings.Contains(stdout, "PASS: 12 decisions") || !strings.Contains(stdout, "FAIL  plugin/pii-redactor  components[3].digests") ||
		!strings.Contains(stdout, "2 remote models bound to their providers") {
		t.Errorf("demo's verification step:\n%s", stdout)
	}
	// Step 6: the real gateway starts on the signed example, then refuses
	// a changed plugin without listening.
	if example.PythonRuntime() == nil || os.Getenv("CI") == "true" {
		for _, want := range []string{"6. Starting trustgate-gateway", "ready at http://127.0.0.1:",
			"plugin/guardrail ", "plugin/pii-redactor ", "agent/audit-agent ", "exit 3, nothing listened",
			"trustgate-gateway: refused at verify: plugin/guardrail: components[2].digests: expected sha256:"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("demo's gateway step lacks %q:\n%s", want, stdout)
			}
		}
		if n := strings.Count(stdout, "  running  "); n != 4 {
			t.Errorf("demo's gateway status shows %d running components, want 4:\n%s", n, stdout)
		}
	}
	if !strings.Contains(stdout, "12 of 12 decisions pass") {
		t.Errorf("demo's dry run of its own policy does not pass:\n%s", stdout)
	}
	sbomBytes, err := os.ReadFile(filepath.Join(dir, "sbom.cdx.json"))
	if err != nil {
		t.Fatalf("demo kept no SBOM: %v", err)
	}
	// The bundle signs exactly the SBOM written, about the manifest.
	raw, err := os.ReadFile(filepath.Join(dir, "sbom.cdx.json.bundle.json"))
	if err != nil {
		t.Fatalf("demo kept no bundle: %v", err)
	}
	b, err := attest.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Subject   []attest.Subject
		Predicate json.RawMessage
	}
	if err := json.Unmarshal(b.GetDsseEnvelope().GetPayload(), &st); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, sbomBytes)
	if !bytes.Equal(st.Predicate, compact.Bytes()) {
		t.Error("the attested predicate is not the SBOM the demo wrote")
	}
	manifest, _ := os.ReadFile(filepath.Join(dir, "stack.yaml"))
	if len(st.Subject) != 7 || st.Subject[len(st.Subject)-1].Name != "stack.yaml" ||
		st.Subject[len(st.Subject)-1].Digest["sha256"] != sha256hex(string(manifest)) {
		t.Errorf("subjects: %+v", st.Subject)
	}
}
