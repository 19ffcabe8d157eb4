package digest_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/trustgate/trustgate/digest"
)

// copyTo runs CopyTree of dir in root into a new directory and returns its
// path; the read-only copy is made removable again when the test ends.
func copyTo(t testing.TB, root *os.Root, dir string, maxBytes int64) (string, digest.Digest, error) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	t.Cleanup(func() { makeWritable(dst) })
	d, err := digest.CopyTree(root, dir, dst, maxBytes)
	return dst, d, err
}

func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
}

func mustNotExist(t *testing.T, dst string) {
	t.Helper()
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a failed copy %s: %v, want it gone", dst, err)
	}
}

// A tree, as the invariant test builds it.
type fixture struct {
	files map[string]string
	exec  []string    // files to make executable
	dirs  []string    // extra (empty) directories
	links [][2]string // name, target
}

func (fx fixture) build(t *testing.T) string {
	t.Helper()
	dir := writeTree(t, fx.files)
	for _, name := range fx.exec {
		if err := os.Chmod(filepath.Join(dir, filepath.FromSlash(name)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range fx.dirs {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range fx.links {
		if err := os.Symlink(l[1], filepath.Join(dir, filepath.FromSlash(l[0]))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// CopyTree's digest is Tree's digest of the original and of the copy.
func TestCopyTreeDigestIsTree(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 70_000) // over a few chunks
	for name, fx := range map[string]fixture{
		"one file":  {files: map[string]string{"p/a": "a"}},
		"empty dir": {files: map[string]string{"p/a": ""}, dirs: []string{"p/e", "p/f/g/h"}},
		"nested":    {files: map[string]string{"p/a/b/c/d.py": "d", "p/a/x": "x", "p/z": big}},
		"exec":      {files: map[string]string{"p/bin/run": "#!/bin/sh\n", "p/lib.so": "ELF"}, exec: []string{"p/bin/run"}},
		"links": {
			files: map[string]string{"p/shared.py": "shared", "p/sub/b.py": "b"},
			exec:  []string{"p/shared.py"},
			links: [][2]string{{"p/s1.py", "shared.py"}, {"p/sub/s2.py", "../shared.py"}},
		},
		"unicode":   {files: map[string]string{"p/日本/ファイル.txt": "こんにちは", "p/Ωmega": "ω", "p/e\u0301": "NFD", "p/\u00e9": "NFC"}},
		"only dirs": {files: map[string]string{"q": ""}, dirs: []string{"p/a/b"}},
	} {
		t.Run(name, func(t *testing.T) {
			root := openRoot(t, fx.build(t))
			want, err := digest.Tree(root, "p")
			if err != nil {
				t.Fatal(err)
			}
			dst, got, err := copyTo(t, root, "p", 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("CopyTree = %s, Tree(original) = %s", got, want)
			}
			again, err := digest.Tree(openRoot(t, dst), ".")
			if err != nil {
				t.Fatal(err)
			}
			if again != want {
				t.Errorf("Tree(copy) = %s, Tree(original) = %s", again, want)
			}
			checkCopyModes(t, root, "p", dst)
		})
	}
}

// checkCopyModes checks that dst mirrors dir's files and directories with
// the read-only modes CopyTree promises, and holds no link.
func checkCopyModes(t *testing.T, root *os.Root, dir, dst string) {
	t.Helper()
	src, err := root.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var srcNames, dstNames []string
	_ = fs.WalkDir(src.FS(), ".", func(name string, de fs.DirEntry, err error) error {
		srcNames = append(srcNames, name)
		return err
	})
	err = filepath.WalkDir(dst, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		dstNames = append(dstNames, filepath.ToSlash(rel))
		fi, err := de.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o400)
		switch {
		case de.IsDir():
			want = fs.ModeDir | 0o500
		case !de.Type().IsRegular():
			return fmt.Errorf("%s: %s in the copy", rel, fi.Mode())
		default:
			orig, err := src.Stat(filepath.ToSlash(rel)) // follows an in-tree link
			if err != nil {
				return err
			}
			if orig.Mode()&0o111 != 0 {
				want = 0o500
			}
		}
		if fi.Mode() != want {
			return fmt.Errorf("%s: mode %s, want %s", rel, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(srcNames) != fmt.Sprint(dstNames) {
		t.Errorf("copy holds %q, source %q", dstNames, srcNames)
	}
}

// Every refusal starts from a tree that copies and breaks one thing; none
// leaves anything at dst.
func TestCopyTreeRefuses(t *testing.T) {
	good := map[string]string{"p/a.py": "a", "p/sub/b.py": "b"}
	outside := writeTree(t, map[string]string{"secret": "host secret"})
	for name, tc := range map[string]struct {
		breakIt func(t *testing.T, dir string)
		max     int64
		want    error
	}{
		"fifo": {breakIt: func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "p", "sub", "fifo"), 0o644); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		}, want: digest.ErrUnsupportedFile},
		"link to a directory": {breakIt: func(t *testing.T, dir string) {
			symlink(t, "sub", filepath.Join(dir, "p", "d"))
		}, want: digest.ErrUnsupportedFile},
		"newline in a name": {breakIt: func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "p", "a\nb"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: digest.ErrUnsupportedFile},
		"one byte too many": {max: 1, want: digest.ErrTooLarge},
		"a link counts its bytes again": {breakIt: func(t *testing.T, dir string) {
			symlink(t, "../a.py", filepath.Join(dir, "p", "sub", "c.py"))
		}, max: 2, want: digest.ErrTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeTree(t, good)
			if tc.breakIt != nil {
				tc.breakIt(t, dir)
			}
			max := tc.max
			if max == 0 {
				max = 1 << 20
			}
			dst, _, err := copyTo(t, openRoot(t, dir), "p", max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			mustNotExist(t, dst)
		})
	}
	t.Run("file link out of the root", func(t *testing.T) {
		dir := writeTree(t, good)
		symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "p", "s"))
		dst, _, err := copyTo(t, openRoot(t, dir), "p", 1<<20)
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			t.Fatalf("err = %v, want a *fs.PathError from the root", err)
		}
		mustNotExist(t, dst)
	})
	t.Run("link out of the directory but inside the root", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"p/a.py": "a", "other/s.py": "s"})
		symlink(t, "../other/s.py", filepath.Join(dir, "p", "s.py"))
		dst, _, err := copyTo(t, openRoot(t, dir), "p", 1<<20)
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			t.Fatalf("err = %v, want a *fs.PathError from the root", err)
		}
		mustNotExist(t, dst)
	})
	t.Run("dst exists", func(t *testing.T) {
		root := openRoot(t, writeTree(t, good))
		dst := t.TempDir()
		marker := filepath.Join(dst, "keep")
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := digest.CopyTree(root, "p", dst, 1<<20); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("err = %v, want fs.ErrExist", err)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("a failed copy touched the existing directory: %v", err)
		}
	})
	t.Run("dst is a dangling link", func(t *testing.T) {
		root := openRoot(t, writeTree(t, good))
		dst := filepath.Join(t.TempDir(), "link")
		symlink(t, filepath.Join(t.TempDir(), "elsewhere"), dst)
		if _, err := digest.CopyTree(root, "p", dst, 1<<20); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("err = %v, want fs.ErrExist", err)
		}
	})
}

