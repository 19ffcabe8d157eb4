// Package testproc runs the child processes of tests and test harnesses
// (etcd, kube-apiserver, the Sigstore services): each in its own process
// group, killed by the kernel should the test binary die first, its output
// in a log file whose tail goes into the errors. It imports the standard
// library only.
package testproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is one child process started by Start.
type Proc struct {
	// Name names the process in errors.
	Name string
	// LogPath is the file its output is appended to.
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once it has exited and been reaped
	err     error         // Wait's result, valid after done
}

// Env is the environment a child runs with: HOME and TMPDIR set to home,
// and PATH; only what a Go program needs, so that no stray variable of the
// test's environment changes the program's configuration.
func Env(home string) []string {
	env := []string{"HOME=" + home, "TMPDIR=" + home}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	return env
}

// Start starts bin with args, its working directory dir, its environment
// Env(dir), and its output appended to logPath after a line naming the
// command. attr, when not nil, is used as the process attributes; Setpgid
// and Pdeathsig (SIGKILL) are always set: the process has a group of its
// own, so that Stop reaches whatever it starts, and the kernel kills it
// should the test binary die without cleaning up (a test timeout's panic,
// say).
func Start(name, bin string, args []string, dir, logPath string, attr *syscall.SysProcAttr) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "### %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = Env(dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	attr.Setpgid = true
	attr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended (exec.Cmd.Wait's result), once Done is
// closed.
func (p *Proc) Err() error { return p.err }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop kills the process group and reaps the process. Test services have
// nothing worth a graceful shutdown, so it is SIGKILL straight away.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	// The negative pid is the process group (Setpgid made pgid == pid).
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		// Cannot happen short of an unkillable (D state) process; do not
		// hang the test run over it.
	}
}

// Tail returns the last n bytes of the process's log.
func (p *Proc) Tail(n int64) string { return Tail(p.LogPath, n) }

// Tail returns the last n bytes of the file at path, after a line "..."
// when there is more before them; when it cannot be read, a note saying
// why.
func Tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := max(fi.Size()-n, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if off > 0 {
		return "...\n" + string(b)
	}
	return string(b)
}

// ErrPortInUse is returned by WaitReady when the process died because a
// port it was given had been taken since it was chosen (FreePorts), so
// that the caller can start it again with other ports.
var ErrPortInUse = errors.New("port taken")

// tailBytes is how much of the log WaitReady's errors quote.
const tailBytes = 8 << 10

// WaitReady calls probe until it returns nil (ready), the process exits,
// or timeout passes, waiting 100 ms between calls. The errors of the last
// two cases quote the end of the log; an exit over a port another process
// took is ErrPortInUse.
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if p.Exited() {
			tail := p.Tail(tailBytes)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%s exited: %w\n%s", p.Name, ErrPortInUse, tail)
			}
			return fmt.Errorf("%s exited before it was ready (%w); log %s:\n%s", p.Name, p.err, p.LogPath, tail)
		}
		last := probe(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (last error: %w); log %s:\n%s", p.Name, timeout, last, p.LogPath, p.Tail(tailBytes))
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago. The listeners are held until all n are chosen, so the n
// differ; another process can still take one before the child binds it,
// which WaitReady reports as ErrPortInUse.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
