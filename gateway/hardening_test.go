package gateway

// Tests from the security review of the gateway's runtime: each shows one
// attack the review found, which failed before its fix.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
)

func attestKey() (*attest.Key, error) { return attest.GenerateKey(attest.ECDSAP256) }

// childrenOf lists the live processes whose parent is ppid and whose
// argv[0] is argv0.
func childrenOf(t *testing.T, ppid int, argv0 string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		rest := stat[bytes.LastIndexByte(stat, ')')+2:]
		f := strings.Fields(string(rest))
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(ppid) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if a0, _, _ := bytes.Cut(cmdline, []byte{0}); string(a0) == argv0 {
			out = append(out, pid)
		}
	}
	return out
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	rest := stat[bytes.LastIndexByte(stat, ')')+2:]
	return !bytes.HasPrefix(rest, []byte("Z"))
}

// goProgram builds a stdlib-only Go program from src into out.
func goProgram(t *testing.T, src, out string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module reviewprobe\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// Review finding, fixed: the supervisor (child.supervise -> restart) and the drift
// watcher (recheck -> reseal -> startChild) both restart a child, with no
// exclusion between them. An agent that exits while its files drift and are
// put back within its restart backoff ends up running twice: the watcher
// restarts it (and starts a second supervisor), then the first supervisor
// wakes from its backoff and starts another process. The first one is no
// longer tracked (c.pid/c.cmd are overwritten), is never killed by a later
// drift, and shares the agent's events.
func TestDriftDuringBackoffRunsOneProcess(t *testing.T) {
	d := newDeployment(t).withoutPython().withProbes()
	d.write()
	r := d.start("")
	r.ready(60 * time.Second)
	agentStatus := func() ComponentStatus { return r.status().component("agent", "probe-agent") }
	// Grow the backoff (0.5s, 1s, 2s) so that the next one (4s) is a wide
	// window; the backoff never resets.
	for i := 0; i < 3; i++ {
		before := agentStatus()
		_ = syscall.Kill(before.PID, syscall.SIGKILL)
		waitFor(t, 20*time.Second, func() bool {
			st := agentStatus()
			return st.State == StateRunning && st.PID != before.PID
		})
	}
	before := agentStatus()
	_ = syscall.Kill(before.PID, syscall.SIGKILL)
	waitFor(t, 5*time.Second, func() bool { return agentStatus().State == StateExited })
	file := filepath.Join(d.dir, "bin", "probe-agent")
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	appendByte(t, file)
	waitFor(t, 3*time.Second, func() bool { return agentStatus().State == StateFailed })
	if err := os.WriteFile(file, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, func() bool { return agentStatus().State == StateRunning })
	time.Sleep(6 * time.Second) // the first supervisor's backoff ends
	pids := childrenOf(t, r.cmd.Process.Pid, "probe-agent")
	if len(pids) != 1 {
		t.Errorf("%d processes of agent/probe-agent run (pids %v; status says %d)", len(pids), pids, agentStatus().PID)
	}
}

// escaperSrc is an agent that starts a grandchild in a session of its own
// (out of the process group the gateway kills), handing it its standard
// output, writes the grandchild's pid to its first argument, and exits.
const escaperSrc = `package main

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

func main() {
	cmd := exec.Command("/bin/sleep", "600")
	cmd.Stdout = os.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		os.Exit(1)
	}
	_ = os.WriteFile(os.Args[1], []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	os.Exit(0)
}
`

// Review finding, fixed: a child that forks a process out of its process group is not
// contained. (1) The agent exits, but its grandchild holds the stdout pipe,
// so exec.Cmd.Wait (no WaitDelay) never returns: the gateway never sees the
// exit, the status says "running" with a dead pid, and no restart happens.
// (2) Drift kills the agent's process group only: the grandchild (with
// everything the agent was granted) keeps running. (3) It outlives the
// gateway too (Pdeathsig covers the direct child only).
func TestWhatAChildLeavesBehindDiesWithIt(t *testing.T) {
	d := newDeployment(t).withoutPython()
	goProgram(t, escaperSrc, filepath.Join(d.dir, "bin", "escaper"))
	pidFile := filepath.Join(d.reports, "grandchild.pid")
	agents := d.manifest["agents"].([]any)
	d.manifest["agents"] = append(agents, map[string]any{"name": "escaper", "role": "audit", "path": "bin/escaper", "args": []any{pidFile}})
	d.write()
	r := d.start("")
	r.ready(60 * time.Second)
	var grandchild int
	waitFor(t, 10*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		grandchild, _ = strconv.Atoi(string(b))
		return err == nil && grandchild > 0
	})
	t.Cleanup(func() { _ = syscall.Kill(grandchild, syscall.SIGKILL) })
	time.Sleep(3 * time.Second) // several restart backoffs
	st := r.status().component("agent", "escaper")
	if st.State == StateRunning && !alive(st.PID) {
		t.Errorf("the agent exited (pid %d is gone) but the status says %q, %d restarts: its exit went unnoticed", st.PID, st.State, st.Restarts)
	}
	appendByte(t, filepath.Join(d.dir, "bin", "escaper"))
	waitFor(t, 20*time.Second, func() bool { return r.status().component("agent", "escaper").State == StateFailed })
	time.Sleep(500 * time.Millisecond)
	if alive(grandchild) {
		t.Errorf("after drift the agent's grandchild (pid %d) still runs", grandchild)
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	r.wait(20 * time.Second)
	time.Sleep(500 * time.Millisecond)
	if alive(grandchild) {
		t.Errorf("after the gateway exited the agent's grandchild (pid %d) still runs", grandchild)
	}
}

// Review finding, fixed: every child ran under the gateway's own uid and
// was dumpable, so any plugin or agent (or anything else running as that
// user) read a sibling's granted provider keys from /proc/PID/environ. The
// children now run from execute-only copies, which makes them
// non-dumpable. Here the gateway runs as nobody, and a process of that uid
// that was granted nothing tries to read the probe plugin's
// OPENAI_API_KEY. (Such a process can still write the gateway's data
// folder: only a uid per child would close that; see the README.)
func TestSiblingCannotReadGrantedKey(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the gateway as another user")
	}
	const uid = 65534
	d := newDeployment(t).withoutPython().withProbes()
	d.write()
	for _, p := range []string{filepath.Dir(filepath.Dir(d.dir)), filepath.Dir(d.dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", d.dir).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v %s", err, out)
	}
	if err := os.Mkdir(d.data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.data, d.reports} {
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	r := d.startWith("", &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}, nil)
	r.ready(60 * time.Second)
	pid := r.status().component("plugin", "probe").PID
	sibling := func(name string, args ...string) ([]byte, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = []string{}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		return cmd.CombinedOutput()
	}
	out, err := sibling("/bin/cat", fmt.Sprintf("/proc/%d/environ", pid))
	if err == nil && bytes.Contains(out, []byte("sk-test-openai-not-granted-0123456789")) {
		t.Errorf("a process of the gateway's uid, granted nothing, read the plugin's OPENAI_API_KEY from /proc/%d/environ", pid)
	}
	// Left alone, and said in the README: a child of the gateway's own uid
	// can still write the gateway's data folder (its rollback state); only
	// a uid of its own per child closes that.
}

