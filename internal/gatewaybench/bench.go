package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/benchenv"
)

// result is what was measured of one path.
type result struct {
	name    string
	skipped string // why it was not measured
	note    string // what else to know
	// Concurrency 1: the path's samples and the direct path's, interleaved.
	chat, chatDirect, ttfb, ttfbDirect []time.Duration
	steps                              []step
	best                               *step // the highest passing step
	failRate                           float64
	stopped                            string // why the search ended early
	idle, peak                         memory
	plugins                            memory // the gateway's plugin processes, idle
	isProxy                            bool
}

// variant is a proxy to measure.
type variant struct {
	name  string
	start func(ctx context.Context) (*proc, string, error)
	audit string // the audit log's folder, for the audit variant
}

type bench struct {
	cfg      config
	d        *deployment
	base     string
	stub     *stub
	where    placement
	log      io.Writer
	deadline time.Time
	direct   *target
}

// run is the whole benchmark: build, start, measure, report to out;
// progress goes to log.
func run(ctx context.Context, cfg config, out, log io.Writer) error {
	results, env, err := measureAll(ctx, cfg, log)
	if err != nil {
		return err
	}
	report(out, cfg, env, results)
	return nil
}

// measureAll builds and starts everything and measures every path.
// Everything it starts is stopped, and its temporary folder removed,
// before it returns, on error and cancellation too.
func measureAll(ctx context.Context, cfg config, log io.Writer) ([]*result, environment, error) {
	env := environment{load: benchenv.LoadAverage(), where: place()}
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, env, err
	}
	env.source = benchenv.SourceVersion(ctx, root)
	base, err := os.MkdirTemp("", "gatewaybench-")
	if err != nil {
		return nil, env, err
	}
	defer removeAll(base)
	st, err := startStub()
	if err != nil {
		return nil, env, err
	}
	defer st.close()
	fmt.Fprintln(log, "building trustgate-gateway and the guardrail plugin (go build -trimpath) ...")
	d, err := newDeployment(ctx, root, base, st.url)
	if err != nil {
		return nil, env, err
	}
	b := &bench{cfg: cfg, d: d, base: base, stub: st, where: env.where, log: log}
	if b.where.pinned {
		if err := pinPID(os.Getpid(), b.where.load); err != nil {
			return nil, env, err
		}
	}
	b.deadline = time.Now().Add(cfg.budget)
	b.direct = newTarget("direct", st.url, d.key, cfg.workers)
	defer b.direct.close()
	results, err := b.all(ctx)
	return results, env, err
}

func (b *bench) all(ctx context.Context) ([]*result, error) {
	direct, err := b.measureDirect(ctx)
	if err != nil {
		return nil, err
	}
	results := []*result{direct}
	audit := filepath.Join(b.base, "audit")
	for _, v := range []variant{
		{name: bareName, start: b.startBareProxy},
		{name: "trustgate-gateway", start: b.gateway(gatewaySetup{name: "plain"})},
		{name: "gateway + guardrail hook", start: b.gateway(gatewaySetup{name: "plugin", plugin: true})},
		{name: "gateway + audit log", start: b.gateway(gatewaySetup{name: "audit", audit: audit}), audit: audit},
	} {
		r, err := b.measure(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.name, err)
		}
		results = append(results, r)
	}
	return results, nil
}

func (b *bench) gateway(s gatewaySetup) func(context.Context) (*proc, string, error) {
	return func(ctx context.Context) (*proc, string, error) { return b.d.startGateway(ctx, b.base, s) }
}

// measureDirect finds the direct path's highest rate: the load generator
// and the stub alone on their core, the ceiling of every other figure.
func (b *bench) measureDirect(ctx context.Context) (*result, error) {
	fmt.Fprintln(b.log, "direct: load generator and stub alone")
	if err := b.direct.warm(ctx, b.cfg.warmup); err != nil {
		return nil, err
	}
	r := &result{name: "direct (load side alone)"}
	b.search(ctx, r, b.direct, nil)
	return r, ctx.Err()
}

