package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// RepoRoot returns the folder holding trustgate's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// BadStack is one manifest of testdata/stacks/bad, laid out for a test.
type BadStack struct {
	Name string // file name without .yaml
	File string // the manifest, inside a copy of testdata/stacks/base
	// From the file's first line, "# want: KIND LINE FIELD":
	Kind  string // name of the expected sentinel error, such as "ErrPathEscape"
	Line  int    // expected line, 0 when the error has none
	Field string // expected field path, empty for the document
}

// BadStacks lays out every manifest of testdata/stacks/bad in its own copy
// of testdata/stacks/base, next to two symbolic links that lead out of it
// (link-out, a folder, and file-link-out, a file).
func BadStacks(t testing.TB) []BadStack {
	t.Helper()
	root := RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "testdata", "stacks", "bad", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad stacks: %v", err)
	}
	var out []BadStack
	for _, f := range files {
		c := BadStack{Name: strings.TrimSuffix(filepath.Base(f), ".yaml")}
		c.Kind, c.Line, c.Field = ReadWant(t, f)
		dir := StackDir(t)
		c.File = filepath.Join(dir, filepath.Base(f))
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.File, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// StackDir returns a fresh copy of testdata/stacks/base with the outward
// symbolic links in place, for manifests written by a test.
func StackDir(t testing.TB) string {
	t.Helper()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "stack")
	CopyDir(t, filepath.Join(RepoRoot(t), "testdata", "stacks", "base"), dir)
	outside := filepath.Join(tmp, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "plugin"), []byte("not yours"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"link-out": "../outside", "file-link-out": "../outside/plugin"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ReadWant reads a fixture's first line, "# want: KIND LINE [FIELD]": the
// name of the expected sentinel error, its line (0 for none) and its field.
func ReadWant(t testing.TB, file string) (kind string, line int, field string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	parts := strings.Fields(strings.TrimPrefix(sc.Text(), "# want:"))
	if !strings.HasPrefix(sc.Text(), "# want:") || len(parts) < 2 {
		t.Fatalf("%s: first line must be '# want: KIND LINE [FIELD]'", file)
	}
	line, err = strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("%s: bad line in want header", file)
	}
	if len(parts) > 2 {
		field = parts[2]
	}
	return parts[0], line, field
}
