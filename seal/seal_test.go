//go:build linux

package seal_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/seal"
)

func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func copyOf(t *testing.T, root *os.Root, name string) *seal.File {
	t.Helper()
	f, err := seal.Copy(t.Context(), root, name, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// selfsum is a program that prints the SHA-256 of its own executable.
const selfsum = `package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

func main() {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		panic(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		panic(err)
	}
	fmt.Printf("sha256:%x\n", h.Sum(nil))
}
`

// buildSelfsum builds selfsum into a new directory and returns that
// directory; the binary is "selfsum" in it.
func buildSelfsum(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the test program:", err)
	}
	src, out := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "go.mod"), "module selfsum\n\ngo 1.22\n", 0o644)
	write(t, filepath.Join(src, "main.go"), selfsum, 0o644)
	cmd := exec.Command(gobin, "build", "-o", filepath.Join(out, "selfsum"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func runCopy(t *testing.T, f *seal.File) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := &exec.Cmd{Path: f.Path(), Stdout: &stdout, Stderr: &stderr}
	if err := cmd.Run(); err != nil {
		t.Fatalf("running the copy: %v\n%s", err, stderr.Bytes())
	}
	return strings.TrimSpace(stdout.String())
}

// The child runs exactly the bytes that were hashed, even after the file on
// disk is replaced.
func TestChildRunsTheSealedBytes(t *testing.T) {
	dir := buildSelfsum(t)
	root := openRoot(t, dir)
	onDisk, err := digest.File(root, "selfsum")
	if err != nil {
		t.Fatal(err)
	}
	f := copyOf(t, root, "selfsum")
	if f.Digest() != onDisk.SHA256 || f.Size() != onDisk.Size {
		t.Fatalf("copy %s (%d bytes), file %s (%d bytes)", f.Digest(), f.Size(), onDisk.SHA256, onDisk.Size)
	}
	if f.Fd() < 3 || f.Path() != "/proc/self/fd/"+strconv.Itoa(int(f.Fd())) {
		t.Fatalf("Fd %d, Path %q", f.Fd(), f.Path())
	}
	if got := runCopy(t, f); got != f.Digest().String() {
		t.Fatalf("the child reports %s, the copy is %s", got, f.Digest())
	}

	t.Run("swap after the copy", func(t *testing.T) {
		// Rewrite the same inode in place, then replace the name.
		write(t, filepath.Join(dir, "selfsum"), "#!/bin/sh\necho swapped\n", 0o755)
		if now, err := digest.File(root, "selfsum"); err != nil || now.SHA256 == f.Digest() {
			t.Fatalf("the file on disk did not change: %v", err)
		}
		if err := os.Rename(filepath.Join(dir, "selfsum"), filepath.Join(dir, "gone")); err != nil {
			t.Fatal(err)
		}
		if got := runCopy(t, f); got != f.Digest().String() {
			t.Fatalf("after the swap the child reports %s, want %s", got, f.Digest())
		}
	})
}

// A script cannot run from a copy: its interpreter opens /proc/self/fd/N
// after exec closed that close-on-exec descriptor.
func TestScriptsDoNotRun(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh:", err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "run.sh"), "#!/bin/sh\necho ran\n", 0o755)
	f := copyOf(t, openRoot(t, dir), "run.sh")
	out, err := (&exec.Cmd{Path: f.Path()}).CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a script ran from a sealed copy: err %v, output %q", err, out)
	}
	if strings.Contains(string(out), "ran") {
		t.Fatalf("the script ran: %q", out)
	}
	t.Logf("as documented, a script fails: %v: %s", err, bytes.TrimSpace(out))
}

