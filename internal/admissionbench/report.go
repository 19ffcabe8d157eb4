package main

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"
)

// Targets: p99 of an admission review at targetRate reviews per second.
const (
	targetRate        = 500
	targetCachedP99   = 2 * time.Millisecond
	targetUncachedP99 = 50 * time.Millisecond
)

func targetP99(scenario string) time.Duration {
	if scenario == scenarioCached {
		return targetCachedP99
	}
	return targetUncachedP99
}

// environment is what the report says about the run's conditions.
type environment struct {
	load   string // /proc/loadavg's 1-minute average, before the run
	source string // the commit, and whether the tree differs
	setup  time.Duration
}

func report(out io.Writer, cfg config, env environment, results []*result) {
	fmt.Fprintf(out, "\ntrustgate admission webhook benchmark: %s\n", cfg.command())
	fmt.Fprintf(out, "127.0.0.1, %s/%s, %d CPUs (GOMAXPROCS %d), %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if env.source != "" {
		fmt.Fprintf(out, ", %s", env.source)
	}
	fmt.Fprintf(out, "\nload average (1 min) before the run: %s; set-up (registry, images pushed and signed, policy) %s\n", env.load, env.setup.Round(time.Millisecond))
	proto := fmt.Sprintf("HTTP/1.1 keep-alive, up to %d connections", cfg.workers)
	if cfg.http2 {
		proto = "HTTP/2 asked for"
	}
	if len(results) > 0 && results[0].proto != "" {
		proto += ", answered in " + results[0].proto
	}
	fmt.Fprintf(out, "one process: the load generator, the webhook (admission.Handler over admission.Serve, TLS 1.3, ECDSA P-256) and the registry share the CPUs; %s\n", proto)
	reg := "over HTTPS, as production registries are"
	if cfg.plainRegistry {
		reg = "over plain HTTP (-plain-registry: go-containerregistry tries HTTPS first, on a new connection, at every ping)"
	}
	fmt.Fprintf(out, "registry: go-containerregistry's in-memory one (the kit's kind) %s, %d images to a repository, reached with pin.Registry{} as `trustgate admission serve` does\n", reg, cfg.perRepo)
	fmt.Fprintf(out, "open loop: latency from each review's due time to the end of its answer; warm-up %s at the same rate before each run\n", cfg.warmup)

	fmt.Fprintf(out, "\nopen loop, %g reviews/s offered for %s (latency in ms)\n", cfg.rate, cfg.duration)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tsent\terrors\tachieved/s\tp50\tp90\tp99\tp99.9\tmax\tCPU (cores)\tother processes' CPU\tregistry req/review\tregistry conns/review\t")
	for _, r := range results {
		m := r.open
		q := quantiles(m.lat, .5, .9, .99, .999, 1)
		fmt.Fprintf(w, "%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t\n", r.scenario, m.sent, m.errors(), m.achieved,
			msf(q[0]), msf(q[1]), msf(q[2]), msf(q[3]), msf(q[4]), m.cpu, others(m), perReview(m.registry, m), perReview(m.registryConns, m))
	}
	w.Flush()
	for _, r := range results {
		fmt.Fprintf(out, "%s: the generator sent its reviews late by p99 %s ms, max %s ms (part of the latencies above)\n", r.scenario, msf(r.open.lagP99), msf(r.open.lagMax))
		if r.open.others > 0.25 {
			fmt.Fprintf(out, "%s: other processes used %.2f of the %d CPUs during the run: every figure of it is disturbed; run again on a quiet machine\n", r.scenario, r.open.others, runtime.NumCPU())
		}
		for _, s := range r.open.errs.summary() {
			fmt.Fprintf(out, "%s: error: %s\n", r.scenario, s)
		}
		if r.warmup != nil && r.warmup.errors() > 0 {
			fmt.Fprintf(out, "%s: %d errors in the warm-up\n", r.scenario, r.warmup.errors())
		}
		if r.profile != "" {
			fmt.Fprintf(out, "%s: CPU profile of the run: %s (go tool pprof -top %s)\n", r.scenario, r.profile, r.profile)
		}
	}
	if cfg.closed {
		closedTable(out, cfg, results)
	}
	targets(out, cfg, results)
}

func closedTable(out io.Writer, cfg config, results []*result) {
	fmt.Fprintf(out, "\nclosed loop, each client sending its next review when the last is answered, %s per level (latency in ms)\n", cfg.duration)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tclients\tsent\terrors\treviews/s\tp50\tp90\tp99\tmax\tCPU (cores)\tother processes' CPU\tregistry req/review\tregistry conns/review\t")
	for _, r := range results {
		for _, m := range r.closed {
			q := quantiles(m.lat, .5, .9, .99, 1)
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t\n", r.scenario, m.clients, m.sent, m.errors(), m.achieved, msf(q[0]), msf(q[1]), msf(q[2]), msf(q[3]), m.cpu, others(m), perReview(m.registry, m), perReview(m.registryConns, m))
		}
	}
	w.Flush()
	for _, r := range results {
		for _, m := range r.closed {
			for _, s := range m.errs.summary() {
				fmt.Fprintf(out, "%s, %d clients: error: %s\n", r.scenario, m.clients, s)
			}
		}
		if best := bestClosed(r); best != nil {
			fmt.Fprintf(out, "%s: most sustained: %.0f reviews/s (%d clients, p99 %s ms)\n", r.scenario, best.achieved, best.clients, msf(quantiles(best.lat, .99)[0]))
		}
	}
}

// bestClosed is the closed-loop level with the highest throughput and no
// errors.
func bestClosed(r *result) *measurement {
	var best *measurement
	for _, m := range r.closed {
		if m.errors() == 0 && (best == nil || m.achieved > best.achieved) {
			best = m
		}
	}
	return best
}

// targets prints the targets next to the figures.
func targets(out io.Writer, cfg config, results []*result) {
	fmt.Fprintln(out, "\ntargets")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "target\tmeasured\t")
	for _, r := range results {
		m, limit := r.open, targetP99(r.scenario)
		p99 := quantiles(m.lat, .99)[0]
		met := m.errors() == 0 && m.ok > 0 && p99 < limit && m.achieved >= 0.95*cfg.rate
		v := verdict(met)
		if cfg.rate != targetRate && met {
			v = fmt.Sprintf("met at %g/s, not the target's rate", cfg.rate)
		}
		fmt.Fprintf(w, "%s: p99 under %s at %d reviews/s, no errors\tp99 %s ms at %.0f/s, %d errors: %s\t\n", r.scenario, ms(limit), targetRate, msf(p99), m.achieved, m.errors(), v)
	}
	w.Flush()
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// others is the CPU the rest of the machine used during m: what this
// process did not get of it.
func others(m *measurement) string {
	if m.others < 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f", m.others)
}

// perReview is n per review sent in m.
func perReview(n int64, m *measurement) string {
	if m.sent == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(n)/float64(m.sent))
}

func msf(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()*1000) }

func ms(d time.Duration) string { return fmt.Sprintf("%g ms", d.Seconds()*1000) }
