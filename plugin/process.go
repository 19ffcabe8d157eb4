package plugin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/trustgate/trustgate/internal/safetext"
)

// process runs the caller's cmd for go-plugin (as its RunnerFunc) instead of
// go-plugin's own runner, which would set cmd.Stdin to the host's os.Stdin
// and hide the pid. It also reads the plugin's stderr itself, so that it
// goes to Options.Stderr as it is instead of through go-plugin's parser.
type process struct {
	cmd  *exec.Cmd
	out  *output
	done chan struct{} // closed by Wait once the process is reaped

	mu sync.Mutex // guards the fields below
	// socketDir, stdout and stderr are set by runner, before Start.
	socketDir  string
	stdout     io.ReadCloser
	stderr     io.ReadCloser
	pid        int
	killed     bool
	startErr   error
	stderrDone chan struct{}
}

var _ runner.Runner = (*process)(nil)

// runner is the ClientConfig.RunnerFunc. spec is go-plugin's template
// command, whose Env holds exactly the variables go-plugin adds; socketDir
// is the private directory it made for the plugin's socket.
func (p *process) runner(_ hclog.Logger, spec *exec.Cmd, socketDir string) (runner.Runner, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.socketDir = socketDir
	p.cmd.Env = append(slices.Clip(p.cmd.Env), spec.Env...)
	var err error
	if p.stdout, err = p.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if p.stderr, err = p.cmd.StderrPipe(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *process) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed {
		return errors.New("plugin start canceled")
	}
	if err := p.cmd.Start(); err != nil {
		p.startErr = err
		return err
	}
	p.pid = p.cmd.Process.Pid
	p.stderrDone = make(chan struct{})
	go func() {
		defer close(p.stderrDone)
		w := p.out.stream()
		_, _ = io.Copy(w, p.stderr)
		w.flush()
	}()
	return nil
}

// Wait waits for the stderr copy (as exec.Cmd.Wait requires of pipe
// readers) and then for the process, and closes done. go-plugin calls it
// once, after Start and once the plugin's stdout has ended.
func (p *process) Wait(context.Context) error {
	if p.stderrDone == nil {
		return errors.New("plugin not started")
	}
	<-p.stderrDone
	defer close(p.done)
	return p.cmd.Wait()
}

func (p *process) Kill(context.Context) error {
	p.kill()
	return nil
}

// kill kills the process, or keeps it from starting. It also closes our
// ends of its stdout and stderr: a child the plugin left behind may hold
// theirs open, and go-plugin waits for both to end before it reaps the
// plugin.
func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed = true
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	for _, r := range []io.Closer{p.stdout, p.stderr} {
		if r != nil {
			_ = r.Close()
		}
	}
}

func (p *process) execErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startErr
}

func (p *process) getPid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *process) ID() string {
	if pid := p.getPid(); pid != 0 {
		return strconv.Itoa(pid)
	}
	return ""
}

func (p *process) Stdout() io.ReadCloser { return p.stdout }

// Stderr gives go-plugin nothing to parse: Start copies stderr itself.
func (p *process) Stderr() io.ReadCloser           { return io.NopCloser(strings.NewReader("")) }
func (p *process) Name() string                    { return p.cmd.Path }
func (p *process) Diagnose(context.Context) string { return "" }

func (p *process) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (p *process) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// maxLine bounds one output line; a longer one is passed on in pieces.
const maxLine = 64 << 10

// output receives a plugin's output streams and passes on whole lines.
type output struct {
	mu     sync.Mutex
	w      io.Writer    // Options.Stderr, or nil
	logger *slog.Logger // used when w is nil
}

func newOutput(w io.Writer, logger *slog.Logger) *output {
	return &output{w: w, logger: logger}
}

func (o *output) line(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w == nil {
		o.logger.Debug("plugin output", "line", safetext.Clip(string(b), maxLine))
		return
	}
	_, _ = o.w.Write(append(b[:len(b):len(b)], '\n'))
}

// stream returns a writer for one stream; it buffers a partial line.
func (o *output) stream() *lineWriter { return &lineWriter{out: o} }

type lineWriter struct {
	mu  sync.Mutex
	out *output
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.out.line(bytes.TrimSuffix(w.buf[:i], []byte("\r")))
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= maxLine {
		w.out.line(w.buf[:maxLine])
		w.buf = w.buf[maxLine:]
	}
	return len(p), nil
}

// flush passes on a last line without a newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.out.line(w.buf)
		w.buf = nil
	}
}
