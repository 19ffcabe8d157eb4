package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bare proxy: the benchmark
// re-executes itself (os.Executable) for it, which under go test is this
// binary.
func TestMain(m *testing.M) {
	if target, ok := bareProxyArgs(os.Args[1:]); ok {
		os.Exit(serveBareProxy(target, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuickRun runs the whole benchmark with -quick settings: it builds
// and starts the real gateway binary, so it runs only when asked.
func TestQuickRun(t *testing.T) {
	if os.Getenv("TRUSTGATE_BENCH_SMOKE") != "1" {
		t.Skip("the benchmark's end-to-end smoke run builds and starts the gateway; set TRUSTGATE_BENCH_SMOKE=1 to run it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	results, env, err := measureAll(ctx, quickConfig(), testLog{t})
	if err != nil {
		t.Fatalf("measureAll: %v", err)
	}
	var out bytes.Buffer
	report(&out, quickConfig(), env, results)
	t.Log("\n" + out.String())
	byName := map[string]*result{}
	for _, r := range results {
		byName[r.name] = r
	}
	for _, name := range []string{bareName, "trustgate-gateway", "gateway + guardrail hook"} {
		r := byName[name]
		switch {
		case r == nil:
			t.Errorf("%s was not measured", name)
		case len(r.chat) == 0 || len(r.ttfb) == 0 || len(r.steps) == 0:
			t.Errorf("%s: %d chat and %d streamed samples, %d load steps", name, len(r.chat), len(r.ttfb), len(r.steps))
		case r.idle.rss == 0 || r.peak.hwm < r.idle.rss:
			t.Errorf("%s: idle RSS %d KiB, peak %d KiB", name, r.idle.rss, r.peak.hwm)
		}
	}
	if r := byName["gateway + audit log"]; r == nil || (r.skipped == "" && len(r.chat) == 0) {
		t.Errorf("the audit variant was neither measured nor skipped with a reason")
	}
	if !strings.Contains(out.String(), "targets (issue 12)") {
		t.Errorf("the report has no targets:\n%s", out.String())
	}
}

// testLog writes the benchmark's progress to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
