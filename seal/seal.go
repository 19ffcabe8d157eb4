package seal

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/trustgate/trustgate/digest"
)

// Errors returned by this package. Callers match them with errors.Is.
var (
	// ErrUnsupported means this system cannot make a sealed executable
	// memory file: not Linux, a kernel without memfd_create, or
	// vm.memfd_noexec=2. It wraps errors.ErrUnsupported.
	ErrUnsupported = fmt.Errorf("sealed executable memory: %w", errors.ErrUnsupported)
	// ErrTooLarge means the file holds more bytes than the caller allowed.
	ErrTooLarge = digest.ErrTooLarge
	// ErrUnsupportedFile means the path is not a regular file (a directory,
	// FIFO, socket or device).
	ErrUnsupportedFile = digest.ErrUnsupportedFile
	// ErrNotSealed means the kernel did not report the seals Copy applied.
	ErrNotSealed = errors.New("memory file not sealed")
)

// Sealed is the set of seals every File carries, in the bits F_GET_SEALS
// reports: F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE.
const Sealed = 0x1 | 0x2 | 0x4 | 0x8

// File is a sealed, executable in-memory copy of a file, made by Copy or
// CopyFile. Its methods are safe for concurrent use, but a child must be
// started from Path before Close.
//
// The zero File holds nothing: Digest is the zero Digest, Size 0, Path "",
// Fd ^uintptr(0), Close returns nil and Seals fails with os.ErrClosed.
type File struct {
	f      *os.File
	path   string
	digest digest.Digest
	size   int64

	closeOnce sync.Once
	closeErr  error
}

// Digest is the SHA-256 of the bytes written into the copy: what the child
// runs. Callers must still compare it with the digest they trust.
func (x *File) Digest() digest.Digest { return x.digest }

// Size is the number of bytes in the copy.
func (x *File) Size() int64 { return x.size }

// Path is "/proc/self/fd/N", the name under which this process and the
// children it starts (exec.Cmd.Path) reach the copy while the File is open.
// It names nothing, or something else, once the File is closed, and nothing
// in another process.
func (x *File) Path() string { return x.path }

// Fd is the copy's descriptor (close-on-exec, never 0, 1 or 2), or
// ^uintptr(0) once closed. It stays owned by the File.
func (x *File) Fd() uintptr {
	if x.f == nil {
		return ^uintptr(0)
	}
	return x.f.Fd()
}

// Close releases the copy. Closing again does nothing and returns nil.
func (x *File) Close() error {
	x.closeOnce.Do(func() {
		if x.f != nil {
			x.closeErr = x.f.Close()
		}
	})
	return x.closeErr
}

// Seals asks the kernel for the copy's seals (F_GET_SEALS); they include
// Sealed.
func (x *File) Seals() (int, error) {
	if x.f == nil {
		return 0, os.ErrClosed
	}
	return seals(x.f)
}
