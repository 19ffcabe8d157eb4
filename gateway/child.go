package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/plugin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/seal"
	"github.com/trustgate/trustgate/stack"
)

// States of a child, as the status shows them.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateExited   = "exited"  // exited; restarting after backoff
	StateFailed   = "failed"  // drifted or cannot be restarted from verified bytes
	StateStopped  = "stopped" // the gateway is stopping
)

// child is one plugin or agent: what was verified, and the process that
// runs it.
type child struct {
	g      *Gateway
	comp   stack.Component
	pol    *policy.Component
	digest digest.Digest // the verified digest of its file or folder
	size   int64         // its verified size (a folder: its files' total)
	// verified is the policy's decision; false for a component that runs
	// only because its policy entry is in audit mode, for the reason given.
	verified bool
	audit    string
	grants   policy.Capabilities
	work     string // private working folder (bytecode cache for Python)

	// A file component runs from sealed; a folder from snapshot under
	// interp.
	sealed   *seal.File
	snapshot string
	module   string
	pyArgs   []string
	interp   *interpreter

	// checks carries the watcher's findings to supervise, which alone
	// starts, restarts and stops the process: nil means the files match
	// what was verified, an error says how they differ.
	checks chan error
	quit   chan struct{} // closed when the gateway closes
	exited chan struct{} // closed when supervise has returned

	mu       sync.Mutex // guards what Status reads, and the copies
	state    string
	reason   string
	restarts int
	started  time.Time
	pid      int
	client   *plugin.Client
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	done     chan struct{} // closed when the current process is gone
	events   chan []byte   // audit events for an agent
}

// interpreter is the executable that runs a folder, sealed like a file.
type interpreter struct {
	Path   string        `json:"path"`
	Digest digest.Digest `json:"digest"`
	size   int64
	file   *seal.File
}

func (c *child) subject() string { return c.comp.Kind + "/" + c.comp.Name }

// seal copies every plugin and agent into sealed memory (files) or a
// private snapshot (folders), on every core, and returns them with their
// digests. Nothing is read from the manifest's folder again to run them.
func (g *Gateway) seal(ctx context.Context) ([]*child, error) {
	root, err := os.OpenRoot(g.stack.Source.Dir)
	if err != nil {
		return nil, refuse(StepVerify, "manifest folder", err)
	}
	defer root.Close()
	comps := append(append([]stack.Component{}, g.stack.Plugins...), g.stack.Agents...)
	children := make([]*child, len(comps))
	errs := make([]error, len(comps))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, comp := range comps {
		children[i] = &child{g: g, comp: comp, pol: g.policy.Component(comp.Kind, comp.Name), state: StateStarting}
		if comp.Kind == stack.KindAgent {
			children[i].events = make(chan []byte, 1024)
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = children[i].sealFrom(ctx, root)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return children, refuse(StepVerify, children[i].subject(), err)
		}
	}
	return children, nil
}

// sealFrom makes the child's verified copy from the manifest's folder and
// records its digest.
func (c *child) sealFrom(ctx context.Context, root *os.Root) error {
	name := filepath.FromSlash(c.comp.Path)
	fi, err := root.Stat(name)
	if err != nil {
		return err
	}
	c.work = filepath.Join(c.g.runDir, "work-"+c.comp.Kind+"-"+c.comp.Name)
	if err := os.Mkdir(c.work, 0o700); err != nil {
		return err
	}
	if !fi.IsDir() {
		if len(c.comp.Command) > 0 {
			return fmt.Errorf("%w: a file runs itself; the command %q would run something the policy did not check", ErrCommand, c.comp.Command)
		}
		f, err := seal.Copy(ctx, root, name, MaxComponentSize)
		if err != nil {
			return err
		}
		c.sealed, c.digest, c.size = f, f.Digest(), f.Size()
		return nil
	}
	interp, module, args, err := pythonCommand(c.comp.Command)
	if err != nil {
		return err
	}
	c.module, c.pyArgs = module, args
	if c.interp, err = sealInterpreter(ctx, interp); err != nil {
		return err
	}
	snap, d, err := c.snapshotFrom(root)
	if err != nil {
		return err
	}
	size, err := treeSize(snap)
	if err != nil {
		return err
	}
	c.snapshot, c.digest, c.size = snap, d, size
	return nil
}

