package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/gateway/internal/testprobe"
	"github.com/trustgate/trustgate/gather"
	"github.com/trustgate/trustgate/internal/example"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
)

// template is the example deployment built once (trustgate-gateway, the
// example's plugins and agent, its Python plugin with the gRPC runtime)
// plus the probes; each test copies it.
var template string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "trustgate-gateway-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer removeAll(dir)
		template = filepath.Join(dir, "example")
		ctx := context.Background()
		if _, err := example.Build(ctx, template); err != nil {
			fmt.Fprintln(os.Stderr, "building the example:", err)
			return 1
		}
		for _, p := range []struct{ out, pkg, marker string }{
			{"probe-plugin", "./internal/testprobe/probe-plugin", "A"},
			{"probe-plugin-b", "./internal/testprobe/probe-plugin", "B"},
			{"probe-agent", "./internal/testprobe/probe-agent", "A"},
		} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.marker="+p.marker, "-o", filepath.Join(template, "bin", p.out), p.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building %s: %v\n%s", p.out, err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// deployment is one test's copy of the example, its policy and keys.
type deployment struct {
	t       *testing.T
	dir     string
	trust   *attest.Key // signs the policy
	release *attest.Key // the policy's "release" signer
	// guardrailKey signs the guardrail's provenance (nil: release)
	guardrailKey *attest.Key
	data         string
	reports      string
	manifest     map[string]any
	// policy edits, applied when the policy is written
	version  uint64
	expires  time.Time
	edit     func(p map[string]any)
	bundles  []string
	env      []string
	listen   string
	probes   bool
	noPython bool
}

func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
}

