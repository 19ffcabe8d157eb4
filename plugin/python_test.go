package plugin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/plugin/pluginpb"
	"github.com/trustgate/trustgate/plugin/python"
)

const python3 = "/usr/bin/python3"

// pythonSite installs the Python SDK into a fresh folder laid out as the
// gateway lays out a Python plugin: the plugin's code goes in dir, the SDK
// and its gRPC runtime are in site. Without Debian's python3-grpcio the test
// is skipped, except in CI (CI=true), where it fails.
func pythonSite(t *testing.T) (dir, site string) {
	t.Helper()
	dir = t.TempDir()
	site = filepath.Join(dir, "site-packages")
	err := python.Install(site)
	if _, perr := os.Stat(python3); perr != nil {
		err = errors.Join(err, python.ErrNoGRPC, perr)
	}
	if errors.Is(err, python.ErrNoGRPC) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Python plugin tests need python3-grpcio in CI: %v", err)
		}
		t.Skipf("needs Debian's python3 with gRPC (apt-get install python3 python3-grpcio python3-protobuf): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir, site
}

// pythonCmd returns the command that runs code in dir, as the gateway runs a
// Python plugin: isolated, with only dir and site on sys.path.
func pythonCmd(dir, site, code string) *exec.Cmd {
	code = "import sys; sys.path[:0]=[" + pyQuote(dir) + ", " + pyQuote(site) + "]; " + code
	cmd := exec.Command(python3, "-I", "-S", "-B", "-c", code)
	cmd.Dir = dir
	cmd.Env = []string{}
	return cmd
}

// piiRedactor installs the Python SDK and the pii-redactor example with
// pythonSite and returns the command the gateway runs it with.
func piiRedactor(t *testing.T) *exec.Cmd {
	t.Helper()
	dir, site := pythonSite(t)
	_, self, _, _ := runtime.Caller(0)
	example := filepath.Join(filepath.Dir(self), "..", "examples", "deployment", "plugins", "pii-redactor", "pii_redactor")
	if err := os.CopyFS(filepath.Join(dir, "pii_redactor"), os.DirFS(example)); err != nil {
		t.Fatal(err)
	}
	return pythonCmd(dir, site, "import runpy; runpy.run_module('pii_redactor', run_name='__main__', alter_sys=True)")
}

func pyQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func TestPythonPlugin(t *testing.T) {
	var out testutil.SyncBuffer
	cmd := piiRedactor(t)
	c := start(t, cmd, Options{Stderr: &out})
	if c.mtls {
		t.Error("mutual TLS with a plugin that sent no certificate")
	}

	v, err := onRequest(t, c, "/v1/chat/completions",
		`{"model":"m","messages":[{"role":"user","content":"write to alice@example.com"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if v.GetAction() != pluginpb.Verdict_REWRITE || !strings.Contains(string(v.GetBody()), "write to [email]") ||
		strings.Contains(string(v.GetBody()), "alice@example.com") {
		t.Errorf("OnRequest = %v, want a REWRITE with [email]", v)
	}
	v, err = onRequest(t, c, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hello"}]}`)
	if err != nil || v.GetAction() != pluginpb.Verdict_ALLOW {
		t.Errorf("OnRequest without PII = %v, %v; want ALLOW", v, err)
	}

	for _, tc := range []struct {
		body   string
		stream bool
		want   string
	}{
		{`{"choices":[{"message":{"content":"card 4111 1111 1111 1111"}}]}`, false, "card [card]"},
		{`{"choices":[{"delta":{"content":"bob@example.org"}}]}`, true, `{"choices": [{"delta": {"content": "[email]"}}]}`},
	} {
		v, err := c.Hooks().OnResponse(t.Context(), &pluginpb.Response{Id: "req-1", Status: 200, Body: []byte(tc.body), StreamEvent: tc.stream})
		if err != nil || v.GetAction() != pluginpb.Verdict_REWRITE || !strings.Contains(string(v.GetBody()), tc.want) {
			t.Errorf("OnResponse(%q) = %v, %v; want a REWRITE with %q", tc.body, v, err, tc.want)
		}
	}

	// A hook that raises fails the call, not the plugin.
	v, err = onRequest(t, c, "/v1/chat/completions", "not json")
	if !errors.Is(err, ErrHook) || status.Code(err) != codes.Internal || v != nil {
		t.Errorf("OnRequest(not json) = %v, %v; want ErrHook with codes.Internal", v, err)
	}
	if !strings.Contains(err.Error(), "JSONDecodeError") {
		t.Errorf("error %q does not name the exception", err)
	}
	eventually(t, "the traceback on stderr", func() bool { return strings.Contains(out.String(), "Traceback") })
	if v, err := onRequest(t, c, "/v1/chat/completions", `{"messages":[]}`); err != nil || v.GetAction() != pluginpb.Verdict_ALLOW {
		t.Errorf("after the exception: %v, %v", v, err)
	}

	// Kill shuts the plugin down through go-plugin's controller service:
	// no two-second wait for a forced kill.
	pid := c.Pid()
	began := time.Now()
	c.Kill()
	if took := time.Since(began); took > 1500*time.Millisecond {
		t.Errorf("Kill took %v", took)
	}
	if !gone(pid) || !c.Exited() {
		t.Errorf("process %d still there after Kill", pid)
	}
}

// TestPythonEmptyVerdict checks that the host refuses a Python hook's
// Verdict() without an action, and that the SDK's own default is an ALLOW.
func TestPythonEmptyVerdict(t *testing.T) {
	dir, site := pythonSite(t)
	c := start(t, pythonCmd(dir, site, "import trustgate_plugin as tp; tp.serve(on_request=lambda r: tp.Verdict())"), Options{})
	v, err := onRequest(t, c, "/v1/chat/completions", "{}")
	if !errors.Is(err, ErrVerdict) || v != nil {
		t.Errorf("OnRequest = %v, %v; want ErrVerdict", v, err)
	}
	v, err = c.Hooks().OnResponse(t.Context(), &pluginpb.Response{Id: "req-1", Status: 200, Body: []byte(`{}`)})
	if err != nil || v.GetAction() != pluginpb.Verdict_ALLOW {
		t.Errorf("OnResponse without a hook = %v, %v; want ALLOW", v, err)
	}
}

func TestPythonPluginNeedsCookie(t *testing.T) {
	cmd := piiRedactor(t)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "trustgate-gateway plugin") {
		t.Errorf("run without the gateway: %v\n%s", err, out)
	}
}

func TestPythonPluginLeavesNoFiles(t *testing.T) {
	cmd := piiRedactor(t)
	c := start(t, cmd, Options{})
	c.Kill()
	err := filepath.WalkDir(cmd.Dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.Name() == "__pycache__" {
			t.Errorf("python wrote %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPythonSDKMatchesGo checks the constants the Python SDK repeats.
func TestPythonSDKMatchesGo(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	src, err := os.ReadFile(filepath.Join(filepath.Dir(self), "python", "trustgate_plugin", "__init__.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`MAGIC_COOKIE_KEY = "` + Handshake.MagicCookieKey + `"`,
		`MAGIC_COOKIE_VALUE = "` + Handshake.MagicCookieValue + `"`,
		fmt.Sprintf("APP_PROTOCOL_VERSION = %d", Handshake.ProtocolVersion),
		fmt.Sprintf("MAX_MESSAGE_SIZE = %d << 20", MaxMessageSize>>20),
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("trustgate_plugin/__init__.py lacks %q", want)
		}
	}
}
