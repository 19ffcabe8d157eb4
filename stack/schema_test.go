package stack_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/stack"
)

// The published schema, schema/stack.schema.json, must accept what Load
// accepts and refuse what its structure can express (unknown fields, wrong
// roles, credentials that are not references).
func TestPublishedSchema(t *testing.T) {
	root := testutil.RepoRoot(t)
	s := testutil.JSONSchema(t, filepath.Join(root, "schema"), "https://trustgate.dev/schema/stack-v1.schema.json")
	validate := func(file string) error {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return err
		}
		js, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return testutil.ValidateJSON(s, js)
	}
	good := []string{
		filepath.Join(root, "examples", "deployment", "stack.yaml"),
		filepath.Join(root, "testdata", "stacks", "good", "minimal.yaml"),
		filepath.Join(root, "testdata", "stacks", "good", "full.yaml"),
	}
	for _, f := range good {
		if err := validate(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// Schema-expressible mistakes among the bad manifests.
	for _, c := range testutil.BadStacks(t) {
		switch c.Name {
		case "unknown-field", "unknown-nested-field", "absolute-path", "dotdot-path", "literal-credential",
			"credential-value-not-a-name", "api-key-field", "http-base-url", "bad-role", "bad-name",
			"path-and-image", "image-two-sources", "wrong-type", "wrong-api-version", "no-gateway", "no-credential",
			"model-signature-without-file":
			if err := validate(c.File); err == nil {
				t.Errorf("%s: the schema accepted it", c.Name)
			}
		}
	}
}

// Every field of the Go types is in the schema, so the two cannot drift.
func TestSchemaCoversTypes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "schema", "stack.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	schema := string(data)
	for _, typ := range []reflect.Type{reflect.TypeFor[stack.Stack](), reflect.TypeFor[stack.Metadata](), reflect.TypeFor[stack.Component](),
		reflect.TypeFor[stack.Provider](), reflect.TypeFor[stack.CredentialRef](), reflect.TypeFor[stack.Model](),
		reflect.TypeFor[stack.ModelCard](), reflect.TypeFor[stack.Image]()} {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || name == "" {
				continue
			}
			if !strings.Contains(schema, `"`+name+`"`) {
				t.Errorf("%s.%s (%q) is not in the schema", typ.Name(), f.Name, name)
			}
		}
	}
}
