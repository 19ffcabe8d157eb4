// Command gatewaybench is trustgate-gateway's performance benchmark (issue
// 12): in one run on 127.0.0.1 it builds the gateway and the example
// guardrail plugin, starts a fast upstream stub, and measures the direct
// path, a bare httputil.ReverseProxy (this program, re-executed) and the
// real gateway binary, without plugins, with one Go plugin hook and with
// the audit log on. It prints the added latency at concurrency 1, the
// streaming time to first byte, the highest request rate at which p99
// stays under 5 ms with the proxy pinned to one core, and the proxy's idle
// and peak RSS, next to the targets.
//
// Run it from anywhere in the module:
//
//	go run ./internal/gatewaybench [-duration 3s] [-quick]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	duration := flag.Duration("duration", 3*time.Second, "length of each load step and of each concurrency-1 phase")
	quick := flag.Bool("quick", false, "short steps and few of them: a smoke test of the whole run, not a measurement")
	bare := flag.String(bareProxyFlag[1:], "", "internal: serve as the bare reverse proxy to this upstream `URL` (the benchmark re-executes itself so)")
	flag.Parse()
	if *bare != "" {
		os.Exit(serveBareProxy(*bare, os.Stdout, os.Stderr))
	}
	cfg := fullConfig(*duration)
	if *quick {
		cfg = quickConfig()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

// config is one run's settings.
type config struct {
	step      time.Duration // each open-loop load step
	latency   time.Duration // each concurrency-1 phase (direct and the variant interleaved)
	warmup    int           // requests sent to a target before it is measured
	maxSteps  int           // load steps per target
	startRate float64       // the first offered rate of a search, requests per second
	workers   int           // the open-loop generator's fixed pool of connections
	budget    time.Duration // the whole measurement; a search stops early past it
	quick     bool
}

func fullConfig(step time.Duration) config {
	if step <= 0 {
		step = 3 * time.Second
	}
	return config{step: step, latency: step, warmup: 300, maxSteps: 7, startRate: 1000, workers: 64, budget: 170 * time.Second}
}

// command is how to run this configuration again.
func (c config) command() string {
	if c.quick {
		return "go run ./internal/gatewaybench -quick"
	}
	return "go run ./internal/gatewaybench -duration " + c.step.String()
}

func quickConfig() config {
	return config{step: 300 * time.Millisecond, latency: 300 * time.Millisecond, warmup: 20, maxSteps: 2, startRate: 500, workers: 16, budget: 60 * time.Second, quick: true}
}
