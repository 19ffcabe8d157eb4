package example

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"

	trustgate "github.com/trustgate/trustgate"
)

// TestSourcesComplete: trustgate.Sources, from which the demo builds the
// example's Go programs outside a checkout, holds every file of every
// package of this module that they import (on Linux and macOS, whatever
// the build constraints), and no package they do not import.
func TestSourcesComplete(t *testing.T) {
	need := map[string][]string{} // folder in the module -> files the build may read
	for _, goos := range []string{"linux", "darwin"} {
		args := append([]string{"list", "-deps", "-json=Dir,ImportPath,Module,GoFiles,IgnoredGoFiles,CgoFiles,EmbedFiles,SFiles,HFiles,SysoFiles"},
			slices.Sorted(maps.Values(Programs))...)
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list (GOOS=%s): %v", goos, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var p struct {
				ImportPath string
				Module     *struct{ Path string }
				GoFiles, IgnoredGoFiles, CgoFiles, EmbedFiles,
				SFiles, HFiles, SysoFiles []string
			}
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.Module == nil || p.Module.Path != ModulePath {
				continue
			}
			dir := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, ModulePath), "/")
			for _, files := range [][]string{p.GoFiles, p.IgnoredGoFiles, p.CgoFiles, p.EmbedFiles, p.SFiles, p.HFiles, p.SysoFiles} {
				for _, f := range files {
					if !strings.HasSuffix(f, "_test.go") && !slices.Contains(need[dir], f) {
						need[dir] = append(need[dir], f)
					}
				}
			}
		}
	}
	if len(need) < 10 {
		t.Fatalf("go list found only %d of the module's packages: %v", len(need), slices.Sorted(maps.Keys(need)))
	}

	have := map[string]bool{} // folders with Go files in Sources
	err := fs.WalkDir(trustgate.Sources, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".go") {
			have[path.Dir(p)] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if _, err := fs.Stat(trustgate.Sources, f); err != nil {
			t.Errorf("trustgate.Sources lacks %s", f)
		}
	}
	for dir, files := range need {
		if !have[dir] {
			t.Errorf("trustgate.Sources lacks the package %s/%s: add %s/*.go to the go:embed lines of sources.go", ModulePath, dir, dir)
			continue
		}
		for _, f := range files {
			if _, err := fs.Stat(trustgate.Sources, path.Join(dir, f)); err != nil {
				t.Errorf("trustgate.Sources lacks %s/%s (add it to the go:embed lines of sources.go)", dir, f)
			}
		}
	}
	for dir := range have {
		if _, ok := need[dir]; !ok {
			t.Errorf("trustgate.Sources holds %s, which the example's programs do not import: take it out of sources.go", dir)
		}
	}
}

// TestWriteSources: the sources are written out as a module without their
// tests.
func TestWriteSources(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSources(dir); err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(dir + "/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(mod), "module "+ModulePath+"\n") {
		t.Errorf("go.mod starts %q", mod[:min(len(mod), 60)])
	}
	var tests []string
	if err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if strings.HasSuffix(p, "_test.go") {
			tests = append(tests, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(tests) > 0 {
		t.Errorf("test files written: %v", tests)
	}
	if _, err := os.Stat(dir + "/cmd/trustgate-gateway/main.go"); err != nil {
		t.Error(err)
	}
}
