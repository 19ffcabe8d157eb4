package testproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T, script string) *Proc {
	t.Helper()
	dir := t.TempDir()
	p, err := Start("sh", "/bin/sh", []string{"-c", script}, dir, filepath.Join(dir, "sh.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func TestStopKillsTheGroup(t *testing.T) {
	// The shell's child would sleep on after the shell is gone unless the
	// whole group is killed.
	p := start(t, `sleep 60 & echo "home=$HOME child=$!"; wait`)
	var child string
	for deadline := time.Now().Add(10 * time.Second); child == ""; time.Sleep(10 * time.Millisecond) {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("no child; log:\n%s", p.Tail(1<<10))
		}
		// The last line, once the shell has written it (the first is
		// the command, script and all).
		tail := p.Tail(1 << 10)
		if line := tail[strings.LastIndex(tail, " child=")+len(" child="):]; strings.HasSuffix(line, "\n") {
			if _, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
				child = strings.TrimSpace(line)
			}
		}
	}
	if tail := p.Tail(1 << 10); !strings.HasPrefix(tail, "### /bin/sh -c") || !strings.Contains(tail, "home="+filepath.Dir(p.LogPath)+" ") {
		t.Errorf("log:\n%s", tail)
	}
	p.Stop()
	if !p.Exited() {
		t.Fatal("still running after Stop")
	}
	// Gone, or a zombie nobody reaps (in a container without an init).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + child + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shell's child %s outlived Stop: %s", child, stat)
		}
	}
}

func TestWaitReady(t *testing.T) {
	p := start(t, `sleep 60`)
	n := 0
	err := p.WaitReady(context.Background(), 10*time.Second, func(context.Context) error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("WaitReady: %v after %d probes", err, n)
	}

	err = p.WaitReady(context.Background(), 300*time.Millisecond, func(context.Context) error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "not ready after 300ms (last error: never)") {
		t.Errorf("timeout: %v", err)
	}

	p = start(t, `echo "bind: address already in use"; exit 1`)
	err = p.WaitReady(context.Background(), 10*time.Second, func(context.Context) error { return errors.New("down") })
	if !errors.Is(err, ErrPortInUse) {
		t.Errorf("port taken: %v", err)
	}

	p = start(t, `echo broken; exit 3`)
	err = p.WaitReady(context.Background(), 10*time.Second, func(context.Context) error { return errors.New("down") })
	if err == nil || errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "broken") {
		t.Errorf("exit: %v", err)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int64]string{4: "...\n6789", 10: "0123456789", 64: "0123456789"} {
		if got := Tail(path, n); got != want {
			t.Errorf("Tail(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Tail(path+".none", 4); !strings.HasPrefix(got, "(no log: ") {
		t.Errorf("missing file: %q", got)
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 3 || ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("ports %v", ports)
	}
}