func TestSealsHold(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "plugin"), "original bytes", 0o644)
	f := copyOf(t, openRoot(t, dir), "plugin")
	fd := int(f.Fd())

	if want := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE; seal.Sealed != want {
		t.Fatalf("Sealed = %#x, want %#x", seal.Sealed, want)
	}
	s, err := f.Seals()
	if err != nil || s != seal.Sealed {
		t.Fatalf("Seals() = %#x, %v; want %#x", s, err, seal.Sealed)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o777 != 0o100 {
		t.Errorf("mode %o, want 0100 (execute only)", st.Mode&0o777)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("F_GETFD = %#x, %v; want close-on-exec", fl, err)
	}

	// Each attempt goes through the descriptor Copy wrote with (open for
	// writing), or through a new one, which root may open despite 0500.
	rw, err := os.OpenFile(f.Path(), os.O_RDWR, 0)
	if err != nil && !errors.Is(err, fs.ErrPermission) {
		t.Fatal(err)
	}
	if rw != nil {
		defer rw.Close()
		if _, err := rw.WriteAt([]byte("X"), 0); !errors.Is(err, syscall.EPERM) {
			t.Errorf("write through a new descriptor: %v, want EPERM", err)
		}
	}
	for name, try := range map[string]func() error{
		"write":     func() error { _, err := unix.Pwrite(fd, []byte("X"), 0); return err },
		"append":    func() error { _, err := unix.Pwrite(fd, []byte("X"), int64(len("original bytes"))); return err },
		"truncate":  func() error { return unix.Ftruncate(fd, 0) },
		"shrink":    func() error { return unix.Ftruncate(fd, 1) },
		"grow":      func() error { return unix.Ftruncate(fd, 1<<20) },
		"fallocate": func() error { return unix.Fallocate(fd, 0, 0, 1<<20) },
		"mmap shared writable": func() error {
			b, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err == nil {
				_ = unix.Munmap(b)
			}
			return err
		},
		"more seals": func() error { _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_EXEC); return err },
	} {
		if err := try(); !errors.Is(err, syscall.EPERM) {
			t.Errorf("%s: %v, want EPERM", name, err)
		}
	}
	got, err := os.ReadFile(f.Path())
	if err != nil || string(got) != "original bytes" {
		t.Fatalf("content now %q, %v", got, err)
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), strings.Repeat("x", 100), 0o644)
	root := openRoot(t, dir)
	before := openFDs(t)
	if _, err := seal.Copy(t.Context(), root, "f", 99); !errors.Is(err, seal.ErrTooLarge) {
		t.Fatalf("100 bytes, at most 99: %v, want ErrTooLarge", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
	if f := copyOf(t, root, "f"); f.Size() != 100 {
		t.Errorf("Size() = %d", f.Size())
	}
	f, err := seal.Copy(t.Context(), root, "f", 100)
	if err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
	f.Close()
}

// The limit is counted on the bytes read, not on what stat said: files in
// /proc/sys stat as empty and read as several bytes, like a file that grows
// while it is copied.
func TestTooLargeWhileStreaming(t *testing.T) {
	root, err := os.OpenRoot("/proc/sys/kernel/random")
	if err != nil {
		t.Skip("no /proc/sys:", err)
	}
	defer root.Close()
	if fi, err := root.Stat("boot_id"); err != nil || fi.Size() != 0 {
		t.Skip("boot_id does not stat as empty here:", err)
	}
	if _, err := seal.Copy(t.Context(), root, "boot_id", 8); !errors.Is(err, seal.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	f, err := seal.Copy(t.Context(), root, "boot_id", 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != int64(len("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\n")) {
		t.Errorf("Size() = %d, want the bytes read", f.Size())
	}
}

func TestRefusesAllButRegularFiles(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret"), "host secret", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root := openRoot(t, dir)
	for _, name := range []string{"d", "fifo", "sock"} {
		if _, err := copyWithin(t, root, name); !errors.Is(err, seal.ErrUnsupportedFile) {
			t.Errorf("%s: %v, want ErrUnsupportedFile", name, err)
		}
	}
	if _, err := copyWithin(t, openRoot(t, "/dev"), "null"); !errors.Is(err, seal.ErrUnsupportedFile) {
		t.Errorf("/dev/null: %v, want ErrUnsupportedFile", err)
	}
	for _, name := range []string{"out", "../" + filepath.Base(outside) + "/secret"} {
		var pe *fs.PathError
		if _, err := copyWithin(t, root, name); !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a *fs.PathError from the root", name, err)
		}
	}
}

// copyWithin runs Copy, failing the test if it blocks (as opening a FIFO
// for reading would).
func copyWithin(t *testing.T, root *os.Root, name string) (*seal.File, error) {
	t.Helper()
	type result struct {
		f   *seal.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := seal.Copy(t.Context(), root, name, 1<<20)
		done <- result{f, err}
	}()
	select {
	case r := <-done:
		if r.f != nil {
			r.f.Close()
		}
		return r.f, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Copy of %q blocked", name)
		return nil, nil
	}
}

func TestContextCanceled(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), strings.Repeat("x", 1<<20), 0o644)
	root := openRoot(t, dir)
	before := openFDs(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := seal.Copy(ctx, root, "f", 1<<30); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}

// CopyFile copies the whole file, whatever its offset, and leaves the
// offset alone.
func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), "0123456789", 0o644)
	src, err := os.Open(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Seek(4, 0); err != nil {
		t.Fatal(err)
	}
	f, err := seal.CopyFile(t.Context(), src, "f", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Digest() != digest.FromBytes([]byte("0123456789")) {
		t.Errorf("Digest() = %s", f.Digest())
	}
	if off, _ := src.Seek(0, 1); off != 4 {
		t.Errorf("offset %d after CopyFile, want 4", off)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := seal.CopyFile(t.Context(), d, "dir", 10); !errors.Is(err, seal.ErrUnsupportedFile) {
		t.Errorf("a directory: %v, want ErrUnsupportedFile", err)
	}
}

func TestZeroFileAndClose(t *testing.T) {
	var z seal.File
	if !z.Digest().IsZero() || z.Size() != 0 || z.Path() != "" || z.Fd() != ^uintptr(0) || z.Close() != nil {
		t.Errorf("zero File: %v %d %q %d", z.Digest(), z.Size(), z.Path(), z.Fd())
	}
	if _, err := z.Seals(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("zero File Seals: %v, want os.ErrClosed", err)
	}

	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), "x", 0o644)
	f, err := seal.Copy(t.Context(), openRoot(t, dir), "f", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Seals(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Seals after Close: %v, want os.ErrClosed", err)
	}
	if f.Fd() != ^uintptr(0) {
		t.Errorf("Fd after Close: %d", f.Fd())
	}
}

// Copies made and used at once, for the race detector.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), strings.Repeat("y", 3*256<<10+7), 0o644)
	root := openRoot(t, dir)
	want := digest.FromBytes([]byte(strings.Repeat("y", 3*256<<10+7)))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			f, err := seal.Copy(t.Context(), root, "f", 1<<20)
			if err != nil {
				t.Error(err)
				return
			}
			var inner sync.WaitGroup
			for range 4 {
				inner.Go(func() {
					if s, err := f.Seals(); err == nil && s != seal.Sealed {
						t.Errorf("Seals() = %#x", s)
					}
					_ = f.Close()
				})
			}
			if f.Digest() != want {
				t.Errorf("Digest() = %s, want %s", f.Digest(), want)
			}
			inner.Wait()
		})
	}
	wg.Wait()
}