// newDeployment copies the example and plans a fully signed deployment of
// it: the guardrail signed by the release key, everything else pinned by
// digest, the manifest pinned by the policy.
func newDeployment(t *testing.T) *deployment {
	t.Helper()
	base := t.TempDir()
	d := &deployment{t: t, dir: filepath.Join(base, "deploy"), data: filepath.Join(base, "data"), reports: filepath.Join(base, "reports"),
		version: 1, expires: time.Now().Add(time.Hour)}
	copyTree(t, template, d.dir)
	if err := os.Mkdir(d.reports, 0o700); err != nil {
		t.Fatal(err)
	}
	var err error
	if d.trust, err = attest.GenerateKey(attest.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	if d.release, err = attest.GenerateKey(attest.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(d.dir, "stack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &d.manifest); err != nil {
		t.Fatal(err)
	}
	d.listen = freePort(t)
	d.env = []string{"OPENAI_API_KEY=sk-test-openai-not-granted-0123456789", "ANTHROPIC_API_KEY=sk-ant-test-0123456789abcdef",
		"NOT_GRANTED=secret-not-granted", "GRANTED_VAR=granted-value", "PATH=/usr/bin:/bin"}
	return d
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// withProbes adds the probe plugin and agent, each writing its report.
func (d *deployment) withProbes() *deployment {
	d.probes = true
	plugins := d.manifest["plugins"].([]any)
	d.manifest["plugins"] = append(plugins, map[string]any{
		"name": "probe", "role": "guardrail", "path": "bin/probe-plugin",
		"args": []any{"--report", filepath.Join(d.reports, "plugin.json")},
	})
	agents := d.manifest["agents"].([]any)
	d.manifest["agents"] = append(agents, map[string]any{
		"name": "probe-agent", "role": "audit", "path": "bin/probe-agent",
		"args": []any{"--report", filepath.Join(d.reports, "agent.json"), "--events", filepath.Join(d.reports, "events.jsonl")},
	})
	return d
}

// withoutPython drops the Python plugin (for tests about something else,
// on a machine without python3-grpcio).
func (d *deployment) withoutPython() *deployment {
	var kept []any
	for _, p := range d.manifest["plugins"].([]any) {
		if p.(map[string]any)["name"] != "pii-redactor" {
			kept = append(kept, p)
		}
	}
	d.manifest["plugins"] = kept
	d.noPython = true
	return d
}

func needPython(t *testing.T) {
	t.Helper()
	if err := example.PythonRuntime(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Python plugin cannot run: %v (install python3-grpcio)", err)
		}
		t.Skipf("the Python plugin cannot run here: %v (apt-get install python3-grpcio)", err)
	}
}

// write writes the manifest, measures the deployment, and writes and
// signs the policy and the guardrail's provenance.
func (d *deployment) write() {
	t := d.t
	t.Helper()
	gc, _ := d.manifest["gatewayConfig"].(map[string]any)
	if gc == nil {
		gc = map[string]any{}
	}
	gc["listen"] = d.listen
	gc["recheckInterval"] = "1h" // drift tests rely on file change events
	d.manifest["gatewayConfig"] = gc
	raw, err := yaml.Marshal(d.manifest)
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(d.dir, "stack.yaml")
	if err := os.WriteFile(manifest, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Load(manifest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gather.Stack(context.Background(), s, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	var comps []any
	for _, c := range m.Components {
		entry := map[string]any{"kind": c.Kind, "name": c.Name}
		switch c.Kind + "/" + c.Name {
		case "plugin/guardrail":
			entry["signers"] = map[string]any{"anyOf": []any{"release"}}
			st, err := attest.NewStatement(attest.PredicateSLSAProvenance, []byte(`{}`),
				attest.Subject{Name: "bin/guardrail", Digest: map[string]string{"sha256": c.Digest.Hex()}})
			if err != nil {
				t.Fatal(err)
			}
			b := filepath.Join(d.dir, "guardrail.bundle.json")
			signer := d.guardrailKey
			if signer == nil {
				signer = d.release
			}
			if err := os.WriteFile(b, testsign.Bundle(t, st, signer), 0o644); err != nil {
				t.Fatal(err)
			}
			d.bundles = []string{b}
		default:
			if c.Kind == stack.KindModel && c.Provider != "" {
				entry["provider"] = c.Provider
				if len(c.Fallbacks) > 0 {
					entry["fallbacks"] = c.Fallbacks
				}
			}
			if !c.Digest.IsZero() {
				entry["digests"] = []any{c.Digest.String()}
			}
		}
		switch c.Kind + "/" + c.Name {
		case "plugin/probe":
			entry["capabilities"] = map[string]any{"env": []any{"GRANTED_VAR"}, "credentials": []any{"env:OPENAI_API_KEY"}}
		}
		comps = append(comps, entry)
	}
	var providers []any
	for _, p := range m.Providers {
		providers = append(providers, map[string]any{"credential": p.Credential, "baseURLs": []any{p.BaseURL}})
	}
	doc := map[string]any{
		"apiVersion": policy.APIVersion, "kind": policy.Kind,
		"metadata": map[string]any{"name": s.Metadata.Name},
		"version":  d.version, "expires": d.expires.UTC().Format(time.RFC3339),
		"signers":    []any{map[string]any{"name": "release", "key": pemKey(t, d.release)}},
		"manifest":   map[string]any{"digests": []any{s.Source.Digest.String()}},
		"components": comps, "providers": providers,
	}
	if d.edit != nil {
		d.edit(doc)
	}
	d.signPolicy(doc)
}

func (d *deployment) signPolicy(doc map[string]any) {
	t := d.t
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(d.dir, "policy.yaml")
	p, err := policy.Parse(file, data, policy.Options{})
	if err != nil {
		t.Fatalf("the test's policy does not parse: %v\n%s", err, data)
	}
	st, err := policy.Statement("policy.yaml", data, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file+".bundle.json", testsign.Bundle(t, st, d.trust), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pemKey(t testing.TB, k *attest.Key) string {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (d *deployment) trustKeyFile() string {
	p := filepath.Join(filepath.Dir(d.dir), "trust.pub")
	if err := os.WriteFile(p, []byte(pemKey(d.t, d.trust)), 0o644); err != nil {
		d.t.Fatal(err)
	}
	return p
}

// options are the in-process gateway's options for d.
func (d *deployment) options() Options {
	return Options{
		Stack: filepath.Join(d.dir, "stack.yaml"), Policy: filepath.Join(d.dir, "policy.yaml"),
		Trust: policy.TrustRoot{Keys: []crypto.PublicKey{d.trust.Public()}}, Bundles: d.bundles,
		DataDir: d.data, Environ: d.env,
	}
}

// running is the real gateway binary, started on d.
type running struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	code int
}

// start runs exe (the deployment's bin/trustgate-gateway by default).
func (d *deployment) start(exe string, extra ...string) *running {
	d.t.Helper()
	return d.startWith(exe, nil, nil, extra...)
}

// startWith is start with a process attribute and extra environment
// for the gateway.
func (d *deployment) startWith(exe string, attr *syscall.SysProcAttr, env []string, extra ...string) *running {
	t := d.t
	t.Helper()
	if exe == "" {
		exe = filepath.Join(d.dir, "bin", "trustgate-gateway")
	}
	args := append([]string{"--stack", filepath.Join(d.dir, "stack.yaml"), "--policy", filepath.Join(d.dir, "policy.yaml"),
		"--trust-key", d.trustKeyFile(), "--data-dir", d.data, "--log-format", "json"}, extra...)
	for _, b := range d.bundles {
		args = append(args, "--bundle", b)
	}
	r := &running{t: t, cmd: exec.Command(exe, args...), addr: d.listen, done: make(chan struct{})}
	r.cmd.Env = append(append([]string{}, d.env...), env...)
	r.cmd.SysProcAttr = attr
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.log.Write(append(sc.Bytes(), '\n'))
			r.mu.Unlock()
		}
		_ = r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *running) logText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// wait waits for the process to exit and returns its code and last line.
func (r *running) wait(limit time.Duration) (int, string) {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(limit):
		r.t.Fatalf("the gateway did not exit within %s; log:\n%s", limit, r.logText())
	}
	lines := strings.Split(strings.TrimSpace(r.logText()), "\n")
	return r.code, lines[len(lines)-1]
}

// ready waits until /readyz answers 200.
func (r *running) ready(limit time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			r.t.Fatalf("the gateway exited (%d) before it was ready; log:\n%s", r.code, r.logText())
		default:
		}
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("the gateway was not ready within %s; log:\n%s", limit, r.logText())
}

func (r *running) status() Status {
	r.t.Helper()
	resp, err := http.Get("http://" + r.addr + "/v1/trustgate/status")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		r.t.Fatal(err)
	}
	return st
}

func (st Status) component(kind, name string) ComponentStatus {
	for _, c := range st.Components {
		if c.Kind == kind && c.Name == name {
			return c
		}
	}
	return ComponentStatus{}
}

// refused runs the gateway on d and asserts it exits 3 with a last line
// that holds every want, without ever listening.
func (d *deployment) refused(exe string, want ...string) string {
	d.t.Helper()
	return d.refusedWith(exe, nil, want...)
}

func (d *deployment) refusedWith(exe string, extra []string, want ...string) string {
	t := d.t
	t.Helper()
	r := d.start(exe, extra...)
	code, last := r.wait(60 * time.Second)
	if code != 3 {
		t.Fatalf("exit code %d, want 3; log:\n%s", code, r.logText())
	}
	if !strings.HasPrefix(last, "trustgate-gateway: refused at ") {
		t.Fatalf("last line %q is not the refusal", last)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("refusal %q does not say %q", last, w)
		}
	}
	if strings.Contains(r.logText(), `"msg":"listening"`) {
		t.Errorf("the gateway listened before it refused")
	}
	if c, err := net.DialTimeout("tcp", d.listen, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s", d.listen)
	}
	return last
}

// readReport waits for a probe's report.
func readReport(t *testing.T, path string) testprobe.Report {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			var r testprobe.Report
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			t.Fatalf("no report at %s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fileSum(t testing.TB, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(data))
}

func appendByte(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	f.Close()
}