// The budget is counted on the bytes read, not on what stat said: files in
// /proc/sys stat as empty and read as several bytes, like a file that grows
// while it is copied.
func TestCopyTreeCountsStreamedBytes(t *testing.T) {
	root, err := os.OpenRoot("/proc/sys/kernel")
	if err != nil {
		t.Skip("no /proc/sys:", err)
	}
	defer root.Close()
	fi, err := root.Stat("random/boot_id")
	if err != nil || fi.Size() != 0 {
		t.Skip("random/boot_id does not stat as empty here:", err)
	}
	dst, _, err := copyTo(t, root, "random", 8)
	if !errors.Is(err, digest.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	mustNotExist(t, dst)
}

func TestCopyTreeTooManyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("creates MaxTreeFiles files")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "p")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	// Hard links make the files cheap (a file system allows some
	// thousands per file); each is a name the walker counts.
	const perFile = 50_000
	for i := 0; i <= digest.MaxTreeFiles; i++ {
		name := filepath.Join(p, fmt.Sprintf("f%d", i))
		first := filepath.Join(p, fmt.Sprintf("f%d", i-i%perFile))
		var err error
		if i%perFile == 0 {
			err = os.WriteFile(name, nil, 0o644)
		} else {
			err = os.Link(first, name)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	dst, _, err := copyTo(t, openRoot(t, dir), "p", 1<<20)
	if !errors.Is(err, digest.ErrTooManyFiles) {
		t.Fatalf("err = %v, want ErrTooManyFiles", err)
	}
	mustNotExist(t, dst)
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkCopyTree(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 64<<10)
	var total int64
	for i := range 64 {
		name := filepath.Join(dir, "p", fmt.Sprintf("d%d", i%8), fmt.Sprintf("f%d", i))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	out := b.TempDir()
	b.SetBytes(total)
	i := 0
	for b.Loop() {
		dst := filepath.Join(out, fmt.Sprint(i))
		i++
		if _, err := digest.CopyTree(root, "p", dst, total); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		makeWritable(dst)
		if err := os.RemoveAll(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
