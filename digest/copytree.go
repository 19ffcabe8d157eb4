package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// copyChunk is how much CopyTree reads and writes at a time.
const copyChunk = 256 << 10

// CopyTree copies the directory dir in root into dst, a new directory, and
// returns the h1 tree digest (see Tree) of the copy, computed from the bytes
// as they are written: each source file is read once, and the digest
// describes the copy even if the source changes meanwhile.
//
// The copy holds the files Tree would hash, and the directories below dir.
// A symbolic link inside dir is copied as a regular file with its target's
// content, so the copy holds no link; a file reached by several names is
// read once and copied under each name. Files are mode 0400, or 0500 when
// the source had any execute bit; directories, dst included, end 0500.
// dst must not exist; its parent is trusted (dst is created with os.Mkdir,
// everything below it through an os.Root).
//
// CopyTree refuses what Tree refuses (links out of dir, special files, more
// than MaxTreeFiles files), and more than maxBytes written in all, counted
// while streaming (ErrTooLarge). On any error after dst was created it
// removes dst. Callers must still compare the digest with the one they
// trust before using the copy.
func CopyTree(root *os.Root, dir, dst string, maxBytes int64) (Digest, error) {
	h1, err := copyTree(root, dir, dst, maxBytes)
	if err != nil {
		return Digest{}, fmt.Errorf("copying tree %q: %w", dir, err)
	}
	return h1, nil
}

func copyTree(root *os.Root, dir, dst string, maxBytes int64) (Digest, error) {
	sub, err := root.OpenRoot(dir)
	if err != nil {
		return Digest{}, err
	}
	defer sub.Close()
	files, dirs, err := treeFiles(sub)
	if err != nil {
		return Digest{}, err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return Digest{}, err
	}
	h1, err := fill(sub, dst, files, dirs, maxBytes)
	if err != nil {
		if rmErr := removeCopy(dst); rmErr != nil {
			return Digest{}, errors.Join(err, rmErr)
		}
		return Digest{}, err
	}
	return h1, nil
}

// fill copies files and dirs from src into the new, empty directory dst and
// makes the directories read-only.
func fill(src *os.Root, dst string, files, dirs []string, maxBytes int64) (Digest, error) {
	out, err := os.OpenRoot(dst)
	if err != nil {
		return Digest{}, err
	}
	defer out.Close()
	for _, d := range dirs {
		if err := out.Mkdir(d, 0o700); err != nil {
			return Digest{}, err
		}
	}
	c := &copier{out: out, left: maxBytes, max: maxBytes, buf: make([]byte, copyChunk)}
	h1, err := hash1(src, files, c.copyFile)
	if err != nil {
		return Digest{}, err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := out.Chmod(dirs[i], 0o500); err != nil {
			return Digest{}, err
		}
	}
	if err := out.Chmod(".", 0o500); err != nil {
		return Digest{}, err
	}
	return h1, nil
}

// copier writes the files of a tree below out, hashing them as written.
type copier struct {
	out       *os.Root
	left, max int64 // bytes still allowed, of max
	buf       []byte
}

// copyFile is CopyTree's summer: it copies f to name below out and returns
// the SHA-256 of what it wrote. A file already copied under another name is
// copied again from that copy, not read again from the source.
func (c *copier) copyFile(name string, f *os.File, fi fs.FileInfo, prev *summed) (string, error) {
	var src io.Reader = f
	if prev != nil {
		p, err := c.out.Open(prev.name)
		if err != nil {
			return "", err
		}
		defer p.Close()
		src = p
	}
	mode := fs.FileMode(0o400)
	if fi.Mode()&0o111 != 0 {
		mode = 0o500
	}
	w, err := c.out.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	sum, err := c.stream(name, w, src)
	if err == nil {
		err = w.Chmod(mode)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return sum, nil
}

// stream copies r to w within the byte budget and returns the SHA-256 (hex)
// of the bytes written.
func (c *copier) stream(name string, w io.Writer, r io.Reader) (string, error) {
	h := sha256.New()
	for {
		n := len(c.buf)
		if c.left < int64(n) {
			n = int(max(c.left, 0)) + 1 // one byte over the budget is enough to refuse
		}
		n, rerr := r.Read(c.buf[:n])
		if int64(n) > c.left {
			return "", fmt.Errorf("%q: %w: more than %d bytes in all", name, ErrTooLarge, c.max)
		}
		if n > 0 {
			if _, err := w.Write(c.buf[:n]); err != nil {
				return "", fmt.Errorf("writing %q: %w", name, err)
			}
			h.Write(c.buf[:n])
			c.left -= int64(n)
		}
		if rerr == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if rerr != nil {
			return "", fmt.Errorf("reading %q: %w", name, rerr)
		}
	}
}

// removeCopy removes a partial copy, making its directories writable first.
func removeCopy(dst string) error {
	_ = filepath.WalkDir(dst, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dst)
}
