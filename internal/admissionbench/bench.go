package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/benchenv"
)

// result is what was measured of one scenario.
type result struct {
	scenario string
	open     *measurement   // the open-loop run at the configured rate
	warmup   *measurement   // the unmeasured load before it (nil: none)
	closed   []*measurement // -closed: one per concurrency
	profile  string         // the CPU profile written, if any
	proto    string         // the protocol the webhook answered in
}

// run is the whole benchmark: set up, measure, report to out; progress
// goes to log.
func run(ctx context.Context, cfg config, out, log io.Writer) error {
	results, env, err := measureAll(ctx, cfg, log)
	if err != nil {
		return err
	}
	report(out, cfg, env, results)
	return nil
}

// measureAll sets up the registry and measures each scenario. What it
// starts is stopped, and its temporary folders removed, before it returns.
func measureAll(ctx context.Context, cfg config, log io.Writer) ([]*result, environment, error) {
	envr := environment{load: benchenv.LoadAverage(), source: benchenv.SourceVersion(ctx, ".")}
	images := 1
	if contains(cfg.scenarios, scenarioUncached) {
		images = cfg.images
	}
	t0 := time.Now()
	fmt.Fprintf(log, "starting the registry, pushing and signing %d images, %d to a repository ...\n", images, cfg.perRepo)
	e, err := newEnv(images, cfg.perRepo, cfg.plainRegistry)
	if err != nil {
		return nil, envr, err
	}
	defer e.close()
	envr.setup = time.Since(t0)
	fmt.Fprintf(log, "set up in %s (%d registry requests)\n", envr.setup.Round(time.Millisecond), e.registryRequests.Load())
	var results []*result
	for _, s := range cfg.scenarios {
		r, err := measureScenario(ctx, e, cfg, s, log)
		if err != nil {
			return nil, envr, fmt.Errorf("%s: %w", s, err)
		}
		results = append(results, r)
	}
	return results, envr, ctx.Err()
}

// measureScenario serves a webhook for the scenario, warms it and measures
// it.
func measureScenario(ctx context.Context, e *env, cfg config, scenario string, log io.Writer) (*result, error) {
	r := &result{scenario: scenario}
	cacheSize, images := 0, e.images[:1] // the default cache; one digest
	if scenario == scenarioUncached {
		cacheSize, images = -1, e.images
	}
	w, err := e.startWebhook(cacheSize)
	if err != nil {
		return nil, err
	}
	defer w.close()
	client := e.client(max(cfg.workers, maxOf(cfg.concurrency)), cfg.http2)
	defer client.CloseIdleConnections()
	t := &target{url: w.url, client: client, run: runID()}
	for i, img := range images {
		rv, err := newReview(img, i)
		if err != nil {
			return nil, err
		}
		t.reviews = append(t.reviews, rv)
	}
	fmt.Fprintf(log, "%s: webhook at %s, %d distinct image digests, review %d bytes\n", scenario, w.url, len(images), len(t.reviews[0].body(t.run+"-0000-4000-8000-000000000000")))
	// The first review: for cached, it puts the verdict in the cache.
	next := 0
	if err := t.do(ctx, next); err != nil {
		return nil, fmt.Errorf("the first review: %w", err)
	}
	next++
	if cfg.warmup > 0 {
		r.warmup = openLoop(ctx, t, cfg.workers, cfg.rate, cfg.warmup, cfg.grace, next, e.counters())
		next += int(cfg.rate * cfg.warmup.Seconds())
		fmt.Fprintf(log, "%s: warm-up %s at %g/s: %d sent, %d errors, p99 %s\n", scenario, cfg.warmup, cfg.rate, r.warmup.sent, r.warmup.errors(), msf(quantiles(r.warmup.lat, .99)[0]))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	stopProfile, err := startProfile(cfg.cpuProfile, scenario, len(cfg.scenarios) > 1)
	if err != nil {
		return nil, err
	}
	r.open = openLoop(ctx, t, cfg.workers, cfg.rate, cfg.duration, cfg.grace, next, e.counters())
	r.profile = stopProfile()
	if p := t.proto.Load(); p != nil {
		r.proto = *p
	}
	r.open.scenario = scenario
	next += int(cfg.rate * cfg.duration.Seconds())
	fmt.Fprintf(log, "%s: open loop %s at %g/s: %d sent, %d errors, p99 %s\n", scenario, cfg.duration, cfg.rate, r.open.sent, r.open.errors(), msf(quantiles(r.open.lat, .99)[0]))
	if !cfg.closed {
		return r, ctx.Err()
	}
	for _, c := range cfg.concurrency {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Unmeasured: opens the connections this concurrency needs.
		warm := closedLoop(ctx, t, c, min(max(cfg.warmup, 200*time.Millisecond), time.Second), next, e.counters())
		next += warm.sent
		m := closedLoop(ctx, t, c, cfg.duration, next, e.counters())
		next += m.sent
		m.scenario = scenario
		r.closed = append(r.closed, m)
		fmt.Fprintf(log, "%s: closed loop, %d clients: %.0f/s, %d errors, p99 %s\n", scenario, c, m.achieved, m.errors(), msf(quantiles(m.lat, .99)[0]))
	}
	return r, ctx.Err()
}

// startProfile starts a CPU profile to path (with the scenario's name put
// before its extension when several scenarios run); its stop function
// returns the file written.
func startProfile(path, scenario string, several bool) (func() string, error) {
	if path == "" {
		return func() string { return "" }, nil
	}
	if several {
		ext := filepath.Ext(path)
		path = strings.TrimSuffix(path, ext) + "." + scenario + ext
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() string {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return ""
		}
		return path
	}, nil
}

// runID is 8 hex digits, the first part of every uid of one scenario.
func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func maxOf(ns []int) int {
	m := 0
	for _, n := range ns {
		m = max(m, n)
	}
	return m
}
