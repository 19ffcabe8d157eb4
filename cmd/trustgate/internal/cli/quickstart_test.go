package cli_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/testutil"
)

// TestQuickstart runs the README's quick start as a user would: the
// ```sh quickstart block(s) of README.md, as written, with bash -euo
// pipefail in an empty folder and the trustgate binary first on PATH. The
// script asserts the tampered deployment's exit code itself; the test
// checks that it succeeds and prints, in order, the lines of the README's
// ```text quickstart-output blocks, so that neither the commands nor the
// output shown can drift from the tool.
func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trustgate binary")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	readme, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	scripts := fencedBlocks(string(readme), "sh quickstart")
	outputs := fencedBlocks(string(readme), "text quickstart-output")
	if len(scripts) == 0 || len(outputs) == 0 {
		t.Fatalf("README.md has %d ```sh quickstart and %d ```text quickstart-output blocks; want both", len(scripts), len(outputs))
	}
	bin := buildTrustgate(t)

	work, home := t.TempDir(), t.TempDir()
	script := filepath.Join(home, "quickstart.sh")
	if err := os.WriteFile(script, []byte(strings.Join(scripts, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	// A user's shell: trustgate on PATH, nothing of trustgate's set, and a
	// home of its own (the state and cache folders are under it).
	env := []string{"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + home}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "PATH" && k != "HOME" && !strings.HasPrefix(k, "TRUSTGATE_") && !strings.HasPrefix(k, "XDG_") &&
			k != "SOURCE_DATE_EPOCH" && !strings.HasPrefix(k, "SIGSTORE_") {
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-euo", "pipefail", script)
	cmd.Dir, cmd.Env = work, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's quick start failed: %v\n%s", err, out)
	}
	t.Logf("quick start output:\n%s", out)

	// The README's output blocks, line by line and in order.
	lines := strings.Split(string(out), "\n")
	at := 0
	for _, block := range outputs {
		for _, want := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
			i := at
			for i < len(lines) && lines[i] != want {
				i++
			}
			if i == len(lines) {
				t.Errorf("the quick start did not print, after line %d, the README's line\n%s", at, want)
				continue
			}
			at = i + 1
		}
	}
	// And what it is about, whatever the README shows: the untouched
	// deployment passes, the changed gateway is denied for its digest, and
	// verify exits 1.
	for _, want := range []string{"PASS  gateway/gateway\n", "PASS  sbom\n",
		"FAIL  gateway/gateway  components[0].digests: expected sha256:", "trustgate: the deployment is denied\n", "trustgate verify exited 1\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the quick start's output lacks %q", want)
		}
	}
	if n := strings.Count(string(out), "FAIL  "); n != 2 {
		t.Errorf("the quick start printed %d FAIL lines, want 2 (the changed gateway and the SBOM no longer bound to it)", n)
	}
	for _, f := range []string{"stack.yaml", "signer.key", "signer.pub", "sbom.cdx.json", "sbom.cdx.json.bundle.json", "policy.yaml", "policy.yaml.bundle.json"} {
		if _, err := os.Stat(filepath.Join(work, "my-deployment", f)); err != nil {
			t.Errorf("the quick start made no %s: %v", f, err)
		}
	}
}

// fencedBlocks returns the contents of the fenced code blocks of a
// Markdown text whose opening fence is exactly "```"+info.
func fencedBlocks(text, info string) []string {
	var blocks []string
	var cur []string
	in := false
	for line := range strings.Lines(text) {
		switch {
		case !in && strings.TrimRight(line, "\n") == "```"+info:
			in, cur = true, nil
		case in && strings.TrimRight(line, "\n") == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, ""))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// buildTrustgate builds the trustgate binary into a temporary folder.
func buildTrustgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "trustgate")
	build := exec.Command("go", "build", "-o", bin, "github.com/trustgate/trustgate/cmd/trustgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
