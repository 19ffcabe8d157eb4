package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// target is one way to the stub: direct, or through a proxy.
type target struct {
	name   string
	url    string // the chat completions endpoint
	key    string // the client's gateway key, sent on every path
	client *http.Client
}

// newTarget is a client of base keeping up to conns connections alive.
func newTarget(name, base, key string, conns int) *target {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &target{name: name, url: base + "/v1/chat/completions", key: key, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (t *target) close() { t.client.CloseIdleConnections() }

// Request bodies, about 1 KB each.
var (
	chatBody   = requestBody(false)
	streamBody = requestBody(true)
)

// do sends one chat request and returns the time until the whole answer
// was read or, streaming, until the first byte of the body came; it reads
// a stream to its end and checks that it ended with [DONE].
func (t *target) do(ctx context.Context, stream bool) (time.Duration, error) {
	body := chatBody
	if stream {
		body = streamBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.key)
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("%s answered %d: %s", t.name, resp.StatusCode, bytes.TrimSpace(b))
	}
	if !stream {
		n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		if err == nil && n == 0 {
			err = errors.New("empty answer")
		}
		return time.Since(start), err
	}
	var first [1]byte
	if _, err := io.ReadFull(resp.Body, first[:]); err != nil {
		return 0, fmt.Errorf("reading the stream: %w", err)
	}
	ttfb := time.Since(start)
	rest, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, fmt.Errorf("reading the stream: %w", err)
	}
	if !bytes.HasSuffix(rest, []byte("data: [DONE]\n\n")) {
		return 0, errors.New("the stream did not end with data: [DONE]")
	}
	return ttfb, nil
}

// warm sends n requests of each kind, one at a time.
func (t *target) warm(ctx context.Context, n int) error {
	for i := range 2 * n {
		if _, err := t.do(ctx, i%2 == 1); err != nil {
			return fmt.Errorf("warming up %s: %w", t.name, err)
		}
	}
	return nil
}

// interleave measures a and b at concurrency 1, in alternating blocks of
// requests so that drift (another process, the CPU's clock) touches both
// alike, until d has passed; it returns each one's samples.
func interleave(ctx context.Context, a, b *target, stream bool, d time.Duration) (sa, sb []time.Duration, err error) {
	const block = 50
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for _, x := range []struct {
			t   *target
			out *[]time.Duration
		}{{a, &sa}, {b, &sb}} {
			for range block {
				v, err := x.t.do(ctx, stream)
				if err != nil {
					return nil, nil, err
				}
				*x.out = append(*x.out, v)
			}
		}
	}
	return sa, sb, nil
}

// step is one open-loop load step at a fixed offered rate.
type step struct {
	rate     float64 // offered, requests per second
	sent     int
	failed   int // errors and requests never sent (the generator gave up)
	firstErr error
	p50, p99 time.Duration
	achieved float64 // answers per second
	proxyCPU float64 // the proxy's CPU, in cores
	loadCPU  float64 // this program's (load generator and stub), in cores
}

// limit is the p99 a step must stay under.
const limit = 5 * time.Millisecond

func (s step) pass() bool { return s.failed == 0 && s.sent > 0 && s.p99 < limit }

// openLoop offers rate requests per second to t for d from a fixed pool
// of workers. Request i is due at start + i/rate whether or not earlier
// ones were answered; a request sent late because every worker was busy
// counts its wait in its latency (no coordinated omission), while a
// worker that woke late from its own timer does not charge the target for
// it. After d plus two seconds no new request is sent, so a step is
// bounded even against a target that stalls.
func openLoop(ctx context.Context, t *target, p *proc, workers int, rate float64, d time.Duration) step {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	var next atomic.Int64
	var errOnce sync.Once
	s := step{rate: rate}
	start := time.Now().Add(20 * time.Millisecond)
	stopAt := start.Add(d + 2*time.Second)
	rctx, cancel := context.WithDeadline(ctx, stopAt.Add(3*time.Second))
	defer cancel()
	cpu0, self0 := procCPU(p), selfCPU()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || time.Now().After(stopAt) || rctx.Err() != nil {
					return
				}
				due := start.Add(time.Duration(i) * interval)
				late := time.Duration(0)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				} else {
					late = -wait
				}
				v, err := t.do(rctx, false)
				if err != nil {
					errOnce.Do(func() { s.firstErr = err })
					continue
				}
				lat[i], ok[i] = v+late, true
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	s.proxyCPU = (procCPU(p) - cpu0).Seconds() / elapsed.Seconds()
	s.loadCPU = (selfCPU() - self0).Seconds() / elapsed.Seconds()
	var got []time.Duration
	for i := range n {
		if ok[i] {
			got = append(got, lat[i])
		}
	}
	s.sent, s.failed = len(got), n-len(got)
	if s.failed > 0 && s.firstErr == nil {
		s.firstErr = fmt.Errorf("%d requests not sent in time", s.failed)
	}
	s.p50, s.p99 = percentile(got, 0.50), percentile(got, 0.99)
	s.achieved = float64(len(got)) / elapsed.Seconds()
	return s
}

func procCPU(p *proc) time.Duration {
	if p == nil {
		return 0
	}
	return p.cpuTime()
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile is the nearest-rank q-quantile of samples (0 for none).
func percentile(samples []time.Duration, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}
