package sigstoretest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/trustgate/trustgate/internal/testproc"
)

// The timestamp-server v2.1.3 always serves Prometheus metrics on :2112 (the
// address is hard-coded in pkg/server/prometheus.go; there is no flag), and
// exits if it cannot bind it. Two test processes each running a TSA would
// therefore collide. startTSA avoids that in one of two ways:
//
//   - netns mode (preferred): the TSA runs in a private network namespace
//     (CLONE_NEWNET, plus CLONE_NEWUSER when not root), where its :2112 is
//     its own. It serves its API on a Unix socket (--scheme=unix), which as
//     a file is reachable from the test's namespace, and the test forwards a
//     127.0.0.1 TCP port to that socket. The TSA's code handles every
//     request; the forwarder only copies bytes.
//   - lock mode (when the kernel refuses a new network namespace): the TSA
//     runs normally on 127.0.0.1, and a machine-wide lock file
//     (tsaLockPath) serializes TSAs, so that only one at a time holds :2112.
//     Start then waits for the other test process's Env to be cleaned up.
//     TRUSTGATE_SIGSTORETEST_TSA_MODE=lock forces this mode.
const tsaMetricsPort = 2112

// tsaLockPath is the lock file of lock mode. It is in /tmp, not
// os.TempDir(), so that processes with different TMPDIRs still share it.
const tsaLockPath = "/tmp/trustgate-sigstoretest-tsa-2112.lock"

// tsaLockWait bounds how long lock mode waits for another process's TSA.
const tsaLockWait = 5 * time.Minute

type tsaInstance struct {
	proc    *proc
	baseURL string // http://127.0.0.1:port
	mode    string // "netns" or "lock"
	why     string // why lock mode, when it was not asked for
	closers []func()
}

func (ti *tsaInstance) close() {
	for i := len(ti.closers) - 1; i >= 0; i-- {
		ti.closers[i]()
	}
	ti.closers = nil
}

// startTSA starts the timestamp-server and returns once it is serving or
// failed. On failure, whatever was started is already stopped.
func startTSA(ctx context.Context, bin, dir string, attempt int) (_ *tsaInstance, err error) {
	mode := os.Getenv("TRUSTGATE_SIGSTORETEST_TSA_MODE")
	if mode == "lock" {
		return startTSALocked(ctx, bin, dir, attempt)
	}
	ti, err := startTSANetns(ctx, bin, dir, attempt)
	if err == nil || mode == "netns" || !errors.Is(err, errNoNetns) {
		return ti, err
	}
	ti, lerr := startTSALocked(ctx, bin, dir, attempt)
	if lerr != nil {
		return nil, fmt.Errorf("%w (tried lock mode because: %w)", lerr, err)
	}
	ti.why = err.Error()
	return ti, nil
}

var errNoNetns = errors.New("cannot create a network namespace")

func tsaBaseArgs() []string {
	return []string{
		"serve",
		// An in-memory key and chain, made at startup.
		"--timestamp-signer=memory",
		// There is no network to reach NTP servers with.
		"--disable-ntp-monitoring",
		"--log-type=dev",
		// pprof would bind :6060 (it is off by default; explicitly so).
		"--enable-pprof=false",
	}
}

func startTSANetns(ctx context.Context, bin, dir string, attempt int) (_ *tsaInstance, err error) {
	ti := &tsaInstance{mode: "netns"}
	defer func() {
		if err != nil {
			ti.close()
		}
	}()
	// A Unix socket path must fit in 108 bytes; t.TempDir() can be longer.
	sock := filepath.Join(dir, fmt.Sprintf("tsa.%d.sock", attempt))
	if len(sock) > 100 {
		sockDir, err := os.MkdirTemp(shortTempDir(), "sgtsa")
		if err != nil {
			return nil, err
		}
		ti.closers = append(ti.closers, func() { os.RemoveAll(sockDir) })
		sock = filepath.Join(sockDir, "tsa.sock")
	}

	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if uid := os.Getuid(); uid != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	args := append(tsaBaseArgs(), "--scheme=unix", "--socket-path="+sock)
	p, err := startProc("timestamp-server", bin, args, dir, logPathFor(dir, "tsa", attempt), attr)
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("%w: %w", errNoNetns, err)
		}
		return nil, err
	}
	ti.proc = p
	ti.closers = append(ti.closers, p.Stop)

	fwd, err := newForwarder(sock)
	if err != nil {
		return nil, err
	}
	ti.closers = append(ti.closers, fwd.close)
	ti.baseURL = "http://" + fwd.addr()

	if err := p.waitReady(ctx, ti.baseURL+"/ping", nil); err != nil {
		return nil, err
	}
	return ti, nil
}

func startTSALocked(ctx context.Context, bin, dir string, attempt int) (_ *tsaInstance, err error) {
	ti := &tsaInstance{mode: "lock"}
	defer func() {
		if err != nil {
			ti.close()
		}
	}()
	unlock, err := lockTSA(ctx)
	if err != nil {
		return nil, err
	}
	ti.closers = append(ti.closers, unlock)
	ports, err := testproc.FreePorts(1)
	if err != nil {
		return nil, err
	}
	args := append(tsaBaseArgs(), "--scheme=http", "--host=127.0.0.1", "--port="+strconv.Itoa(ports[0]))
	p, err := startProc("timestamp-server", bin, args, dir, logPathFor(dir, "tsa", attempt), nil)
	if err != nil {
		return nil, err
	}
	ti.proc = p
	// Stopped before the lock is released (closers run in reverse).
	ti.closers = append(ti.closers, p.Stop)
	ti.baseURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	if err := p.waitReady(ctx, ti.baseURL+"/ping", nil); err != nil {
		return nil, err
	}
	return ti, nil
}

// lockTSA takes the machine-wide TSA lock, then waits for port 2112 to be
// free (something other than a TSA of ours may hold it).
func lockTSA(ctx context.Context) (unlock func(), err error) {
	// Read-only is enough for flock, and works whoever created the file.
	f, err := os.OpenFile(tsaLockPath, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, tsaLockWait)
	defer cancel()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", tsaLockPath, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("timestamp-server: waited %v for %s: another process keeps its TSA (which needs port %d) running", tsaLockWait, tsaLockPath, tsaMetricsPort)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(tsaMetricsPort))
		if err == nil {
			l.Close()
			break
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("timestamp-server: port %d (its fixed metrics port) stays in use: %w", tsaMetricsPort, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

func shortTempDir() string {
	if d := os.TempDir(); len(d) < 60 {
		return d
	}
	return "/tmp"
}

// forwarder accepts TCP connections on 127.0.0.1 and copies each to and
// from a new connection to a Unix socket.
type forwarder struct {
	ln     net.Listener
	sock   string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newForwarder(sock string) (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, sock: sock, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		c.Close()
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		in, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		if !f.track(in) {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(in)
			out, err := net.Dial("unix", f.sock)
			if err != nil {
				return // not listening yet: the client sees a closed connection
			}
			if !f.track(out) {
				return
			}
			defer f.untrack(out)
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				// Pass the EOF on, so that a half-closed request still
				// gets its response.
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(out, in)
			go pipe(in, out)
			<-done
			<-done
		}()
	}
}

// close stops accepting, closes every open connection and waits for the
// copying goroutines to end.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}
