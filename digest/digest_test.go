package digest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/trustgate/trustgate/digest"
)

const emptySHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestParse(t *testing.T) {
	good := []string{
		emptySHA256,
		"sha512:" + strings.Repeat("ab", 64),
		"h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	}
	for _, s := range good {
		d, err := digest.Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if d.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, d.String())
		}
	}
	bad := []string{
		"",
		"sha256",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha256:",
		"sha256:" + strings.Repeat("a", 63),
		"sha256:" + strings.Repeat("a", 65),
		"sha256:" + strings.ToUpper(emptySHA256[7:]),
		"sha256:" + strings.Repeat("g", 64),
		"sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"h1:not-base64!",
		"h1:AAAA",
	}
	for _, s := range bad {
		if _, err := digest.Parse(s); !errors.Is(err, digest.ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", s, err)
		}
	}
}

func TestJSONRunsTheParser(t *testing.T) {
	var v struct{ D digest.Digest }
	if err := json.Unmarshal([]byte(`{"D":"`+emptySHA256+`"}`), &v); err != nil || v.D.String() != emptySHA256 {
		t.Fatalf("unmarshal: %v %v", v.D, err)
	}
	if err := json.Unmarshal([]byte(`{"D":"sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709"}`), &v); !errors.Is(err, digest.ErrMalformed) {
		t.Errorf("sha1 digest unmarshaled: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"D":42}`), &v); !errors.Is(err, digest.ErrMalformed) {
		t.Errorf("number unmarshaled: %v", err)
	}
	out, _ := json.Marshal(v)
	if string(out) != `{"D":"`+emptySHA256+`"}` {
		t.Errorf("marshal = %s", out)
	}
}

func TestVerify(t *testing.T) {
	a := digest.FromBytes([]byte("a"))
	b := digest.FromBytes([]byte("b"))
	if err := a.Verify(a); err != nil {
		t.Errorf("a.Verify(a) = %v", err)
	}
	err := b.Verify(a)
	var me *digest.MismatchError
	if !errors.Is(err, digest.ErrMismatch) || !errors.As(err, &me) || me.Expected != a || me.Actual != b {
		t.Fatalf("b.Verify(a) = %v, want a MismatchError expecting a", err)
	}
	if !strings.Contains(err.Error(), a.String()) || !strings.Contains(err.Error(), b.String()) {
		t.Errorf("message %q should name both digests", err)
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestTreeMatchesDirhash(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"plugin/__init__.py":                     "x = 1\n",
		"plugin/site-packages/a-1.0.dist-info/M": "Name: a\n",
		"plugin/z.txt":                           "",
	})
	if err := os.MkdirAll(filepath.Join(dir, "plugin", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := digest.Tree(openRoot(t, dir), "plugin")
	if err != nil {
		t.Fatal(err)
	}
	want, err := dirhash.HashDir(filepath.Join(dir, "plugin"), "", dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("Tree = %s, dirhash.HashDir = %s", got, want)
	}
}

func TestTreeChangesWithContentAndNames(t *testing.T) {
	base := map[string]string{"p/a.py": "a", "p/b.py": "b"}
	d0 := treeOf(t, base)
	for name, files := range map[string]map[string]string{
		"content": {"p/a.py": "A", "p/b.py": "b"},
		"rename":  {"p/c.py": "a", "p/b.py": "b"},
		"added":   {"p/a.py": "a", "p/b.py": "b", "p/c.py": ""},
		"moved":   {"p/x/a.py": "a", "p/b.py": "b"},
	} {
		if d := treeOf(t, files); d == d0 {
			t.Errorf("%s: tree digest did not change", name)
		}
	}
}

func treeOf(t *testing.T, files map[string]string) digest.Digest {
	t.Helper()
	d, err := digest.Tree(openRoot(t, writeTree(t, files)), "p")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTreeRefusesLinksOutAndOddFiles(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret": "host secret"})
	t.Run("file link out", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"p/a.py": "a"})
		if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "p", "s")); err != nil {
			t.Fatal(err)
		}
		if _, err := digest.Tree(openRoot(t, dir), "p"); err == nil {
			t.Fatal("a link out of the root was hashed")
		}
	})
	t.Run("dir link out", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"p/a.py": "a"})
		if err := os.Symlink(outside, filepath.Join(dir, "p", "d")); err != nil {
			t.Fatal(err)
		}
		if _, err := digest.Tree(openRoot(t, dir), "p"); err == nil {
			t.Fatal("a directory link out of the root was hashed")
		}
	})
	t.Run("link inside", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"p/a.py": "a", "p/shared.py": "s"})
		if err := os.Symlink("shared.py", filepath.Join(dir, "p", "s.py")); err != nil {
			t.Fatal(err)
		}
		if _, err := digest.Tree(openRoot(t, dir), "p"); err != nil {
			t.Fatalf("a link that stays inside the directory: %v", err)
		}
	})
	t.Run("link out of the directory but inside the root", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"p/a.py": "a", "other/s.py": "s"})
		if err := os.Symlink("../other/s.py", filepath.Join(dir, "p", "s.py")); err != nil {
			t.Fatal(err)
		}
		if _, err := digest.Tree(openRoot(t, dir), "p"); err == nil {
			t.Fatal("a link out of the hashed directory was followed")
		}
	})
	t.Run("fifo", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"p/a.py": "a"})
		if err := syscall.Mkfifo(filepath.Join(dir, "p", "fifo"), 0o644); err != nil {
			t.Skip("no FIFOs here:", err)
		}
		if _, err := digest.Tree(openRoot(t, dir), "p"); !errors.Is(err, digest.ErrUnsupportedFile) {
			t.Fatalf("err = %v, want ErrUnsupportedFile", err)
		}
		// File must refuse it at once rather than block on the open.
		if _, err := digest.File(openRoot(t, dir), "p/fifo"); !errors.Is(err, digest.ErrUnsupportedFile) {
			t.Fatalf("File on a FIFO: %v, want ErrUnsupportedFile", err)
		}
	})
	t.Run("socket", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"p/a.py": "a"})
		l, err := net.Listen("unix", filepath.Join(dir, "p", "sock"))
		if err != nil {
			t.Skip("no unix sockets here:", err)
		}
		defer l.Close()
		if _, err := digest.Tree(openRoot(t, dir), "p"); !errors.Is(err, digest.ErrUnsupportedFile) {
			t.Fatalf("err = %v, want ErrUnsupportedFile", err)
		}
	})
}

