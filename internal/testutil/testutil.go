// Package testutil holds helpers shared by trustgate's tests.
package testutil

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/trustgate/trustgate/internal/example"
)

// JSONSchema compiles the schema with id rootID from the JSON schema files
// in dir (each registered under its own $id), offline, with format
// assertions on.
func JSONSchema(t testing.TB, dir, rootID string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema files in %s: %v", dir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			t.Fatalf("%s has no $id", f)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	s, err := c.Compile(rootID)
	if err != nil {
		t.Fatalf("compiling %s: %v", rootID, err)
	}
	return s
}

// ValidateJSON validates a JSON document against s.
func ValidateJSON(s *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

var (
	exampleOnce sync.Once
	exampleDir  string
	exampleErr  error
)

// Example builds the example deployment once per test binary and returns
// the path of its stack manifest. The folder is shared: tests must not
// change it (copy it with CopyDir first).
func Example(t testing.TB) string {
	t.Helper()
	exampleOnce.Do(func() {
		exampleDir, exampleErr = os.MkdirTemp("", "trustgate-example-")
		if exampleErr == nil {
			_, exampleErr = example.Build(context.Background(), exampleDir)
		}
	})
	if exampleErr != nil {
		t.Fatalf("building the example deployment: %v", exampleErr)
	}
	return filepath.Join(exampleDir, "stack.yaml")
}

// Main runs a package's tests and then removes the shared example; use it
// as TestMain in packages that call Example.
func Main(m *testing.M) {
	code := m.Run()
	if exampleDir != "" {
		os.RemoveAll(exampleDir)
	}
	os.Exit(code)
}

// CopyDir copies the tree at src to dst, keeping file modes and symlinks.
func CopyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}
