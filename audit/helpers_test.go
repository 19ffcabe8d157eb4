package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clock is a fake clock that moves one millisecond a reading, or as set.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 4, 1, 10, 0, 0, 123456789, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// event is what the tests log: a request's summary.
type event struct {
	N      int    `json:"n"`
	Model  string `json:"model"`
	Status int    `json:"status"`
}

// fixture writes the log every tampering test starts from: seven entries,
// a checkpoint every three, and the one Close writes:
//
//	line: 1  2  3  4   5  6  7  8   9  10
//	      e1 e2 e3 cp3 e4 e5 e6 cp6 e7 cp7
func fixture(t testing.TB, signer crypto.Signer) string {
	t.Helper()
	return fixtureOf(t, signer, "alpha")
}

// fixtureOf is fixture with another model name in every event.
func fixtureOf(t testing.TB, signer crypto.Signer, model string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, signer, Options{Every: 3, Interval: -1, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 7; i++ {
		if err := w.Append(event{N: i, Model: model, Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))[:bytes.Count(data, []byte("\n"))]
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func verifyFile(t testing.TB, path string, pub crypto.PublicKey) (*Report, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f, pub)
}

// mustParse parses a line of the log (with its newline).
func mustParse(t testing.TB, line []byte) *record {
	t.Helper()
	r, err := parseLine(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		t.Fatalf("parsing %q: %v", line, err)
	}
	return r
}

func encodeLine(r *record) []byte { return append(r.encode(), '\n') }

// rechain sets each line's prev from index i on to the hash of the line
// before it, as someone who edited a line and wants the chain to hold would.
// With heads, checkpoints' heads are set to match too.
func rechain(t testing.TB, lines [][]byte, from int, heads bool) {
	t.Helper()
	for i := max(from, 1); i < len(lines); i++ {
		r := mustParse(t, lines[i])
		r.prev = lineHash(bytes.TrimSuffix(lines[i-1], []byte("\n")))
		if heads && r.cp != nil {
			r.cp.head = r.prev
		}
		lines[i] = encodeLine(r)
	}
}

// resign signs the checkpoint line with key k, naming k.
func resign(t testing.TB, line []byte, k crypto.Signer) []byte {
	t.Helper()
	r := mustParse(t, line)
	ck, err := newCheckKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	r.cp.keyID = ck.id
	if r.cp.signature, err = ck.sign(k, r.signedBytes()); err != nil {
		t.Fatal(err)
	}
	return encodeLine(r)
}

// wantProblem checks that err is a *Problem of kind at line, and returns
// a copy of it.
func wantProblem(t testing.TB, err error, kind error, line int) Problem {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want a *Problem of kind %q at line %d", err, kind, line)
	}
	if !errors.Is(err, kind) || p.Line != line {
		t.Fatalf("problem %q: want kind %q at line %d", p, kind, line)
	}
	return *p
}
