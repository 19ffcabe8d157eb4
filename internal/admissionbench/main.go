// Command admissionbench measures trustgate's validating admission webhook
// (package admission) on 127.0.0.1, in one process: the real
// admission.Handler (with its metrics, and its JSON review log written to
// io.Discard) served over HTTPS by admission.Serve with a self-signed
// certificate made at start; go-containerregistry's in-memory registry
// with the referrers API (the kind internal/admissiontest runs) holding
// signed images, with the kit's keys, signatures and signed policy; and a
// load generator posting full AdmissionReviews (admission.k8s.io/v1, a Pod
// with one container) through a keep-alive HTTPS client.
//
// Two scenarios:
//
//   - cached: every review names one signed image digest; a warm-up review
//     puts its verdict in the cache, so what is measured is TLS, HTTP,
//     decoding the review and the pod, a cache lookup and the answer.
//   - uncached: the verdict cache is off (Config.CacheSize -1) and the
//     reviews cycle through -images distinct signed digests, so each one
//     is decided in full: registry round trips for the referrers, the
//     attestation manifest and blob and the cosign tag, and the DSSE
//     signature check of verify.CheckImage.
//
// The images are random, each with one release-signed SBOM attestation
// attached as an OCI referrer, one to a repository under
// trustgate/plugins/bench/ (the policy's enforced "plugins" entry): the
// in-memory registry lists referrers by decoding every manifest of the
// repository, so -per-repo above a few dozen measures that registry rather
// than the webhook. The registry speaks HTTPS, as production registries
// do, with the benchmark's certificate, which the process's system roots
// are made to trust: the webhook reaches it with pin.Registry{} and the
// default transports, as `trustgate admission serve` does.
// (-plain-registry serves it over plain HTTP, as the kit does; then
// go-containerregistry tries HTTPS first, on a new connection, at every
// ping.)
//
// The load is open loop: request i is due at start + i/rate whatever
// happened to the earlier ones, and its latency is counted from that due
// time to the end of its answer, so a stall is charged to every request
// it delays (no coordinated omission). Every answer must be a 200 with an
// AdmissionReview for the request's uid admitting the pod with no
// warnings; anything else is an error. The report gives, per scenario,
// the requests sent, the errors, the achieved rate, p50/p90/p99/p99.9/max
// latency, the CPU of this process (load generator, webhook and registry
// together: they share the machine) and of the other processes on the
// machine, the registry requests and connections per review, and the
// targets: p99 under 2 ms cached and under 50 ms uncached, at 500
// reviews/s with no errors.
//
// With -closed, each scenario is also driven closed loop (each client sends
// its next review when the last is answered) at the concurrencies of
// -concurrency: the highest throughput there is the most the process
// sustains.
//
// Run it from anywhere in the module:
//
//	go run ./internal/admissionbench [-rate 500] [-duration 10s] [-scenario all] [-images 500] [-closed] [-cpuprofile cpu.pprof]
//
// TRUSTGATE_BENCH_SMOKE=1 go test ./internal/admissionbench runs both
// scenarios briefly and checks the verdicts, not the timing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	cfg := defaultConfig()
	flag.Float64Var(&cfg.rate, "rate", cfg.rate, "open-loop offered rate, reviews per second")
	flag.DurationVar(&cfg.duration, "duration", cfg.duration, "length of each measured run")
	flag.DurationVar(&cfg.warmup, "warmup", cfg.warmup, "unmeasured open-loop load at -rate before each scenario's measured run")
	scenario := flag.String("scenario", "all", "cached, uncached or all")
	flag.IntVar(&cfg.images, "images", cfg.images, "distinct signed images the uncached scenario cycles through")
	flag.IntVar(&cfg.perRepo, "per-repo", cfg.perRepo, "images per repository (the kit's registry decodes every manifest of a repository to list referrers: more makes it the bottleneck)")
	flag.BoolVar(&cfg.plainRegistry, "plain-registry", false, "let the webhook reach the kit's registry over plain HTTP, not through the TLS front (go-containerregistry then tries HTTPS first, on a new connection, at every ping)")
	flag.IntVar(&cfg.workers, "workers", cfg.workers, "the open-loop generator's pool of senders, each with its own keep-alive connection at most")
	flag.BoolVar(&cfg.closed, "closed", false, "also drive each scenario closed loop at the -concurrency levels (the most it sustains)")
	conc := flag.String("concurrency", "1,4,16,64", "closed-loop concurrencies, comma-separated")
	flag.BoolVar(&cfg.http2, "http2", false, "speak HTTP/2 to the webhook (as the API server does) instead of HTTP/1.1 over a pool of connections")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of each scenario's open-loop run to this `file` (the scenario's name is put before its extension)")
	flag.Parse()
	var err error
	if cfg.scenarios, err = parseScenarios(*scenario); err == nil {
		cfg.concurrency, err = parseInts(*conc)
	}
	if err == nil {
		err = cfg.check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "admissionbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "admissionbench:", err)
		os.Exit(1)
	}
}

