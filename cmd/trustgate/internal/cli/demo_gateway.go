package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/gateway"
	"github.com/trustgate/trustgate/internal/example"
	"github.com/trustgate/trustgate/stack"
)

// demoGateway starts the example's own trustgate-gateway on the signed
// example, shows its status, then appends one byte to the Go guardrail and
// shows the gateway refusing to start; the file is put back.
func demoGateway(cmd *cobra.Command, dir string, s *stack.Stack) error {
	out := cmd.OutOrStdout()
	if err := example.PythonRuntime(); err != nil {
		fmt.Fprintf(out, "   skipped: the example's Python plugin cannot run on this machine (%v); apt-get install python3-grpcio\n", err)
		return nil
	}
	// Absolute: the gateway's plugins, which run in folders of their own,
	// are not reached through a relative --data-dir (demo --dir out).
	data, err := filepath.Abs(filepath.Join(dir, "gateway-data"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	exe := filepath.Join(s.Source.Dir, "bin", "trustgate-gateway")
	args := []string{"--stack", s.Source.File, "--policy", filepath.Join(dir, "policy.yaml"),
		"--trust-key", filepath.Join(dir, "demo.pub"), "--bundle", filepath.Join(dir, "sbom.cdx.json.bundle.json"),
		"--data-dir", data, "--log-format", "json"}
	fmt.Fprintf(out, "   %s --stack stack.yaml --policy policy.yaml --trust-key demo.pub --bundle sbom.cdx.json.bundle.json\n", filepath.Base(exe))
	run, err := startDemoGateway(cmd.Context(), exe, args)
	if err != nil {
		return err
	}
	st, err := run.status()
	run.stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   ready at http://%s; GET /v1/trustgate/status says (policy %s version %d, %s):\n", st.Listen, st.Policy.Name, st.Policy.Version, short(st.Policy.Digest.String()))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   COMPONENT\tDIGEST\tSTATE\tPID\tRUNS")
	fmt.Fprintf(tw, "   %s/%s\t%s\t%s\t%d\t%s\n", st.Gateway.Kind, st.Gateway.Name, short(st.Gateway.Digest), st.Gateway.State, run.cmd.Process.Pid, "/proc/self/exe, verified")
	for _, c := range st.Components {
		runs := "a sealed copy (memfd)"
		if c.Interpreter != nil {
			runs = "a read-only snapshot, " + filepath.Base(c.Interpreter.Path) + " -I -S (" + short(c.Interpreter.Digest.String()) + ")"
		}
		fmt.Fprintf(tw, "   %s/%s\t%s\t%s\t%d\t%s\n", c.Kind, c.Name, short(c.Digest), c.State, c.PID, runs)
	}
	tw.Flush()

	victim := filepath.Join(s.Source.Dir, "bin", "guardrail")
	orig, err := os.ReadFile(victim)
	if err != nil {
		return err
	}
	if err := os.WriteFile(victim, append(append([]byte{}, orig...), 0), 0o755); err != nil {
		return err
	}
	fmt.Fprintf(out, "   now one byte is appended to bin/guardrail, and the gateway is started again:\n")
	code, line, err := refusedDemoGateway(cmd.Context(), exe, args)
	if rerr := os.WriteFile(victim, orig, 0o755); rerr != nil && err == nil {
		err = fmt.Errorf("putting bin/guardrail back: %w", rerr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   exit %d, nothing listened:\n   %s\n", code, line)
	fmt.Fprintf(out, "   the file is put back.\n")
	return nil
}

type demoRun struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	last string
}

// startDemoGateway runs the gateway and waits until it listens.
func startDemoGateway(ctx context.Context, exe string, args []string) (*demoRun, error) {
	r := &demoRun{cmd: exec.CommandContext(ctx, exe, args...), done: make(chan struct{})}
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	listening := make(chan string, 1)
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.last = sc.Text()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				listening <- line.Addr
			}
		}
		_ = r.cmd.Wait()
	}()
	select {
	case r.addr = <-listening:
		return r, nil
	case <-r.done:
		return nil, fmt.Errorf("the gateway did not start: %s", r.last)
	case <-time.After(90 * time.Second):
		r.stop()
		return nil, errors.New("the gateway did not start within 90s")
	}
}

func (r *demoRun) status() (gateway.Status, error) {
	var st gateway.Status
	resp, err := http.Get("http://" + r.addr + "/v1/trustgate/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st)
	return st, err
}

func (r *demoRun) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// refusedDemoGateway runs the gateway expecting a refusal: its exit code
// and its last line.
func refusedDemoGateway(ctx context.Context, exe string, args []string) (int, string, error) {
	c := exec.CommandContext(ctx, exe, args...)
	var stderr strings.Builder
	c.Stderr = &stderr
	err := c.Run()
	if err == nil {
		return 0, "", errors.New("the gateway started on a changed plugin")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return 0, "", fmt.Errorf("running the gateway on a changed plugin: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	return exit.ExitCode(), lines[len(lines)-1], nil
}