func TestFile(t *testing.T) {
	dir := writeTree(t, map[string]string{"empty": "", "sub/x": "x"})
	root := openRoot(t, dir)
	fd, err := digest.File(root, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if fd.SHA256.String() != emptySHA256 || fd.Size != 0 {
		t.Errorf("empty file: %+v", fd)
	}
	if !strings.HasPrefix(fd.SHA512.String(), "sha512:cf83e1357eefb8bd") {
		t.Errorf("empty SHA-512 = %s", fd.SHA512)
	}
	if _, err := digest.File(root, "sub"); !errors.Is(err, digest.ErrUnsupportedFile) {
		t.Errorf("a directory as a file: %v", err)
	}
	if _, err := digest.File(root, "../etc/passwd"); err == nil {
		t.Error("a path out of the root was hashed")
	}
}

func BenchmarkFile(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 16<<20)
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := digest.File(root, "f"); err != nil {
			b.Fatal(err)
		}
	}
}

// Tree is dirhash's h1, byte for byte, links included; a file reached by
// several links is read once, so that links cannot multiply the work.
func TestTreeIsDirhash(t *testing.T) {
	dir := writeTree(t, map[string]string{"p/a.py": "a", "p/sub/b.py": "bb", "p/shared.py": "shared"})
	for _, l := range []string{"s1.py", "s2.py", "sub/s3.py"} {
		target := "shared.py"
		if strings.HasPrefix(l, "sub/") {
			target = "../shared.py"
		}
		if err := os.Symlink(target, filepath.Join(dir, "p", l)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := digest.Tree(openRoot(t, dir), "p")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"a.py", "s1.py", "s2.py", "shared.py", "sub/b.py", "sub/s3.py"}
	want, err := dirhash.Hash1(files, func(name string) (io.ReadCloser, error) {
		return os.Open(filepath.Join(dir, "p", filepath.FromSlash(name)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Fatalf("Tree %s, dirhash %s", got, want)
	}
}
