package gateway

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/trustgate/trustgate/digest"
)

// selfExe is the running executable; a variable so that nothing else can
// be named.
const selfExe = "/proc/self/exe"

// measureSelf hashes the running executable through /proc/self/exe, opened
// once: the bytes the kernel runs, wherever the file was found and whatever
// now lies at its path.
func measureSelf() (digest.Digest, error) {
	f, err := os.Open(selfExe)
	if err != nil {
		return digest.Digest{}, fmt.Errorf("opening own executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return digest.Digest{}, fmt.Errorf("hashing own executable: %w", err)
	}
	return digest.Parse(fmt.Sprintf("sha256:%x", h.Sum(nil)))
}

// Harden makes the process non-dumpable, so that no other process of the
// same user can read its memory or open its descriptors (the sealed copies
// before they are sealed) through /proc, and a child subreaper, so that
// what a plugin or agent leaves behind comes back to the gateway
// (Options.ReapOrphans) instead of outliving it. The binary calls it
// first.
func Harden() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// checkPrivateDir creates dir (0700) when it is missing and refuses one
// that is a link, not a folder, not the gateway's own, or open to others,
// or that lies under a folder someone else could rename it in (see
// safeParents).
func checkPrivateDir(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := safeParents(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%q is not a folder", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%q does not belong to the gateway's user", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%q is open to other users (mode %o); want 0700", dir, fi.Mode().Perm())
	}
	return nil
}

// safeParents checks dir and every folder above it: each must belong to
// root or to the gateway's user, and be writable by no one else unless it
// is sticky (as /tmp is), so that nobody else can move what is inside.
func safeParents(dir string) error {
	for {
		fi, err := os.Lstat(dir)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			real, err := filepath.EvalSymlinks(dir)
			if err != nil {
				return err
			}
			if err := safeParents(real); err != nil {
				return err
			}
		} else {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok || (st.Uid != 0 && int(st.Uid) != os.Geteuid()) {
				return fmt.Errorf("%q belongs to another user", dir)
			}
			if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
				return fmt.Errorf("%q may be written by other users (mode %o) and is not sticky", dir, fi.Mode().Perm())
			}
		}
		if dir == "/" || dir == "." {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

// maxSocketBase keeps the plugins' socket paths (base, a folder go-plugin
// makes, the socket's name) under the 107 bytes a Unix socket path may
// have.
const maxSocketBase = 48

// socketBase is the folder the plugins' socket folders go in: a folder of
// the run folder when its path is short enough, else a new private folder
// in /tmp (never TMPDIR: the environment is not signed), whose parents
// safeParents accepts.
func socketBase(runDir string) (string, error) {
	if len(runDir) < maxSocketBase-2 {
		dir := filepath.Join(runDir, "s")
		return dir, os.Mkdir(dir, 0o700)
	}
	if err := safeParents("/tmp"); err != nil {
		return "", fmt.Errorf("the run folder's path is too long for sockets, and /tmp is not safe: %w", err)
	}
	return os.MkdirTemp("/tmp", "tg-gateway-")
}

// environ maps an environment list by name; the first of a name counts.
func environ(list []string) map[string]string {
	if list == nil {
		list = os.Environ()
	}
	out := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, seen := out[k]; !seen {
			out[k] = v
		}
	}
	return out
}

// removeAll removes a tree the gateway made read-only.
func removeAll(dir string) {
	_ = chmodTree(dir)
	_ = os.RemoveAll(dir)
}

func chmodTree(dir string) error {
	return walkDirs(dir, func(p string) { _ = os.Chmod(p, 0o700) })
}

func walkDirs(dir string, f func(string)) error {
	f(dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			_ = walkDirs(dir+"/"+e.Name(), f)
		}
	}
	return nil
}
