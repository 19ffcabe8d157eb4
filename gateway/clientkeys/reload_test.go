package clientkeys

import (
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/testutil"
)

// lookNow makes the next Check look at the file.
func lookNow(r *Reloader) { r.next.Store(0) }

// lookNever keeps Check from looking at the file.
func lookNever(r *Reloader) { r.next.Store(math.MaxInt64) }

func newReloader(t *testing.T, path string) (*Reloader, *testutil.SyncBuffer) {
	t.Helper()
	var logs testutil.SyncBuffer
	r, err := NewReloader(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("NewReloader: %v", err)
	}
	return r, &logs
}

func TestReloaderPicksUpChangesAndKeepsTheLastGoodSet(t *testing.T) {
	path, good, k1 := validFile(t)
	r, logs := newReloader(t, path)
	if r.interval != time.Second {
		t.Fatalf("interval %v, want 1s", r.interval)
	}
	if _, ok := r.Check(k1); !ok {
		t.Fatal("the first key is refused")
	}

	// A new key is seen only once it is time to look again.
	lookNever(r)
	k2, id2 := mustAdd(t, path, "second")
	if _, ok := r.Check(k2); ok {
		t.Fatal("looked at the file before the interval was over")
	}
	lookNow(r)
	if id, ok := r.Check(k2); !ok || id != id2 {
		t.Fatalf("new key after a change: Check = %q, %v", id, ok)
	}
	good2, _ := os.ReadFile(path)

	// A broken file keeps the previous keys in use and is reported once.
	if err := atomicfile.Write(path, []byte(`{"version":1,"keys":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		lookNow(r)
		if _, ok := r.Check(k2); !ok {
			t.Fatal("a broken file dropped the previous keys")
		}
	}
	if !errors.Is(r.Err(), ErrMalformedFile) {
		t.Errorf("Err = %v, want ErrMalformedFile", r.Err())
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d error lines for one broken file, want 1:\n%s", n, logs)
	}
	if err := r.Reload(); !errors.Is(err, ErrMalformedFile) {
		t.Errorf("Reload = %v, want ErrMalformedFile", err)
	}

	// So do a file others may write, and a removed file.
	if err := atomicfile.Write(path, good2, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	lookNow(r)
	if _, ok := r.Check(k2); !ok || !errors.Is(r.Err(), ErrUnsafeFile) {
		t.Fatalf("writable by others: ok %v, Err %v", ok, r.Err())
	}
	if err := os.Chmod(path, 0o600); err != nil { // a chmod alone is a change
		t.Fatal(err)
	}
	lookNow(r)
	if _, ok := r.Check(k2); !ok || r.Err() != nil {
		t.Fatalf("after chmod back: ok %v, Err %v", ok, r.Err())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	lookNow(r)
	if _, ok := r.Check(k1); !ok || !errors.Is(r.Err(), fs.ErrNotExist) {
		t.Fatalf("removed file: ok %v, Err %v", ok, r.Err())
	}

	// The file back with a revocation: it applies.
	if err := atomicfile.Write(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Revoke(path, k1[len(Prefix):len(Prefix)+idLen]); err != nil {
		t.Fatal(err)
	}
	lookNow(r)
	if _, ok := r.Check(k1); ok {
		t.Fatal("a revoked key is accepted after the reload")
	}
	if _, ok := r.Check(k2); ok {
		t.Fatal("a key no longer in the file is accepted")
	}
	if r.Err() != nil || r.Set().Len() != 1 {
		t.Errorf("Err %v, Len %d", r.Err(), r.Set().Len())
	}
	for _, k := range []string{k1, k2} {
		if strings.Contains(logs.String(), k[len(Prefix)+idLen:]) {
			t.Fatal("a key is in the log")
		}
	}
}

func TestReloaderDoesNotReloadAnUnchangedFile(t *testing.T) {
	path, _, key := validFile(t)
	r, logs := newReloader(t, path)
	before := r.Set()
	for range 3 {
		lookNow(r)
		r.Check(key)
	}
	if r.Set() != before || logs.String() != "" {
		t.Errorf("reloaded an unchanged file:\n%s", logs)
	}
}

func TestNewReloaderRefusesABadFile(t *testing.T) {
	if _, err := NewReloader(keyFile(t), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	path := keyFile(t)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReloader(path, nil); !errors.Is(err, ErrMalformedFile) {
		t.Errorf("empty file: %v", err)
	}
}

// TestConcurrentCheck is for -race: checks from many goroutines while the
// file changes and is reloaded.
func TestConcurrentCheck(t *testing.T) {
	path, _, key := validFile(t)
	r, _ := newReloader(t, path)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed sync.Once
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				lookNow(r)
				if _, ok := r.Check(key); !ok {
					failed.Do(func() { t.Error("a valid key was refused during reloads") })
				}
				if _, ok := r.Check(key[:len(key)-1] + "x"); ok {
					failed.Do(func() { t.Error("a wrong key was accepted during reloads") })
				}
			}
		})
	}
	for i := range 20 {
		if _, _, err := Add(path, "k"); err != nil {
			t.Error(err)
		}
		if i%5 == 0 {
			if err := r.Reload(); err != nil {
				t.Error(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if r.Set().Len() < 2 {
		t.Errorf("Len %d: no reload happened", r.Set().Len())
	}
}

// TestConcurrentAdd: writers in parallel lose no key (the file's lock).
func TestConcurrentAdd(t *testing.T) {
	path := keyFile(t)
	var wg sync.WaitGroup
	keys := make([]string, 8)
	for i := range keys {
		wg.Go(func() {
			k, _, err := Add(path, "k")
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	s := mustLoad(t, path)
	for _, k := range keys {
		if _, ok := s.Check(k); !ok {
			t.Error("a key added in parallel is missing")
		}
	}
}
