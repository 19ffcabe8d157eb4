package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/plugin/pluginpb"
	"github.com/trustgate/trustgate/policy"
)

// The real binary on the fully signed example becomes ready, runs every
// plugin and agent, and says what it verified.
func TestBinaryReady(t *testing.T) {
	needPython(t)
	d := newDeployment(t)
	d.write()
	r := d.start("")
	r.ready(60 * time.Second)
	st := r.status()
	if !st.Ready || st.InsecureDev || st.Policy.Version != 1 || st.Deployment != "example-gateway-deployment" {
		t.Fatalf("status: %+v", st)
	}
	if !st.Gateway.Verified || st.Gateway.Digest != fileSum(t, filepath.Join(d.dir, "bin", "trustgate-gateway")) {
		t.Errorf("gateway: %+v", st.Gateway)
	}
	for _, c := range []struct{ kind, name string }{{"plugin", "guardrail"}, {"plugin", "pii-redactor"}, {"agent", "audit-agent"}} {
		cs := st.component(c.kind, c.name)
		if cs.State != StateRunning || !cs.Verified || cs.PID == 0 {
			t.Errorf("%s/%s: %+v", c.kind, c.name, cs)
		}
	}
	py := st.component("plugin", "pii-redactor")
	if py.Interpreter == nil || !strings.HasPrefix(py.Interpreter.Digest.String(), "sha256:") {
		t.Errorf("the Python plugin's interpreter is not reported: %+v", py)
	}
	// SIGTERM stops it cleanly.
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := r.wait(20 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0", code)
	}
}

