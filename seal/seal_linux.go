package seal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/readfile"
)

const (
	// chunk is how much Copy reads and writes at a time; ctx is checked
	// between chunks.
	chunk = 256 << 10
	// memfdName shows in /proc/PID/fd and /proc/PID/exe as "/memfd:<name>".
	memfdName = "trustgate-sealed"
	// sealed is Sealed in x/sys/unix terms.
	sealed = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
)

// Copy copies the regular file name in root into a sealed, executable memory
// file, hashing the bytes as they are written. name is resolved inside root
// (neither ".." nor a link can lead out of it) and must be a regular file:
// a directory, FIFO, socket or device is refused without blocking
// (ErrUnsupportedFile). More than maxBytes is refused while streaming
// (ErrTooLarge), so a file that grows during the copy is caught too. ctx is
// checked between chunks.
//
// The caller owns the File and must Close it, and must still compare
// File.Digest with the digest it trusts before running the copy.
func Copy(ctx context.Context, root *os.Root, name string, maxBytes int64) (*File, error) {
	src, err := readfile.OpenIn(root, name)
	if errors.Is(err, unix.ENXIO) {
		// Opening a socket (or a device without a driver) fails so.
		err = fmt.Errorf("%w: %w", ErrUnsupportedFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sealing %q: %w", name, err)
	}
	defer src.Close()
	return CopyFile(ctx, src, name, maxBytes)
}

// CopyFile is Copy for an already open file; name is for messages. It reads
// f from offset 0 with ReadAt, leaving f's offset alone, and does not close
// f.
func CopyFile(ctx context.Context, f *os.File, name string, maxBytes int64) (*File, error) {
	x, err := copyFile(ctx, f, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("sealing %q: %w", name, err)
	}
	return x, nil
}

func copyFile(ctx context.Context, src *os.File, maxBytes int64) (*File, error) {
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedFile, readfile.Kind(fi.Mode()))
	}
	if fi.Size() > maxBytes {
		return nil, tooLarge(maxBytes)
	}
	fd, err := memfd()
	if err != nil {
		return nil, err
	}
	mem := os.NewFile(uintptr(fd), "/memfd:"+memfdName)
	x, err := fill(ctx, mem, src, maxBytes)
	if err != nil {
		mem.Close()
		return nil, err
	}
	x.f, x.path = mem, "/proc/self/fd/"+strconv.Itoa(fd)
	return x, nil
}

// fill makes mem executable, copies src into it, seals it and checks the
// seals.
func fill(ctx context.Context, mem, src *os.File, maxBytes int64) (*File, error) {
	// 0500 at once: from here on, opening the copy again through
	// /proc/PID/fd for writing needs privilege.
	if err := mem.Chmod(0o500); err != nil {
		return nil, err
	}
	sum, n, err := stream(ctx, mem, src, maxBytes)
	if err != nil {
		return nil, err
	}
	if err := seal(mem); err != nil {
		return nil, err
	}
	// Execute-only from now on: the kernel makes a process that runs an
	// executable it may not read non-dumpable, so that other processes of
	// the same user cannot read its environment or memory through /proc
	// (root reads anyway).
	if err := mem.Chmod(0o100); err != nil {
		return nil, err
	}
	d, err := digest.Parse("sha256:" + hex.EncodeToString(sum))
	if err != nil {
		return nil, err
	}
	return &File{digest: d, size: n}, nil
}

// stream copies src from offset 0 into w within maxBytes and returns the
// SHA-256 of the bytes written, and their count.
func stream(ctx context.Context, w *os.File, src *os.File, maxBytes int64) ([]byte, int64, error) {
	h := sha256.New()
	buf := make([]byte, chunk)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		n := len(buf)
		if left := maxBytes - off; left < int64(n) {
			n = int(max(left, 0)) + 1 // one byte over the limit is enough to refuse
		}
		n, rerr := src.ReadAt(buf[:n], off)
		if int64(n) > maxBytes-off {
			return nil, 0, tooLarge(maxBytes)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return nil, 0, fmt.Errorf("writing the memory file: %w", err)
		}
		h.Write(buf[:n])
		off += int64(n)
		if errors.Is(rerr, io.EOF) {
			return h.Sum(nil), off, nil
		}
		if rerr != nil {
			return nil, 0, fmt.Errorf("reading: %w", rerr)
		}
	}
}

func tooLarge(maxBytes int64) error {
	return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
}

// memfd creates an empty, sealable, close-on-exec memory file that may be
// executed, on a descriptor above 2.
func memfd() (int, error) {
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	// Since Linux 6.3 MFD_EXEC asks for an executable memfd explicitly
	// (vm.memfd_noexec=1 makes them noexec otherwise); older kernels reject
	// the unknown flag with EINVAL.
	fd, err := unix.MemfdCreate(memfdName, flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(memfdName, flags)
	}
	switch {
	case errors.Is(err, unix.ENOSYS):
		return -1, fmt.Errorf("%w: %w", ErrUnsupported, os.NewSyscallError("memfd_create", err))
	case errors.Is(err, unix.EACCES):
		return -1, fmt.Errorf("%w: executable memfd refused (vm.memfd_noexec=2?): %w",
			ErrUnsupported, os.NewSyscallError("memfd_create", err))
	case err != nil:
		return -1, os.NewSyscallError("memfd_create", err)
	}
	return aboveStdio(fd)
}

// aboveStdio moves fd above 2 when the kernel handed out 0, 1 or 2 (this
// process runs with one of them closed). A child's standard streams are
// placed on 0, 1 and 2 before exec, so there /proc/self/fd/0 would name the
// child's stdin, not the copy.
func aboveStdio(fd int) (int, error) {
	if fd > 2 {
		return fd, nil
	}
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	unix.Close(fd)
	if err != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	}
	return nfd, nil
}

// seal applies Sealed to mem and checks that the kernel reports it.
func seal(mem *os.File) error {
	err := control(mem, func(fd uintptr) error {
		_, err := unix.FcntlInt(fd, unix.F_ADD_SEALS, sealed)
		return os.NewSyscallError("fcntl F_ADD_SEALS", err)
	})
	if err != nil {
		return err
	}
	got, err := seals(mem)
	if err != nil {
		return err
	}
	if got&sealed != sealed {
		return fmt.Errorf("%w: seals %#x, want %#x", ErrNotSealed, got, sealed)
	}
	return nil
}

func seals(f *os.File) (int, error) {
	var s int
	err := control(f, func(fd uintptr) error {
		var err error
		s, err = unix.FcntlInt(fd, unix.F_GET_SEALS, 0)
		return os.NewSyscallError("fcntl F_GET_SEALS", err)
	})
	return s, err
}

// control runs fn on f's descriptor, which f keeps open meanwhile.
func control(f *os.File, fn func(fd uintptr) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(fd) }); err != nil {
		return os.ErrClosed // Control fails only once f is closed
	}
	return ferr
}
