package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets from issue 12.
const (
	targetRatio     = 1.5                    // of the bare proxy's added latency
	targetAddedP50  = 150 * time.Microsecond // "about +0.15 ms p50"
	targetAddedP99  = 500 * time.Microsecond // "p99 under 0.5 ms"
	targetHookP50   = 300 * time.Microsecond // each plugin hook
	targetRate      = 2000                   // requests per second on one core, p99 under limit
	targetIdleRSSKB = 39062                  // 40 MB (10^6 bytes), in KiB
)

const bareName = "bare httputil.ReverseProxy"

// added is the path's quantile q over the direct path's, measured in the
// same interleaved run.
func added(path, direct []time.Duration, q float64) time.Duration {
	return percentile(path, q) - percentile(direct, q)
}

func report(out io.Writer, cfg config, env environment, results []*result) {
	where := env.where
	fmt.Fprintf(out, "\ntrustgate-gateway benchmark: %s\n", cfg.command())
	fmt.Fprintf(out, "127.0.0.1, %s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	if env.source != "" {
		fmt.Fprintf(out, ", %s", env.source)
	}
	fmt.Fprintf(out, "\nload average (1 min) before the run: %s (other work on the machine disturbs every figure)\n", env.load)
	if where.pinned {
		fmt.Fprintf(out, "proxy (and its plugins) pinned to CPU %d; load generator and upstream stub (this process) to CPU %d\n", where.proxy, where.load)
	} else {
		fmt.Fprintf(out, "nothing pinned: %s\n", where.why)
	}
	fmt.Fprintf(out, "chat request %d B, answer %d B; stream: 3 chunks + [DONE]; concurrency-1 phases %s each (interleaved with direct); load steps %s, open loop, %d workers\n",
		len(chatBody), len(chatCompletion()), cfg.latency, cfg.step, cfg.workers)
	latencyTable(out, results)
	rateTable(out, results)
	for _, r := range results {
		if r.skipped != "" {
			fmt.Fprintf(out, "%s: %s\n", r.name, r.skipped)
		}
		if r.note != "" {
			fmt.Fprintf(out, "%s: %s\n", r.name, r.note)
		}
	}
	targets(out, results)
}

func latencyTable(out io.Writer, results []*result) {
	fmt.Fprintln(out, "\nconcurrency 1 (ms; added = over the direct path measured alongside)")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "path\tchat p50\tchat p99\tadded p50\tadded p99\t\tfirst byte p50\tfirst byte p99\tadded p50\tadded p99\t")
	var chat, ttfb []time.Duration
	for _, r := range results {
		chat, ttfb = append(chat, r.chatDirect...), append(ttfb, r.ttfbDirect...)
	}
	fmt.Fprintf(w, "direct\t%s\t%s\t\t\t\t%s\t%s\t\t\t\n", msf(percentile(chat, .5)), msf(percentile(chat, .99)), msf(percentile(ttfb, .5)), msf(percentile(ttfb, .99)))
	for _, r := range results {
		if !r.isProxy {
			continue
		}
		if len(r.chat) == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\t-\t\t-\t-\t-\t-\t\n", r.name)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t\t%s\t%s\t%s\t%s\t\n", r.name,
			msf(percentile(r.chat, .5)), msf(percentile(r.chat, .99)), plus(added(r.chat, r.chatDirect, .5)), plus(added(r.chat, r.chatDirect, .99)),
			msf(percentile(r.ttfb, .5)), msf(percentile(r.ttfb, .99)), plus(added(r.ttfb, r.ttfbDirect, .5)), plus(added(r.ttfb, r.ttfbDirect, .99)))
	}
	w.Flush()
}

