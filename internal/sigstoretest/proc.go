package sigstoretest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// readyTimeout bounds how long Start waits for one service to answer.
const readyTimeout = 60 * time.Second

// proc is one service process. Its output goes to a log file; it runs in its
// own process group, which stop kills as a whole.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
	err     error         // Wait's result, valid after done
	// tailShown is set when an error returned has the log's tail in it.
	tailShown bool
}

// procEnv is the environment the services run with: only what a Go
// program needs, so that no stray variable of the test's environment (the
// TSA reads HOST, PORT and any viper key from the environment) changes them.
func procEnv(home string) []string {
	env := []string{"HOME=" + home, "TMPDIR=" + home}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	return env
}

// startProc starts bin with args, its working directory and HOME set to dir
// and its output appended to logPath. attr, when non-nil, is used as the
// process attributes; Setpgid and Pdeathsig are always set.
func startProc(name, bin string, args []string, dir, logPath string, attr *syscall.SysProcAttr) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "### %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = procEnv(dir)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	// Own process group, so that stop reaches anything the service starts;
	// and killed by the kernel if the test binary dies without cleaning up
	// (a test timeout's panic, say).
	attr.Setpgid = true
	attr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop kills the process group and reaps the process. Ephemeral services
// have nothing worth a graceful shutdown, so it is SIGKILL straight away.
func (p *proc) stop() {
	if p.exited() {
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

// logTail returns the last n bytes of the process's log.
func (p *proc) logTail(n int64) string {
	return fileTail(p.logPath, n)
}

func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := int64(0)
	if fi.Size() > n {
		off = fi.Size() - n
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	s := string(b)
	if off > 0 {
		s = "...\n" + s
	}
	return s
}

// errPortInUse is returned by waitReady when the process died because a
// port it was given had been taken in the meantime, so the caller can retry
// with other ports.
var errPortInUse = errors.New("port taken")

// waitReady polls url until check accepts the response (nil check: a 200),
// the process exits, or readyTimeout passes.
func (p *proc) waitReady(ctx context.Context, url string, check func(*http.Response, []byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			p.tailShown = true
			tail := p.logTail(8 << 10)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%s exited: %w\n%s", p.name, errPortInUse, tail)
			}
			return fmt.Errorf("%s exited before it was ready (%w); log %s:\n%s", p.name, p.err, p.logPath, tail)
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			rcancel()
			return err
		}
		resp, err := harnessClient.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			rcancel()
			switch {
			case rerr != nil:
				err = rerr
			case check != nil:
				err = check(resp, body)
			case resp.StatusCode != http.StatusOK:
				err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
			}
			if err == nil {
				return nil
			}
		}
		rcancel()
		last = err
		select {
		case <-ctx.Done():
			p.tailShown = true
			return fmt.Errorf("%s not ready after %v (last error: %w); log %s:\n%s", p.name, readyTimeout, last, p.logPath, p.logTail(8<<10))
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago. The listeners are held until all n are chosen, so the n are
// distinct; another process can still take one before the service binds
// it, which the callers detect (errPortInUse) and retry.
func freePorts(n int) ([]int, error) {
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

// logPathFor names service's log file in dir (attempt counts retries).
func logPathFor(dir, service string, attempt int) string {
	if attempt <= 1 {
		return filepath.Join(dir, service+".log")
	}
	return filepath.Join(dir, fmt.Sprintf("%s.%d.log", service, attempt))
}