// poisonPyc writes, at target, bytecode for the source file src (a header
// with src's mtime and size, as Python checks it) that appends to marker
// and then runs src.
const poisonPyc = `import importlib._bootstrap_external as be, os, sys
src, marker, target = sys.argv[1:]
st = os.stat(src)
body = "open(%r, 'a').write('ran\\n')\nexec(compile(open(%r).read(), %r, 'exec'))\n" % (marker, src, src)
data = be._code_to_timestamp_pyc(compile(body, src, "exec"), st.st_mtime, st.st_size)
os.makedirs(os.path.dirname(target), exist_ok=True)
open(target, "wb").write(data)
`

// Review finding, fixed: a Python plugin's bytecode cache (-X pycache_prefix=<work>/pycache)
// outlives the process and is neither verified nor emptied on restart, and
// the child (same uid) can write it. -B stops Python writing there, not
// reading. Bytecode placed there for a module the plugin imports (here the
// standard library's re, whose path and mtime never change) runs in every
// later start of the plugin: "restarted from a verified copy" runs
// unverified code, with the plugin's grants. A compromised plugin persists
// across restarts, and (same uid) one plugin can plant code in another's.
func TestRestartReadsNoPlantedBytecode(t *testing.T) {
	needPython(t)
	d := newDeployment(t)
	d.write()
	r := d.start("")
	r.ready(60 * time.Second)
	caches, _ := filepath.Glob(filepath.Join(d.data, "run-*", "work-plugin-pii-redactor", "pycache-*"))
	if len(caches) != 1 {
		t.Fatalf("pycache folders: %v", caches)
	}
	src := "/usr/lib/python3.11/re/__init__.py"
	if _, err := os.Stat(src); err != nil {
		t.Skipf("this test knows Debian's python3.11 layout: %v", err)
	}
	marker := filepath.Join(d.reports, "pyc-ran")
	target := filepath.Join(caches[0], src[1:len(src)-len("__init__.py")], "__init__.cpython-311.pyc")
	if out, err := exec.Command("/usr/bin/python3", "-c", poisonPyc, src, marker, target).CombinedOutput(); err != nil {
		t.Fatalf("writing the bytecode: %v\n%s", err, out)
	}
	before := r.status().component("plugin", "pii-redactor")
	_ = syscall.Kill(before.PID, syscall.SIGKILL) // a crash, or a sibling's kill
	waitFor(t, 30*time.Second, func() bool {
		st := r.status().component("plugin", "pii-redactor")
		return st.State == StateRunning && st.PID != before.PID
	})
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the plugin, restarted \"from a verified copy\", ran bytecode from its cache that nobody verified")
	}
}