// With standard input closed the kernel hands out descriptor 0 first; the
// copy must still land above 2, or a child's stdin would take its place.
func TestNeverOnStdio(t *testing.T) {
	if os.Getenv("SEAL_TEST_STDIN_CLOSED") == "1" {
		stdinClosed(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNeverOnStdio$", "-test.v")
	cmd.Env = append(os.Environ(), "SEAL_TEST_STDIN_CLOSED=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "copy on descriptor") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "descriptor") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

func stdinClosed(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), "content", 0o755)
	src, err := os.Open(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := syscall.Close(0); err != nil {
		t.Fatal(err)
	}
	probe, err := unix.MemfdCreate("probe", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(probe)
	if probe != 0 {
		t.Skipf("with stdin closed the kernel handed out %d, not 0", probe)
	}
	f, err := seal.CopyFile(t.Context(), src, "f", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Fd() < 3 || f.Path() != "/proc/self/fd/"+strconv.Itoa(int(f.Fd())) {
		t.Fatalf("Fd %d, Path %q", f.Fd(), f.Path())
	}
	if _, err := unix.FcntlInt(0, unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Fatalf("descriptor 0 after Copy: %v, want it closed again", err)
	}
	link, err := os.Readlink(f.Path())
	if err != nil || !strings.HasPrefix(link, "/memfd:") {
		t.Fatalf("%s -> %q, %v", f.Path(), link, err)
	}
	t.Logf("kernel handed out descriptor 0; copy on descriptor %d (%s)", f.Fd(), link)
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(es)
}