// snapshotFrom copies the folder into a new private snapshot, hashing as
// it copies.
func (c *child) snapshotFrom(root *os.Root) (string, digest.Digest, error) {
	dir, err := os.MkdirTemp(c.g.runDir, "snap-"+c.comp.Name+"-")
	if err != nil {
		return "", digest.Digest{}, err
	}
	snap := filepath.Join(dir, "tree")
	d, err := digest.CopyTree(root, filepath.FromSlash(c.comp.Path), snap, MaxTreeSize)
	if err != nil {
		_ = os.Remove(dir)
		return "", digest.Digest{}, err
	}
	return snap, d, nil
}

// treeSize is the total size of the files in a snapshot (which holds
// regular files and folders only).
func treeSize(dir string) (int64, error) { return regularSize(os.DirFS(dir), ".") }

// regularSize is the total size of the regular files at name in fsys: the
// file itself, or those under the folder (links are not followed).
func regularSize(fsys fs.FS, name string) (int64, error) {
	var total int64
	err := fs.WalkDir(fsys, name, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

func sealInterpreter(ctx context.Context, name string) (*interpreter, error) {
	p, err := resolveInterpreter(name)
	if err != nil {
		return nil, err
	}
	dir, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	f, err := seal.Copy(ctx, dir, filepath.Base(p), MaxComponentSize)
	if err != nil {
		return nil, fmt.Errorf("interpreter %q: %w", p, err)
	}
	return &interpreter{Path: p, Digest: f.Digest(), size: f.Size(), file: f}, nil
}

// checkInterpreter applies the policy's interpreter pin.
func (c *child) checkInterpreter() error {
	if c.interp == nil || c.pol == nil || c.pol.Interpreter == nil {
		return nil
	}
	if slices.Contains(c.pol.Interpreter.Digests, c.interp.Digest.String()) {
		return nil
	}
	r := &Refusal{Step: StepVerify, Component: c.subject(), Rule: "interpreter.digests",
		Expected: strings.Join(c.pol.Interpreter.Digests, " or "), Found: c.interp.Path + " " + c.interp.Digest.String()}
	if c.pol.Mode == policy.ModeAudit {
		c.g.log.Warn("allowed in audit mode", "step", StepVerify, "component", c.subject(), "rule", r.Rule, "expected", r.Expected, "found", r.Found)
		return nil
	}
	return r
}

// env is the child's whole environment: what the policy grants it, and
// nothing else of the gateway's. A credential granted as env:NAME is
// passed under its name; one granted as file:PATH is passed by path in
// TRUSTGATE_CREDENTIAL_FILES (colon-separated).
func (c *child) env() []string {
	var out []string
	for _, name := range c.grants.Env {
		if v, ok := c.g.env[name]; ok {
			out = append(out, name+"="+v)
		}
	}
	var files []string
	for _, cr := range c.grants.Credentials {
		kind, ref, _ := strings.Cut(cr, ":")
		switch kind {
		case "env":
			if v, ok := c.g.env[ref]; ok {
				out = append(out, ref+"="+v)
			}
		case "file":
			files = append(files, ref)
		}
	}
	if len(files) > 0 {
		out = append(out, "TRUSTGATE_CREDENTIAL_FILES="+strings.Join(files, ":"))
	}
	sort.Strings(out)
	if out == nil {
		out = []string{} // empty, not nil: a nil Env means "inherit"
	}
	return out
}

// command builds the process that runs the verified copy: the sealed
// memfd through /proc/self/fd (never the path that was checked), in its
// own process group, killed if the gateway dies. A Python child gets a new
// empty bytecode cache folder at every start, which it cannot write: no
// .pyc from an earlier run (or from anyone else) is read.
func (c *child) command() (*exec.Cmd, error) {
	cmd := &exec.Cmd{Env: c.env(), SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
	if c.snapshot != "" {
		pycache, err := os.MkdirTemp(c.work, "pycache-")
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(pycache, 0o500); err != nil {
			return nil, err
		}
		cmd.Path = c.interp.file.Path()
		cmd.Args = pythonArgv(c.interp.Path, pycache, c.snapshot, c.module, append(slices.Clone(c.pyArgs), c.comp.Args...))
		cmd.Dir = c.snapshot
		return cmd, nil
	}
	cmd.Path = c.sealed.Path()
	cmd.Args = append([]string{c.comp.Name}, c.comp.Args...)
	cmd.Dir = c.work
	return cmd, nil
}

// startChild starts c from its verified copy, then supervises it.
func (g *Gateway) startChild(ctx context.Context, c *child) error {
	c.checks, c.quit, c.exited = make(chan error), make(chan struct{}), make(chan struct{})
	if err := c.start(ctx); err != nil {
		close(c.exited)
		return err
	}
	go c.supervise()
	return nil
}

func (c *child) start(ctx context.Context) error {
	log := c.g.log.With("component", c.subject())
	cmd, err := c.command()
	if err != nil {
		return err
	}
	// No orphan sweep while a process is forked and not yet known.
	c.g.startMu.RLock()
	defer c.g.startMu.RUnlock()
	done := make(chan struct{})
	switch c.comp.Kind {
	case stack.KindPlugin:
		stderr := logWriter(log, "stderr")
		client, err := plugin.Start(ctx, cmd, plugin.Options{Logger: log, StartTimeout: 15 * time.Second, Stderr: stderr, SocketDir: c.g.socketDir})
		if err != nil {
			_ = stderr.Close()
			return err
		}
		pid := client.Pid()
		c.g.track(pid)
		c.mu.Lock()
		c.client, c.cmd, c.pid = client, cmd, pid
		c.mu.Unlock()
		go func() {
			awaitExit(pid)
			close(done)
			<-client.Done() // go-plugin reaps it
			_ = stderr.Close()
			c.g.untrack(pid)
		}()
	default:
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		// Files, not writers: Wait then returns when the agent exits, not
		// when whatever it left behind closes its output.
		stdout, err := pipeToLog(log, "stdout")
		if err != nil {
			return err
		}
		stderr, err := pipeToLog(log, "stderr")
		if err != nil {
			_ = stdout.Close()
			return err
		}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		err = cmd.Start()
		_, _ = stdout.Close(), stderr.Close() // the agent has its own copies
		if err != nil {
			return err
		}
		pid := cmd.Process.Pid
		c.g.track(pid)
		c.mu.Lock()
		c.cmd, c.stdin, c.pid = cmd, in, pid
		c.mu.Unlock()
		go c.feed(in, done)
		go func() {
			awaitExit(pid)
			_ = cmd.Wait()
			c.g.untrack(pid)
			close(done)
		}()
	}
	c.closeCopies()
	c.mu.Lock()
	c.state, c.reason, c.started, c.done = StateRunning, "", c.g.now(), done
	c.mu.Unlock()
	log.Info("started", "step", StepStart, "pid", c.pid, "digest", c.digest.String(), "grants", grantNames(c.grants))
	return nil
}

// closeCopies drops the sealed copies once the child has exec'd them: a
// restart makes new ones from disk, which must verify again.
func (c *child) closeCopies() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sealed != nil {
		_ = c.sealed.Close()
		c.sealed = nil
	}
	if c.interp != nil && c.interp.file != nil {
		_ = c.interp.file.Close()
		c.interp.file = nil
	}
}

// feed writes audit events to an agent's standard input until it goes.
func (c *child) feed(in io.WriteCloser, done <-chan struct{}) {
	defer in.Close()
	for {
		select {
		case ev := <-c.events:
			if _, err := in.Write(ev); err != nil {
				return
			}
		case <-done:
			return
		}
	}
}

// Restart backoff: the first wait, doubled after each restart, at most
// the last.
const (
	firstBackoff = 500 * time.Millisecond
	maxBackoff   = 30 * time.Second
	// healthyRun is how long a process must have run for its exit to
	// start the backoff from the first wait again.
	healthyRun = time.Minute
)

// supervise owns the child's process until the gateway closes: it restarts
// it with backoff when it exits, each time from a new copy that must have
// the verified digest; it stops it for good when the watcher reports drift,
// and starts it again (from a new verified copy) only when the watcher
// reports that the files match again. Nothing else starts or stops it, so
// at most one process runs per child.
func (c *child) supervise() {
	defer close(c.exited)
	backoff := firstBackoff
	var retry <-chan time.Time
	for {
		c.mu.Lock()
		done := c.done
		c.mu.Unlock()
		select {
		case <-c.quit:
			c.kill()
			return
		case <-done:
			c.mu.Lock()
			c.done, c.pid = nil, 0
			restart := c.state == StateRunning
			if c.g.now().Sub(c.started) > healthyRun {
				backoff = firstBackoff // it ran well for a while: not a crash loop
			}
			if restart {
				c.state, c.restarts = StateExited, c.restarts+1
			}
			c.mu.Unlock()
			if restart {
				c.g.log.Warn("exited; restarting from a verified copy", "component", c.subject(), "backoff", backoff.String())
				c.g.emit("component.exited", map[string]any{"component": c.subject()})
				retry = time.After(backoff)
				backoff = min(backoff*2, maxBackoff)
			}
		case <-retry:
			retry = nil
			c.restart()
		case drift := <-c.checks:
			c.mu.Lock()
			state, reason := c.state, c.reason
			c.mu.Unlock()
			switch {
			case drift != nil && !(state == StateFailed && isDrift(reason)):
				retry = nil
				c.g.drifted(c, drift)
			case drift == nil && state == StateFailed && isDrift(reason):
				c.g.log.Info("files match the verified digest again; restarting", "component", c.subject())
				backoff = firstBackoff
				c.restart()
			}
		}
	}
}

// restart copies the component (and its interpreter) from disk again and
// starts it only when the copy has the verified digest; a copy that
// differs is drift.
func (c *child) restart() {
	ctx := context.Background()
	if err := c.reseal(ctx); err != nil {
		c.g.drifted(c, err)
		return
	}
	if err := c.start(ctx); err != nil {
		c.closeCopies()
		c.fail("restart: " + err.Error())
	}
}

// reseal makes new verified copies and refuses any whose digest differs.
func (c *child) reseal(ctx context.Context) error {
	root, err := os.OpenRoot(c.g.stack.Source.Dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if c.snapshot == "" {
		f, err := seal.Copy(ctx, root, filepath.FromSlash(c.comp.Path), MaxComponentSize)
		if err != nil {
			return err
		}
		if !f.Digest().Equal(c.digest) {
			_ = f.Close()
			return f.Digest().Verify(c.digest)
		}
		c.mu.Lock()
		c.sealed = f
		c.mu.Unlock()
		return nil
	}
	interp, err := sealInterpreter(ctx, c.interp.Path)
	if err != nil {
		return err
	}
	if !interp.Digest.Equal(c.interp.Digest) {
		_ = interp.file.Close()
		return fmt.Errorf("interpreter %s: %w", c.interp.Path, interp.Digest.Verify(c.interp.Digest))
	}
	snap, d, err := c.snapshotFrom(root)
	if err != nil {
		_ = interp.file.Close()
		return err
	}
	if !d.Equal(c.digest) {
		_ = interp.file.Close()
		removeAll(filepath.Dir(snap))
		return d.Verify(c.digest)
	}
	c.mu.Lock()
	old := c.snapshot
	c.snapshot, c.interp = snap, interp
	c.mu.Unlock()
	removeAll(filepath.Dir(old))
	return nil
}

// fail marks the child failed: it is stopped and not restarted.
func (c *child) fail(reason string) {
	c.mu.Lock()
	c.state, c.reason = StateFailed, reason
	c.mu.Unlock()
	c.kill()
}

// stop ends the child for good (the gateway is closing) and waits until
// its supervisor is gone.
func (c *child) stop() {
	c.mu.Lock()
	if c.state != StateFailed {
		c.state = StateStopped
	}
	c.mu.Unlock()
	if c.quit != nil {
		select {
		case <-c.quit:
		default:
			close(c.quit)
		}
		<-c.exited
	}
	c.kill()
	c.closeCopies()
}

// kill ends the child's process group.
func (c *child) kill() {
	c.mu.Lock()
	client, pid, stdin := c.client, c.pid, c.stdin
	c.mu.Unlock()
	if stdin != nil {
		_ = stdin.Close()
	}
	if client != nil {
		client.Kill()
	}
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

func grantNames(c policy.Capabilities) []string {
	return append(slices.Clone(c.Env), c.Credentials...)
}

// pipeToLog returns the write end of a pipe whose lines are logged.
func pipeToLog(log *slog.Logger, stream string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go func() {
		defer r.Close()
		logLines(log, stream, r)
	}()
	return w, nil
}

// logWriter turns a child's output into log lines, one per line, each
// clipped; closing it ends the reader.
func logWriter(log *slog.Logger, stream string) *io.PipeWriter {
	r, w := io.Pipe()
	go logLines(log, stream, r)
	return w
}

func logLines(log *slog.Logger, stream string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		log.Info("child output", "stream", stream, "line", safetext.Clip(sc.Text(), 2048))
	}
	_, _ = io.Copy(io.Discard, r)
}