// Review finding, fixed: go-plugin makes each plugin's socket folder with
// os.MkdirTemp("", ...) (plugin.Start sets no UnixSocketConfig.TempDir), so
// the unsigned environment's TMPDIR chooses where it lies. In a folder
// another user can write, that user can rename the 0700 folder away and put
// a listener of their own at the path the gateway dials; a plugin without
// TLS (the Python SDK) is then trusted on nothing but that path.
func TestTMPDIRDoesNotPlacePluginSockets(t *testing.T) {
	d := newDeployment(t).withoutPython()
	d.write()
	tmp, err := os.MkdirTemp("/tmp", "tg-") // short: a socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	r := d.startWith("", nil, []string{"TMPDIR=" + tmp})
	r.ready(60 * time.Second)
	if dirs, _ := filepath.Glob(filepath.Join(tmp, "plugin-dir*")); len(dirs) > 0 {
		t.Errorf("plugin socket folders in the environment's TMPDIR %s: %v", tmp, dirs)
	}
}

// Review finding, fixed: the drift watcher hashes whatever lies at a component's path
// with digest.File / digest.Tree, unbounded (SHA-256 and SHA-512), and
// rechecks the components one after another on the watcher's only
// goroutine. A sparse file of a terabyte in place of one plugin keeps the
// watcher busy for hours: that plugin is not marked drifted, and a change
// to any other component goes unnoticed meanwhile.
func TestHugeFileDoesNotStallDriftWatcher(t *testing.T) {
	d := newDeployment(t).withoutPython().withProbes()
	d.write()
	r := d.start("")
	r.ready(60 * time.Second)
	guardrail := filepath.Join(d.dir, "bin", "guardrail")
	sparse := guardrail + ".new"
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	f.Close()
	if err := os.Rename(sparse, guardrail); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	appendByte(t, filepath.Join(d.dir, "bin", "probe-plugin"))
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st := r.status()
		if st.component("plugin", "guardrail").State == StateFailed && st.component("plugin", "probe").State == StateFailed {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	st := r.status()
	t.Errorf("15s after the changes: guardrail %q, probe %q; want both failed (drift)",
		st.component("plugin", "guardrail").State, st.component("plugin", "probe").State)
}

// Review finding, fixed: a release build's embedded policy key is only a default:
// --trust-key replaces it (app.trustRoot uses the embedded key only when no
// flag gives one), and the --policy-certificate-* flags add a keyless
// signer beside it. Whoever controls the command line (a unit file, a pod
// spec) starts the release binary under a policy they signed themselves.
func TestFlagsCannotReplaceBuiltInTrustKey(t *testing.T) {
	d := newDeployment(t).withoutPython()
	legit, err := attestKey()
	if err != nil {
		t.Fatal(err)
	}
	emb := base64.StdEncoding.EncodeToString([]byte(pemKey(t, legit)))
	exe := filepath.Join(d.dir, "bin", "trustgate-gateway")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.embeddedTrustKey="+emb, "-o", exe, "../cmd/trustgate-gateway")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	d.write()        // signed by d.trust, not by the embedded key; pins this binary
	r := d.start("") // --trust-key names d.trust's public key
	if readyOrExit(r, 60*time.Second) {
		t.Errorf("the release build with an embedded policy key became ready under a policy signed by the key given with --trust-key")
	}
}

// Review finding, fixed (run with -race): restart/reseal write c.snapshot, c.interp and
// c.sealed without c.mu, while Status (under c.mu), the drift watcher's
// onDisk and Close read or write them from other goroutines.
func TestRestartAndStatusDoNotRace(t *testing.T) {
	needPython(t)
	d := newDeployment(t)
	d.write()
	opts := d.options()
	opts.InsecureDev = true
	g, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := g.child("plugin", "pii-redactor")
	c.mu.Lock()
	pid := c.pid
	c.mu.Unlock()
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cs := g.Status().component("plugin", "pii-redactor"); cs.State == StateRunning && cs.PID != pid {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("not restarted")
}

// Review finding, fixed: checkPrivateDir checks the data folder itself, not the folders
// above it, and creates it when missing. Under a parent someone else can
// write (no sticky bit), that someone renames the folder after the check
// and puts their own in its place: the run folder, and with it a Python
// plugin's snapshot, which the interpreter then imports by path, land
// where they can swap files.
func TestDataDirUnderWritableParentRefused(t *testing.T) {
	d := newDeployment(t).withoutPython()
	d.write()
	parent := filepath.Join(filepath.Dir(d.dir), "shared")
	if err := os.Mkdir(parent, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o777); err != nil {
		t.Fatal(err)
	}
	d.data = filepath.Join(parent, "data")
	r := d.start("")
	if readyOrExit(r, 60*time.Second) {
		t.Errorf("the gateway runs with its data folder under %s, which everyone may write", parent)
	}
}

// readyOrExit waits until r is ready (true) or has exited (false).
func readyOrExit(r *running, limit time.Duration) bool {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return false
		default:
		}
		if resp, err := http.Get("http://" + r.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("neither ready nor exited within %s", limit)
	return false
}
