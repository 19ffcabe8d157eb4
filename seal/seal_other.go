//go:build !linux

package seal

import (
	"context"
	"os"
)

// Copy returns ErrUnsupported: sealed memory files are Linux only.
func Copy(ctx context.Context, root *os.Root, name string, maxBytes int64) (*File, error) {
	return nil, ErrUnsupported
}

// CopyFile returns ErrUnsupported: sealed memory files are Linux only.
func CopyFile(ctx context.Context, f *os.File, name string, maxBytes int64) (*File, error) {
	return nil, ErrUnsupported
}

func seals(*os.File) (int, error) { return 0, ErrUnsupported }
