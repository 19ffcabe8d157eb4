package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteNewNeverReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := WriteNew(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(p, []byte("two"), 0o600); err == nil {
		t.Fatal("replaced an existing file")
	}
	if err := Write(p, []byte("three"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Fatalf("content %q", b)
	}
}

// A holder that never lets go makes Lock fail, not hang; a link where the
// lock file should be is refused.
func TestLockDoesNotHang(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.lock")
	unlock, err := Lock(p, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(p, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("second holder: got %v, want ErrLocked", err)
	}
	unlock()
	again, err := Lock(p, time.Second)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
	link := filepath.Join(t.TempDir(), "link.lock")
	if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(link, time.Second); err == nil {
		t.Fatal("locked through a symbolic link")
	}
}
