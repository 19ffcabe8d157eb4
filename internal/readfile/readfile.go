// Package readfile opens and reads files trustgate is handed (manifests,
// policies, keys, bundles, predicates) the one careful way: only a regular
// file, opened without blocking so that a FIFO in its place is refused
// instead of hanging the reader, and never more than a limit.
package readfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Errors, matched with errors.Is.
var (
	// ErrNotRegular: the path is a folder, FIFO, socket or device.
	ErrNotRegular = errors.New("unsupported file type")
	// ErrTooLarge: the file is larger than the reader's limit.
	ErrTooLarge = errors.New("file too large")
)

// Open opens path for reading; it fails unless path is a regular file.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return regular(f, path)
}

// OpenIn is Open for name resolved inside root (neither ".." nor a link
// can lead out of it).
func OpenIn(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return regular(f, name)
}

func regular(f *os.File, name string) (*os.File, error) {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%q: %w: %s", name, ErrNotRegular, Kind(fi.Mode()))
	}
	return f, nil
}

// Kind names a file mode for messages: directory, file of mode p, ...
func Kind(m fs.FileMode) string {
	if m.IsDir() {
		return "directory"
	}
	if t := m.Type().String(); t != "" {
		return "file of mode " + t
	}
	return "file"
}

// Read reads the regular file at path, at most limit bytes.
func Read(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, path, limit)
}

// ReadIn is Read for name inside root.
func ReadIn(root *os.Root, name string, limit int64) ([]byte, error) {
	f, err := OpenIn(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, name, limit)
}

func readAll(f *os.File, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%q: %w: larger than %d bytes", name, ErrTooLarge, limit)
	}
	return data, nil
}
