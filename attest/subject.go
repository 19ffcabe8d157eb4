package attest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trustgate/trustgate/digest"
)

// FileSubject hashes the file or directory at path into a subject: a file by
// its SHA-256, a directory by its h1 tree digest (in-toto's "dirHash"). The
// subject's name is path, slash-separated and cleaned, or only its base name
// when path is absolute or climbs out with "..", so that no machine's folder
// layout ends up in a signed statement.
func FileSubject(path string) (Subject, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Subject{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
	}
	dir, base := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Subject{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
	}
	defer root.Close()
	s := Subject{Name: subjectName(path)}
	switch {
	case fi.Mode().IsRegular():
		d, err := digest.File(root, base)
		if err != nil {
			return Subject{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
		}
		s.Digest = map[string]string{"sha256": d.SHA256.Hex()}
	case fi.IsDir():
		d, err := digest.Tree(root, base)
		if err != nil {
			return Subject{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
		}
		s.Digest = map[string]string{"dirHash": d.Hex()}
	default:
		return Subject{}, fmt.Errorf("%w: %q is neither a regular file nor a directory", ErrInvalidSubject, path)
	}
	return s, nil
}

func subjectName(path string) string {
	clean := filepath.Clean(path)
	slash := filepath.ToSlash(clean)
	if filepath.IsAbs(clean) || slash == "." || slash == ".." || strings.HasPrefix(slash, "../") {
		if abs, err := filepath.Abs(clean); err == nil {
			clean = abs
		}
		return filepath.Base(clean)
	}
	return slash
}
