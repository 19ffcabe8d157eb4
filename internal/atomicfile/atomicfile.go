// Package atomicfile writes files so that a reader never sees half of one
// and a failure leaves the old file as it was, and locks files that several
// processes update.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Write writes data to path through a temporary file in the same folder,
// synced, then renamed into place.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Rename)
}

// WriteNew is Write for a file that must not exist yet: the temporary file
// is linked into place, which never replaces anything, even a file that
// appeared after the caller looked.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Link)
}

func write(path string, data []byte, perm os.FileMode, place func(oldpath, newpath string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := place(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("writing %q: it exists (and is left as it was)", path)
		}
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// ErrLocked means another process held the lock for longer than Lock
// waits.
var ErrLocked = errors.New("locked by another process")

// Lock takes an exclusive lock on path (created, with its folder, if need
// be; never through a symbolic link), waiting at most wait for other
// holders, and returns its release. A holder that never lets go makes Lock
// fail with ErrLocked, not hang.
func Lock(path string, wait time.Duration) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	return flock(f, syscall.LOCK_EX, wait)
}

// RLock takes a shared lock on path, which must exist (a folder that is
// only read needs no write access), waiting at most wait for an exclusive
// holder, and returns its release.
func RLock(path string, wait time.Duration) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	return flock(f, syscall.LOCK_SH, wait)
}

func flock(f *os.File, how int, wait time.Duration) (func(), error) {
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				err = ErrLocked
			}
			return nil, fmt.Errorf("%q: %w", f.Name(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
