package cli_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra/doc"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/testutil"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/cli from the commands")

// TestCLIDocs: docs/cli is the command reference cobra generates from the
// commands themselves, so that it cannot go stale: a changed flag, command
// or help text fails here until `go test ./cmd/trustgate/internal/cli -run
// TestCLIDocs -update-docs` rewrites it.
func TestCLIDocs(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "docs", "cli")
	gen := t.TempDir()
	root := cli.NewRootCmd()
	root.DisableAutoGenTag = true
	if err := doc.GenMarkdownTree(root, gen); err != nil {
		t.Fatal(err)
	}
	want := readDir(t, gen)
	if *updateDocs {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range want {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	have := readDir(t, dir)
	for name, data := range want {
		if got, ok := have[name]; !ok {
			t.Errorf("docs/cli/%s is missing", name)
		} else if !bytes.Equal(got, data) {
			t.Errorf("docs/cli/%s differs from the command", name)
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/cli/%s documents no command", name)
		}
	}
	if t.Failed() {
		t.Log("rewrite with: go test ./cmd/trustgate/internal/cli -run TestCLIDocs -update-docs")
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}