// config is one run's settings.
type config struct {
	rate     float64       // open loop, reviews per second
	duration time.Duration // each measured run
	warmup   time.Duration // unmeasured load before a scenario's run
	grace    time.Duration // an open loop sends nothing this long after its end
	images   int           // distinct signed digests, uncached
	perRepo  int           // images per repository
	// plainRegistry: the registry speaks plain HTTP, as the kit's does.
	plainRegistry bool
	workers       int // open-loop senders
	scenarios     []string
	closed        bool
	concurrency   []int
	http2         bool
	cpuProfile    string
}

func defaultConfig() config {
	return config{rate: 500, duration: 10 * time.Second, warmup: time.Second, grace: 2 * time.Second, images: 500, perRepo: 1, workers: 64,
		scenarios: []string{scenarioCached, scenarioUncached}, concurrency: []int{1, 4, 16, 64}}
}

func (c config) check() error {
	switch {
	case c.rate <= 0:
		return fmt.Errorf("-rate %v: want more than 0", c.rate)
	case c.duration <= 0:
		return fmt.Errorf("-duration %s: want more than 0", c.duration)
	case c.warmup < 0:
		return fmt.Errorf("-warmup %s: want 0 or more", c.warmup)
	case c.images < 1:
		return fmt.Errorf("-images %d: want at least 1", c.images)
	case c.perRepo < 1:
		return fmt.Errorf("-per-repo %d: want at least 1", c.perRepo)
	case c.workers < 1:
		return fmt.Errorf("-workers %d: want at least 1", c.workers)
	case int(c.rate*c.duration.Seconds()) < 1:
		return fmt.Errorf("-rate %v for %s sends no review", c.rate, c.duration)
	}
	return nil
}

// command is how to run this configuration again.
func (c config) command() string {
	s := fmt.Sprintf("go run ./internal/admissionbench -rate %g -duration %s -scenario %s -images %d", c.rate, c.duration, strings.Join(c.scenarios, ","), c.images)
	if c.perRepo != 1 {
		s += fmt.Sprintf(" -per-repo %d", c.perRepo)
	}
	if c.plainRegistry {
		s += " -plain-registry"
	}
	if c.closed {
		s += " -closed -concurrency " + joinInts(c.concurrency)
	}
	if c.http2 {
		s += " -http2"
	}
	return s
}

const (
	scenarioCached   = "cached"
	scenarioUncached = "uncached"
)

func parseScenarios(s string) ([]string, error) {
	switch s {
	case "all":
		return []string{scenarioCached, scenarioUncached}, nil
	case scenarioCached, scenarioUncached:
		return []string{s}, nil
	}
	return nil, fmt.Errorf("-scenario %q: want cached, uncached or all", s)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-concurrency %q: want positive integers, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(ns []int) string {
	var s []string
	for _, n := range ns {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ",")
}