// Each way the deployment can be wrong stops the binary before it listens,
// with one line naming the step, the component, the rule, and the values.
func TestBinaryRefuses(t *testing.T) {
	t.Run("plugin byte changed", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		d.write()
		appendByte(t, filepath.Join(d.dir, "bin", "guardrail"))
		d.refused("", "refused at verify: plugin/guardrail", "signers")
	})
	t.Run("plugin missing", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		d.write()
		if err := os.Remove(filepath.Join(d.dir, "bin", "guardrail")); err != nil {
			t.Fatal(err)
		}
		d.refused("", "refused at config", "plugins[0].path", "missing file")
	})
	t.Run("unsigned plugin", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		d.write()
		d.bundles = nil
		d.refused("", "refused at verify: plugin/guardrail: components[", ".signers: expected 1 of release, found no trusted signature")
	})
	t.Run("plugin signed by an untrusted key", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		other, err := attest.GenerateKey(attest.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		d.guardrailKey = other
		d.write()
		d.refused("", "refused at verify: plugin/guardrail: components[", ".signers: expected 1 of release, found no trusted signature")
	})
	t.Run("expired policy", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		d.expires = time.Now().Add(-time.Minute)
		d.write()
		d.refused("", "refused at policy", "policy expired")
	})
	t.Run("rolled-back policy", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		d.version = 2
		d.write()
		r := d.start("")
		r.ready(60 * time.Second)
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		if code, _ := r.wait(20 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		d.version = 1
		d.write()
		d.refused("", "refused at policy", "older")
	})
	t.Run("key sent to a host the policy does not bind", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		providers := d.manifest["providers"].([]any)
		providers[0].(map[string]any)["baseURL"] = "https://collector.attacker.test/v1"
		d.edit = func(p map[string]any) {
			// The policy binds the key to OpenAI only; the manifest digest
			// is pinned, so only the provider rule can refuse.
			for _, pr := range p["providers"].([]any) {
				m := pr.(map[string]any)
				if m["credential"] == "env:OPENAI_API_KEY" {
					m["baseURLs"] = []any{"https://api.openai.com/v1"}
				}
			}
		}
		d.write()
		d.refused("", "refused at verify: provider/openai", "https://collector.attacker.test/v1")
	})
	t.Run("gateway binary modified", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		d.write()
		exe := filepath.Join(filepath.Dir(d.dir), "trustgate-gateway-modified")
		copyTree(t, filepath.Join(d.dir, "bin", "trustgate-gateway"), exe)
		appendByte(t, exe)
		d.refused(exe, "refused at verify: gateway/trustgate-gateway: components[", ".digests: expected "+fileSum(t, filepath.Join(d.dir, "bin", "trustgate-gateway")), "found "+fileSum(t, exe))
	})
	t.Run("pth file added to the Python plugin", func(t *testing.T) {
		needPython(t)
		d := newDeployment(t)
		d.write()
		pth := filepath.Join(d.dir, "plugins", "pii-redactor", "site-packages", "zz-steal.pth")
		if err := os.WriteFile(pth, []byte("import os; os.system('echo stolen')\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d.refused("", "refused at verify: plugin/pii-redactor: components[", ".digests: expected h1:")
	})
}

// A rolled-back state is kept in the data folder; the refusal wraps
// policy.ErrRollback in-process too.
func TestRollbackInProcess(t *testing.T) {
	d := newDeployment(t).withoutPython()
	d.version = 3
	d.write()
	opts := d.options()
	opts.InsecureDev = true // the test binary is not the pinned gateway
	g, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	d.version = 2
	d.write()
	_, err = Start(context.Background(), opts)
	if !errors.Is(err, ErrRefused) || !errors.Is(err, policy.ErrRollback) {
		t.Fatalf("err = %v, want a refusal wrapping policy.ErrRollback", err)
	}
	opts.MinPolicyVersion = 4
	d.version = 3
	d.write()
	if _, err = Start(context.Background(), opts); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "minimum policy version") {
		t.Fatalf("err = %v, want the minimum version refusal", err)
	}
}

// What runs is what was verified: files swapped after verification and
// before the children start change nothing.
func TestSwapAfterVerifyRunsVerifiedBytes(t *testing.T) {
	needPython(t)
	d := newDeployment(t).withProbes()
	d.write()
	opts := d.options()
	opts.InsecureDev = true
	probe := filepath.Join(d.dir, "bin", "probe-plugin")
	verified := fileSum(t, probe)
	redactor := filepath.Join(d.dir, "plugins", "pii-redactor", "pii_redactor", "__init__.py")
	opts.afterVerify = func() {
		copyTree(t, filepath.Join(d.dir, "bin", "probe-plugin-b"), probe+".new")
		if err := os.Rename(probe+".new", probe); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(redactor, []byte("def redact(text):\n    return text\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
	g, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rep := readReport(t, filepath.Join(d.reports, "plugin.json"))
	if rep.Marker != "A" || rep.Exe != verified {
		t.Errorf("the probe ran as marker %q, executable %s; want marker A, %s", rep.Marker, rep.Exe, verified)
	}
	if fileSum(t, probe) == verified {
		t.Fatal("the swap did not happen")
	}
	v, err := g.child("plugin", "probe").client.Hooks().OnRequest(context.Background(), &pluginpb.Request{Body: []byte(`{}`)})
	if err != nil || v.Reason != "A" {
		t.Errorf("probe hook: %v, %v; want reason A", v, err)
	}
	v, err = g.child("plugin", "pii-redactor").client.Hooks().OnRequest(context.Background(),
		&pluginpb.Request{Body: []byte(`{"model":"m","messages":[{"role":"user","content":"mail alice@example.com"}]}`)})
	if err != nil || v.Action != pluginpb.Verdict_REWRITE || !strings.Contains(string(v.Body), "[email]") {
		t.Errorf("the redactor did not redact as verified: %v, %v", v, err)
	}
}

func (g *Gateway) child(kind, name string) *child {
	for _, c := range g.children {
		if c.comp.Kind == kind && c.comp.Name == name {
			return c
		}
	}
	return nil
}

// A plugin and an agent see exactly what the policy grants them.
func TestChildrenGetOnlyWhatIsGranted(t *testing.T) {
	d := newDeployment(t).withoutPython().withProbes()
	d.write()
	r := d.start("")
	r.ready(60 * time.Second)
	plug := readReport(t, filepath.Join(d.reports, "plugin.json"))
	agent := readReport(t, filepath.Join(d.reports, "agent.json"))
	want := []string{"GRANTED_VAR=granted-value", "OPENAI_API_KEY=sk-test-openai-not-granted-0123456789"}
	if got := withoutProtocol(plug.Env); !slices.Equal(got, want) {
		t.Errorf("the plugin's environment is %q, want %q", got, want)
	}
	if len(agent.Env) != 0 {
		t.Errorf("the agent, granted nothing, got %q", agent.Env)
	}
	for _, env := range [][]string{plug.Env, agent.Env} {
		for _, kv := range env {
			for _, never := range []string{"ANTHROPIC_API_KEY", "NOT_GRANTED", "PATH="} {
				if strings.HasPrefix(kv, never) {
					t.Errorf("a child got %s", kv)
				}
			}
		}
	}
}

// withoutProtocol drops go-plugin's own variables (the magic cookie, the
// port range, the protocol versions, the client certificate), sorted.
func withoutProtocol(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "PLUGIN_") || strings.HasPrefix(kv, "TRUSTGATE_PLUGIN=") {
			continue
		}
		out = append(out, kv)
	}
	slices.Sort(out)
	return out
}

// A plugin or agent whose file changes while the gateway runs is stopped,
// reported, and not restarted from the changed bytes; put back, it runs
// again.
func TestDriftDetectedAndNotRestarted(t *testing.T) {
	d := newDeployment(t).withoutPython().withProbes()
	d.write()
	r := d.start("")
	r.ready(60 * time.Second)
	before := r.status().component("plugin", "probe")
	probe := filepath.Join(d.dir, "bin", "probe-plugin")
	orig, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	appendByte(t, probe)
	waitFor(t, 20*time.Second, func() bool { return r.status().component("plugin", "probe").State == StateFailed })
	after := r.status().component("plugin", "probe")
	if !strings.Contains(after.Reason, "drift") {
		t.Errorf("reason %q does not say drift", after.Reason)
	}
	waitFor(t, 10*time.Second, func() bool { return processGone(before.PID) })
	if !strings.Contains(r.logText(), `"msg":"drift: files differ`) {
		t.Errorf("the drift was not logged:\n%s", r.logText())
	}
	time.Sleep(2 * time.Second) // longer than the first restart backoffs
	if st := r.status().component("plugin", "probe"); st.State != StateFailed || st.Restarts != before.Restarts {
		t.Errorf("the drifted plugin was restarted: %+v", st)
	}
	if events, _ := os.ReadFile(filepath.Join(d.reports, "events.jsonl")); !strings.Contains(string(events), `"type":"component.drift"`) {
		t.Errorf("the agent did not get the drift event: %s", events)
	}
	// The agent drifts too, and is not restarted either.
	agentBefore := r.status().component("agent", "audit-agent")
	appendByte(t, filepath.Join(d.dir, "bin", "audit-agent"))
	waitFor(t, 20*time.Second, func() bool { return r.status().component("agent", "audit-agent").State == StateFailed })
	waitFor(t, 10*time.Second, func() bool { return processGone(agentBefore.PID) })
	// Put back, the plugin runs again from a verified copy.
	if err := os.WriteFile(probe, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool { return r.status().component("plugin", "probe").State == StateRunning })
}

// processGone reports whether pid has exited (it may wait as a zombie
// for its parent to reap it).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	_, state, ok := procStat(fmt.Sprintf("/proc/%d", pid))
	return !ok || state == 'Z'
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A .pth file in the host interpreter's site-packages runs for a plain
// python3 (the control) and not inside a plugin.
func TestHostPthFileDoesNotRunInPlugin(t *testing.T) {
	needPython(t)
	site := "/usr/lib/python3/dist-packages"
	marker := filepath.Join(t.TempDir(), "pth-ran")
	pth := filepath.Join(site, "zz_trustgate_test.pth")
	if err := os.WriteFile(pth, []byte("import os; open(os.environ.get('TG_PTH_MARKER', '"+marker+"'), 'a').write('ran')\n"), 0o644); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot write to the host's site-packages: %v", err)
		}
		t.Skipf("cannot write to the host's site-packages: %v", err)
	}
	defer os.Remove(pth)
	if out, err := exec.Command("/usr/bin/python3", "-c", "pass").CombinedOutput(); err != nil {
		t.Fatalf("control: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("control: the .pth file did not run for a plain python3: %v", err)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	d := newDeployment(t)
	d.write()
	r := d.start("")
	r.ready(60 * time.Second)
	if st := r.status().component("plugin", "pii-redactor"); st.State != StateRunning {
		t.Fatalf("the Python plugin does not run: %+v", st)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the host's .pth file ran inside the plugin")
	}
}

// --insecure-dev waives the gateway's own check only, and says so.
func TestInsecureDevWaivesOnlyTheGateway(t *testing.T) {
	d := newDeployment(t).withoutPython()
	d.write()
	exe := filepath.Join(filepath.Dir(d.dir), "trustgate-gateway-dev")
	copyTree(t, filepath.Join(d.dir, "bin", "trustgate-gateway"), exe)
	appendByte(t, exe)
	r := d.start(exe, "--insecure-dev")
	r.ready(60 * time.Second)
	st := r.status()
	if !st.InsecureDev || st.Warning != InsecureDevWarning || st.Gateway.Verified {
		t.Errorf("status does not say insecure: %+v", st)
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	r.wait(20 * time.Second)

	appendByte(t, filepath.Join(d.dir, "bin", "guardrail"))
	d.refusedWith(exe, []string{"--insecure-dev"}, "plugin/guardrail")
}

// A relative data folder works: the children, which run elsewhere, are
// told absolute paths (a Go plugin dials its socket under it).
func TestRelativeDataDir(t *testing.T) {
	d := newDeployment(t).withoutPython()
	d.write()
	opts := d.options()
	opts.InsecureDev = true // the test binary is not the pinned gateway
	t.Chdir(filepath.Dir(d.data))
	opts.DataDir = filepath.Base(d.data)
	g, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, c := range g.Status().Components {
		if (c.Kind == "plugin" || c.Kind == "agent") && c.State != StateRunning {
			t.Errorf("%s/%s is %s", c.Kind, c.Name, c.State)
		}
	}
}
