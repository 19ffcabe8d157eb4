package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/trustgate/plugin/pluginpb"
)

// binDir holds the plugins the tests build, once per test binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildMu sync.Mutex
	built   = map[string]error{}
)

// build builds the main package pkg (a path relative to the module root)
// into binDir and returns the binary's path.
func build(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	bin := filepath.Join(binDir, filepath.Base(pkg))
	err, ok := built[pkg]
	if !ok {
		cmd := exec.Command("go", "build", "-o", bin, "github.com/trustgate/trustgate/"+pkg)
		out, berr := cmd.CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("go build %s: %w\n%s", pkg, berr, out)
		}
		built[pkg] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func testPlugin(t *testing.T) string { return build(t, "plugin/internal/testplugin") }

// start starts cmd with Start and kills it when the test ends.
func start(t *testing.T, cmd *exec.Cmd, opts Options) *Client {
	t.Helper()
	c, err := Start(t.Context(), cmd, opts)
	if err != nil {
		t.Fatalf("Start(%s): %v", cmd.Path, err)
	}
	t.Cleanup(c.Kill)
	return c
}

func onRequest(t *testing.T, c *Client, path string, body string) (*pluginpb.Verdict, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return c.Hooks().OnRequest(ctx, &pluginpb.Request{Id: "req-1", Method: "POST", Path: path, Body: []byte(body)})
}

// seen is what the test plugin reports from /env.
type seen struct {
	Env  []string `json:"env"`
	Args []string `json:"args"`
}

func pluginSaw(t *testing.T, c *Client) seen {
	t.Helper()
	v, err := onRequest(t, c, "/env", "")
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	if err := json.Unmarshal([]byte(v.GetReason()), &s); err != nil {
		t.Fatalf("decoding %q: %v", v.GetReason(), err)
	}
	return s
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// gone reports whether no process has the id pid any more.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// eventually waits up to 10s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