func rateTable(out io.Writer, results []*result) {
	fmt.Fprintf(out, "\nhighest rate with p99 under %s (chat, non-streaming), and memory\n", limit)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "path\tmax rate/s\tp50 there\tp99 there\tproxy CPU\tload CPU\tfirst failing rate\tidle RSS\tpeak RSS\t")
	for _, r := range results {
		if r.skipped != "" {
			fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t-\t%s\t-\t\n", r.name, mb(r.idle.rss))
			continue
		}
		best, p50, p99, pcpu, lcpu := "-", "-", "-", "-", "-"
		if r.best != nil {
			best = fmt.Sprintf("%.0f", r.best.achieved)
			p50, p99 = msf(r.best.p50), msf(r.best.p99)
			lcpu = fmt.Sprintf("%.0f%%", 100*r.best.loadCPU)
			if r.isProxy {
				pcpu = fmt.Sprintf("%.0f%%", 100*r.best.proxyCPU)
			}
			if r.failRate == 0 {
				best = "≥ " + best // no step failed: a lower bound
			}
		} else if len(r.steps) > 0 {
			best = fmt.Sprintf("< %.0f", r.steps[len(r.steps)-1].rate)
		}
		fail := "none"
		if r.failRate > 0 {
			fail = fmt.Sprintf("%.0f", r.failRate)
		} else if r.stopped != "" {
			fail = r.stopped
		}
		idle, peak := "-", "-"
		if r.isProxy {
			idle, peak = mb(r.idle.rss), mb(r.peak.hwm)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name, best, p50, p99, pcpu, lcpu, fail, idle, peak)
	}
	w.Flush()
	for _, r := range results {
		if r.plugins.rss > 0 {
			fmt.Fprintf(out, "%s: the plugin processes' idle RSS is %s more (not in the gateway's figures)\n", r.name, mb(r.plugins.rss))
		}
	}
}

// targets prints the targets next to the figures.
func targets(out io.Writer, results []*result) {
	byName := map[string]*result{}
	for _, r := range results {
		byName[r.name] = r
	}
	bare, gw := byName[bareName], byName["trustgate-gateway"]
	fmt.Fprintln(out, "\ntargets (issue 12)")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "target\tmeasured\t")
	if ok(bare) && ok(gw) {
		for _, k := range []struct {
			what         string
			path, direct func(*result) []time.Duration
		}{
			{"chat", func(r *result) []time.Duration { return r.chat }, func(r *result) []time.Duration { return r.chatDirect }},
			{"first byte", func(r *result) []time.Duration { return r.ttfb }, func(r *result) []time.Duration { return r.ttfbDirect }},
		} {
			for _, q := range []float64{.5, .99} {
				g, b := added(k.path(gw), k.direct(gw), q), added(k.path(bare), k.direct(bare), q)
				fmt.Fprintf(w, "%s added p%.0f within %.1fx the bare proxy's\tgateway %s, bare %s, limit %s: %s\t\n", k.what, q*100, targetRatio,
					plus(g), plus(b), plus(time.Duration(targetRatio*float64(b))), verdict(float64(g) <= targetRatio*float64(b)))
			}
			g50, g99 := added(k.path(gw), k.direct(gw), .5), added(k.path(gw), k.direct(gw), .99)
			fmt.Fprintf(w, "%s added p50 about %s\tgateway %s: %s\t\n", k.what, plus(targetAddedP50), plus(g50), verdict(g50 <= targetAddedP50))
			fmt.Fprintf(w, "%s added p99 under %s\tgateway %s: %s\t\n", k.what, plus(targetAddedP99), plus(g99), verdict(g99 < targetAddedP99))
		}
	}
	if hook := byName["gateway + guardrail hook"]; ok(hook) && ok(gw) {
		c := added(hook.chat, hook.chatDirect, .5) - added(gw.chat, gw.chatDirect, .5)
		f := added(hook.ttfb, hook.ttfbDirect, .5) - added(gw.ttfb, gw.ttfbDirect, .5)
		fmt.Fprintf(w, "one plugin hook under %s p50\tchat %s, first byte %s: %s\t\n", plus(targetHookP50), plus(c), plus(f), verdict(c < targetHookP50 && f < targetHookP50))
	}
	for _, r := range results {
		if !r.isProxy || r.skipped != "" || r.name == bareName {
			continue
		}
		rate := 0.0
		if r.best != nil {
			rate = r.best.achieved
		}
		v := verdict(rate >= targetRate)
		if rate < targetRate && r.failRate == 0 {
			v = "not reached: the search stopped before any step failed"
		}
		fmt.Fprintf(w, "%s: at least %d/s on one core, p99 under %s\t%.0f/s: %s\t\n", r.name, targetRate, limit, rate, v)
	}
	for _, r := range results {
		if r.isProxy && r.name != bare.name && r.idle.rss > 0 {
			fmt.Fprintf(w, "%s: idle RSS under %s\t%s: %s\t\n", r.name, mb(targetIdleRSSKB), mb(r.idle.rss), verdict(r.idle.rss < targetIdleRSSKB))
		}
	}
	w.Flush()
}

func ok(r *result) bool { return r != nil && r.skipped == "" && len(r.chat) > 0 }

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

func msf(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()*1000) }

func plus(d time.Duration) string {
	s := fmt.Sprintf("%+.3f ms", d.Seconds()*1000)
	return strings.Replace(s, "-0.000", "+0.000", 1)
}

func mb(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)*1024/1e6) }
