package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestSmokeRun runs both scenarios briefly, open and closed loop, and
// checks that every review was answered with the expected verdict, that
// the cached one never reached the registry and the uncached one always
// did; not the timing, which a shared CI machine cannot promise.
func TestSmokeRun(t *testing.T) {
	if os.Getenv("TRUSTGATE_BENCH_SMOKE") != "1" {
		t.Skip("the benchmark's smoke run pushes and signs images and loads the webhook for seconds; set TRUSTGATE_BENCH_SMOKE=1 to run it")
	}
	cfg := defaultConfig()
	cfg.rate, cfg.duration, cfg.warmup, cfg.images, cfg.workers = 100, time.Second, 200*time.Millisecond, 20, 16
	cfg.closed, cfg.concurrency = true, []int{4}
	// Every review must be sent and answered right, however busy the
	// machine is: this run checks verdicts, not time.
	cfg.grace = time.Minute
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, env, err := measureAll(ctx, cfg, testLog{t})
	if err != nil {
		t.Fatalf("measureAll: %v", err)
	}
	var out bytes.Buffer
	report(&out, cfg, env, results)
	t.Log("\n" + out.String())
	if len(results) != 2 {
		t.Fatalf("%d scenarios measured, want 2", len(results))
	}
	for _, r := range results {
		runs := append([]*measurement{r.open}, r.closed...)
		if r.warmup != nil {
			runs = append(runs, r.warmup)
		}
		for _, m := range runs {
			if m.errors() != 0 || m.ok == 0 || m.ok != m.sent {
				t.Errorf("%s, %s: %d sent, %d answered as expected, %d errors: %s", r.scenario, m.mode, m.sent, m.ok, m.errors(), strings.Join(m.errs.summary(), "; "))
			}
			switch {
			case r.scenario == scenarioCached && m.registry != 0:
				t.Errorf("cached, %s: %d registry requests, want none", m.mode, m.registry)
			case r.scenario == scenarioUncached && m.registry < int64(m.sent):
				t.Errorf("uncached, %s: %d registry requests for %d reviews: verdicts were not computed", m.mode, m.registry, m.sent)
			}
		}
		if want := int(cfg.rate * cfg.duration.Seconds()); r.open.sent != want {
			t.Errorf("%s: %d sent in the open loop, want %d", r.scenario, r.open.sent, want)
		}
		if len(r.closed) != 1 {
			t.Errorf("%s: %d closed-loop runs, want 1", r.scenario, len(r.closed))
		}
	}
	for _, want := range []string{"cached: p99 under 2 ms", "uncached: p99 under 50 ms", "most sustained"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

// TestReviewTemplate checks that a review's uid is spliced where the
// template marks it.
func TestReviewTemplate(t *testing.T) {
	e, err := newEnv(1, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	rv, err := newReview(e.images[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	body := string(rv.body("0123abcd-0000-4000-8000-000000000001"))
	for _, want := range []string{`"uid":"0123abcd-0000-4000-8000-000000000001"`, `"image":"` + e.images[0].String() + `"`, `"kind":"AdmissionReview"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the review lacks %s: %s", want, body)
		}
	}
	if strings.Contains(body, uidMark) {
		t.Errorf("the review still holds %s", uidMark)
	}
}

// TestDetectsDenial checks that the load generator's check is not vacuous:
// a review of an unsigned image, which the webhook denies, is counted as a
// wrong verdict, and one of a signed image passes.
func TestDetectsDenial(t *testing.T) {
	e, err := newEnv(1, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	var unsigned name.Digest
	func() {
		defer catch(&err)
		unsigned = e.push("trustgate/plugins/bench/unsigned:1.0")
	}()
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.startWebhook(-1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	tg := &target{url: w.url, client: e.client(1, false), run: runID()}
	for i, img := range []name.Digest{e.images[0], unsigned} {
		rv, err := newReview(img, i)
		if err != nil {
			t.Fatal(err)
		}
		tg.reviews = append(tg.reviews, rv)
	}
	if err := tg.do(context.Background(), 0); err != nil {
		t.Fatalf("the signed image: %v", err)
	}
	err = tg.do(context.Background(), 1)
	var f *failure
	if !errors.As(err, &f) || f.kind != errVerdict || !strings.Contains(err.Error(), "no trusted signature") {
		t.Fatalf("the unsigned image: %v, want a wrong verdict (denied: no trusted signature)", err)
	}
}

// testLog writes the benchmark's progress to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
