package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
)

// TestWriterFormat pins the bytes of a small log: two entries, the event
// written as given (no HTML escaping), the checkpoint Close writes.
func TestWriterFormat(t *testing.T) {
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, key, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(map[string]any{"model": "gpt-4o", "note": "<b>&"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(json.RawMessage(` { "status" : 200 } `)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	h1 := lineHash(bytes.TrimSuffix(lines[0], []byte("\n")))
	h2 := lineHash(bytes.TrimSuffix(lines[1], []byte("\n")))
	want := []string{
		`{"seq":1,"time":"2026-04-01T10:00:00.125456789Z","prev":"` + zeroHash + `","event":{"model":"gpt-4o","note":"<b>&"}}` + "\n",
		`{"seq":2,"time":"2026-04-01T10:00:00.126456789Z","prev":"` + h1 + `","event":{"status":200}}` + "\n",
		`{"seq":3,"time":"2026-04-01T10:00:00.127456789Z","prev":"` + h2 + `","checkpoint":{"count":2,"head":"` + h2 + `","keyId":"`,
	}
	for i, w := range want {
		if !strings.HasPrefix(string(lines[i]), w) {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], w)
		}
	}
	hint, err := attest.KeyHint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if cp := mustParse(t, lines[2]).cp; cp.keyID != hint {
		t.Errorf("keyId %q, want attest.KeyHint %q", cp.keyID, hint)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestWriterRefusesBadEvents(t *testing.T) {
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	// A clock whose times all have nine digits after the second: lines of
	// the same event have the same length.
	w, err := Open(path, key, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, ev := range []any{nil, []int{1}, "text", 42, json.RawMessage(`null`)} {
		if err := w.Append(ev); !errors.Is(err, ErrMalformed) {
			t.Errorf("event %#v: err = %v, want ErrMalformed", ev, err)
		}
	}
	if err := w.Append(map[string]any{"f": func() {}}); err == nil {
		t.Error("an event JSON cannot encode was accepted")
	}
	// The largest event that fits, and one byte more.
	overhead := len((&record{seq: 1, time: formatTime(newClock().Now()), prev: zeroHash, event: []byte(`{"x":""}`)}).encode()) + 1
	fits := map[string]string{"x": strings.Repeat("a", MaxLine-overhead)}
	if err := w.Append(map[string]string{"x": fits["x"] + "a"}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an event one byte too large: err = %v, want ErrTooLarge", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("refused events wrote %d bytes", fi.Size())
	}
	if err := w.Append(fits); err != nil {
		t.Errorf("an event that fits MaxLine exactly: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyFile(t, path, key.Public()); err != nil || rep.Entries != 1 {
		t.Errorf("report %+v, err %v: want 1 entry", rep, err)
	}
}

func TestWriterCheckpoints(t *testing.T) {
	key := newKey(t)
	clk := newClock()
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, key, Options{Every: -1, Interval: 10 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	kinds := func() string {
		var s strings.Builder
		for _, l := range readLines(t, path) {
			if mustParse(t, l).cp != nil {
				s.WriteByte('C')
			} else {
				s.WriteByte('e')
			}
		}
		return s.String()
	}
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error { return w.Append(event{N: 1}) }, "e"},
		{func() error { clk.Advance(5 * time.Second); return w.Append(event{N: 2}) }, "ee"},
		{func() error { clk.Advance(5 * time.Second); return w.Append(event{N: 3}) }, "eeeC"},
		{func() error { return w.Checkpoint() }, "eeeC"}, // nothing unsigned
		{func() error { return w.Append(event{N: 4}) }, "eeeCe"},
		{func() error { return w.Checkpoint() }, "eeeCeC"},
		{func() error { clk.Advance(time.Hour); return w.Checkpoint() }, "eeeCeC"},
		{func() error { return w.Append(event{N: 5}) }, "eeeCeCeC"}, // an hour since the last
		{func() error { return w.Close() }, "eeeCeCeC"},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := kinds(); got != s.want {
			t.Fatalf("after step %d: lines %s, want %s", i, got, s.want)
		}
	}
	if rep, err := verifyFile(t, path, key.Public()); err != nil || rep.Checkpoints != 3 || rep.UnsignedTail != 0 {
		t.Errorf("report %+v, err %v", rep, err)
	}
}

func TestWriterEvery(t *testing.T) {
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, key, Options{Interval: -1, Sync: SyncEach})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		if err := w.Append(event{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	// 100 (default Every), 200, and Close's after the last 50.
	if rep.Entries != 250 || rep.Checkpoints != 3 || rep.LastSeq != 253 {
		t.Errorf("report %+v: want 250 entries, 3 checkpoints", *rep)
	}
}

// TestWriterEmptyLog: a log closed without an entry still gets a
// checkpoint, so that it verifies and an emptied file does not.
func TestWriterEmptyLog(t *testing.T) {
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public())
	if err != nil || rep.Checkpoints != 1 || rep.Entries != 0 {
		t.Errorf("report %+v, err %v: want one checkpoint", rep, err)
	}
}

func TestWriterClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, newKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Append": w.Append(event{}), "Checkpoint": w.Checkpoint(), "Close": w.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
}

func TestResume(t *testing.T) {
	key := newKey(t)
	path := fixture(t, key)
	w, err := Open(path, key, Options{Every: 3, Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if r := w.Resumed(); r.Entries != 7 || r.LastSeq != 10 || r.UnsignedTail != 0 {
		t.Errorf("Resumed %+v: want 7 entries up to seq 10", r)
	}
	for i := 8; i <= 9; i++ {
		if err := w.Append(event{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	// e8 e9 and Close's checkpoint after seq 10.
	if rep.Entries != 9 || rep.LastSeq != 13 || rep.Checkpoints != 4 {
		t.Errorf("report %+v: want 9 entries, 4 checkpoints, last seq 13", *rep)
	}
	if cp := mustParse(t, readLines(t, path)[12]).cp; cp == nil || cp.count != 9 {
		t.Errorf("the last line is not a checkpoint of 9 entries")
	}
}

// TestResumeUnsignedTail: after a crash the entries after the last
// checkpoint are resumed, reported, and signed by the next checkpoint.
func TestResumeUnsignedTail(t *testing.T) {
	key := newKey(t)
	path := fixture(t, key)
	writeLines(t, path, readLines(t, path)[:6]) // cp at seq 4, e4, e5
	w, err := Open(path, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := w.Resumed(); r.UnsignedTail != 2 || r.LastCheckpointSeq != 4 {
		t.Errorf("Resumed %+v: want 2 unsigned entries after seq 4", r)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public())
	if err != nil || rep.UnsignedTail != 0 || rep.LastCheckpointSeq != 7 || rep.Entries != 5 {
		t.Errorf("report %+v, err %v: want the tail signed at seq 7", rep, err)
	}
}

// TestResumeRefuses: a broken log is not extended, and not changed.
func TestResumeRefuses(t *testing.T) {
	key, other := newKey(t), newKey(t)
	tests := []struct {
		name   string
		tamper func(l [][]byte) [][]byte
		opts   Options
		want   []error
	}{
		{"edited", func(l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"alpha"`), []byte(`"alphb"`), 1)
			return l
		}, Options{}, []error{ErrTampered, ErrChanged}},
		{"entry removed", func(l [][]byte) [][]byte { return append(l[:4:4], l[5:]...) }, Options{}, []error{ErrTampered, ErrMissing}},
		{"cut mid-line", func(l [][]byte) [][]byte { l[9] = l[9][:20]; return l }, Options{}, []error{ErrTampered, ErrMalformed}},
		{"signed by another key", func(l [][]byte) [][]byte { l[3] = resign(t, l[3], other); return l }, Options{}, []error{ErrTampered, ErrForged}},
		{"larger than MaxResume", func(l [][]byte) [][]byte { return l }, Options{MaxResume: 100}, []error{ErrTooLarge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fixture(t, key)
			writeLines(t, path, tt.tamper(readLines(t, path)))
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			w, err := Open(path, key, tt.opts)
			if err == nil {
				w.Close()
				t.Fatal("Open resumed a log it must refuse")
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("the refused log was changed")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	key := newKey(t)
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "a.log"), nil, Options{}); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("no signer: err = %v, want ErrUnsupportedKey", err)
	}
	if _, err := Open(dir, key, Options{}); err == nil {
		t.Error("a folder was opened as a log")
	}
	if _, err := Open(filepath.Join(dir, "missing", "a.log"), key, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: err = %v, want ErrNotExist", err)
	}
}

func TestOpenLocks(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no flock")
	}
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, key, Options{}); !errors.Is(err, ErrInUse) {
		t.Errorf("second Open: err = %v, want ErrInUse", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = Open(path, key, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	w.Close()
}

// TestWriterConcurrent: Appends and Checkpoints from many goroutines make
// one valid chain with every event in it once. Run with -race.
func TestWriterConcurrent(t *testing.T) {
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, key, Options{Every: 7})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				if err := w.Append(event{N: g*each + i, Model: fmt.Sprint("m", g)}); err != nil {
					t.Error(err)
					return
				}
				if i%25 == 0 {
					if err := w.Checkpoint(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != workers*each || rep.UnsignedTail != 0 {
		t.Errorf("report %+v: want %d entries, all signed", *rep, workers*each)
	}
	seen := make(map[int]bool)
	for _, l := range readLines(t, path) {
		if r := mustParse(t, l); r.cp == nil {
			var e event
			if err := json.Unmarshal(r.event, &e); err != nil || seen[e.N] {
				t.Fatalf("event %s read twice or not at all", r.event)
			}
			seen[e.N] = true
		}
	}
}

// TestNoHeavyImports: the gateway links this package; it may import only
// the standard library.
func TestNoHeavyImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/trustgate/trustgate/audit" {
			t.Errorf("audit imports %s", p)
		}
	}
}