// measure starts v, pins it, measures it and stops it.
func (b *bench) measure(ctx context.Context, v variant) (*result, error) {
	r := &result{name: v.name, isProxy: true}
	fmt.Fprintf(b.log, "%s: starting\n", v.name)
	p, url, err := v.start(ctx)
	if err != nil && v.audit != "" && ctx.Err() == nil {
		r.skipped = "audit: the gateway did not start with gatewayConfig.auditLog: " + lastLine(err)
		fmt.Fprintf(b.log, "%s: %s\n", v.name, err)
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if b.where.pinned {
		if err := p.pin(b.where.proxy); err != nil {
			return nil, err
		}
	}
	time.Sleep(200 * time.Millisecond) // let start-up work settle before reading the idle RSS
	if r.idle, err = readMemory(p.pid()); err != nil {
		return nil, err
	}
	for _, c := range p.children {
		if m, err := readMemory(c.pid); err == nil {
			r.plugins.rss += m.rss
		}
	}
	t := newTarget(v.name, url, b.d.key, b.cfg.workers)
	defer t.close()
	if err := t.warm(ctx, b.cfg.warmup); err != nil {
		return nil, err
	}
	if v.audit != "" && !auditWritten(v.audit) {
		r.skipped = "audit: not available in this build"
		fmt.Fprintf(b.log, "%s: %s (gatewayConfig.auditLog set, nothing written after %d requests)\n", v.name, r.skipped, 2*b.cfg.warmup)
		return r, nil
	}
	if err := b.latency(ctx, r, t); err != nil {
		return nil, err
	}
	b.search(ctx, r, t, p)
	if r.peak, err = readMemory(p.pid()); err != nil {
		return nil, err
	}
	if v.audit != "" {
		r.note = auditSummary(filepath.Join(v.audit, "audit.log"))
	}
	return r, ctx.Err()
}

// latency is the concurrency-1 phase: chat, then streaming time to first
// byte, each interleaved with the direct path.
func (b *bench) latency(ctx context.Context, r *result, t *target) error {
	var err error
	if r.chatDirect, r.chat, err = interleave(ctx, b.direct, t, false, b.cfg.latency); err != nil {
		return err
	}
	if r.ttfbDirect, r.ttfb, err = interleave(ctx, b.direct, t, true, b.cfg.latency); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "%s: concurrency 1: chat p50 %s (direct %s), first byte p50 %s (direct %s), %d samples\n", r.name,
		ms(percentile(r.chat, .5)), ms(percentile(r.chatDirect, .5)), ms(percentile(r.ttfb, .5)), ms(percentile(r.ttfbDirect, .5)), len(r.chat)+len(r.ttfb))
	return nil
}

// search steps the offered rate: doubling while p99 stays under the limit,
// then halving the gap between the highest pass and the lowest failure,
// within cfg.maxSteps steps and the run's time budget.
func (b *bench) search(ctx context.Context, r *result, t *target, p *proc) {
	rate := b.cfg.startRate
	for range b.cfg.maxSteps {
		if ctx.Err() != nil {
			return
		}
		if time.Now().After(b.deadline) {
			r.stopped = "time budget spent"
			return
		}
		s := openLoop(ctx, t, p, b.cfg.workers, rate, b.cfg.step)
		r.steps = append(r.steps, s)
		verdict := "pass"
		if !s.pass() {
			verdict = "fail"
			if s.firstErr != nil {
				verdict += " (" + firstLine(s.firstErr) + ")"
			}
		}
		fmt.Fprintf(b.log, "%s: offered %.0f/s: answered %.0f/s, p50 %s, p99 %s, proxy CPU %.0f%%, load CPU %.0f%%: %s\n",
			r.name, s.rate, s.achieved, ms(s.p50), ms(s.p99), 100*s.proxyCPU, 100*s.loadCPU, verdict)
		if s.pass() {
			r.best = &s
		} else if r.failRate == 0 || s.rate < r.failRate {
			r.failRate = s.rate
		}
		switch {
		case r.failRate == 0:
			rate *= 2
		case r.best == nil:
			rate /= 2
		default:
			rate = (r.best.rate + r.failRate) / 2
		}
		if r.best != nil && r.failRate > 0 && r.failRate-r.best.rate < 0.08*r.best.rate {
			return
		}
		time.Sleep(300 * time.Millisecond) // let the last step's connections and queues drain
	}
}

// auditWritten waits up to two seconds for the audit log to hold a line.
func auditWritten(dir string) bool {
	for range 20 {
		if fi, err := os.Stat(filepath.Join(dir, "audit.log")); err == nil && fi.Size() > 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// auditSummary says how much the audit log holds.
func auditSummary(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "audit log: " + err.Error()
	}
	defer f.Close()
	var lines, size int64
	buf := make([]byte, 256<<10)
	for {
		n, err := f.Read(buf)
		size += int64(n)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if err != nil {
			break
		}
	}
	return fmt.Sprintf("the audit log holds %d lines (%s) after the run", lines, mb(size/1024))
}

// startBareProxy re-executes this program as the bare reverse proxy.
func (b *bench) startBareProxy(ctx context.Context) (*proc, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, bareProxyFlag, b.stub.url)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc("bare proxy", cmd, filepath.Join(b.base, "bare-proxy.log"))
	if err != nil {
		return nil, "", err
	}
	line, err := readLine(stdout, 10*time.Second)
	addr, ok := strings.CutPrefix(line, "listening ")
	if err != nil || !ok {
		p.stop()
		return nil, "", fmt.Errorf("the bare proxy did not start (%q, %w); its log ends:\n%s", line, err, p.logTail())
	}
	if ctx.Err() != nil {
		p.stop()
		return nil, "", ctx.Err()
	}
	return p, "http://" + addr, nil
}

// freePort is a loopback address with a port free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s = "timeout: " + s
	}
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func lastLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	return lines[len(lines)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", d.Seconds()*1000) }
