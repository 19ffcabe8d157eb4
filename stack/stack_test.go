package stack_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/stack"
)

var sentinels = map[string]error{
	"ErrUnknownField":      stack.ErrUnknownField,
	"ErrDuplicateKey":      stack.ErrDuplicateKey,
	"ErrWrongType":         stack.ErrWrongType,
	"ErrSyntax":            stack.ErrSyntax,
	"ErrTooLarge":          stack.ErrTooLarge,
	"ErrAlias":             stack.ErrAlias,
	"ErrRequired":          stack.ErrRequired,
	"ErrInvalid":           stack.ErrInvalid,
	"ErrDuplicateName":     stack.ErrDuplicateName,
	"ErrUnknownReference":  stack.ErrUnknownReference,
	"ErrPathEscape":        stack.ErrPathEscape,
	"ErrMissingFile":       stack.ErrMissingFile,
	"ErrLiteralCredential": stack.ErrLiteralCredential,
}

// TestBadManifests loads every manifest of testdata/stacks/bad; each must
// fail with the kind, line and field its first line names.
func TestBadManifests(t *testing.T) {
	for _, c := range testutil.BadStacks(t) {
		t.Run(c.Name, func(t *testing.T) {
			want, ok := sentinels[c.Kind]
			if !ok {
				t.Fatalf("unknown error kind %q in the want header", c.Kind)
			}
			s, err := stack.Load(c.File)
			if err == nil {
				t.Fatalf("loaded: %+v", s)
			}
			if !errors.Is(err, want) {
				t.Errorf("err = %v, want %s", err, c.Kind)
			}
			var fe *stack.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %T %v, want a *stack.FieldError", err, err)
			}
			if fe.Line != c.Line || fe.Field != c.Field {
				t.Errorf("error at line %d field %q, want line %d field %q (%v)", fe.Line, fe.Field, c.Line, c.Field, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
		})
	}
}

// TestErrorsNeverQuoteSecrets: no error for a bad manifest repeats a
// secret written in it, whatever the error is about.
func TestErrorsNeverQuoteSecrets(t *testing.T) {
	for _, c := range testutil.BadStacks(t) {
		data, err := os.ReadFile(c.File)
		if err != nil {
			t.Fatal(err)
		}
		_, err = stack.Load(c.File)
		if err == nil {
			t.Fatalf("%s loaded", c.Name)
		}
		for _, secret := range []string{"sk-proj-4f7Hc2Qp9XvL3mZ8sT1wK6yB0nR5dJ", "sk-ant-api03-Zq8Xw2Lk5Pm9Rt3Vy7Bn1Cd4Fg6Hj0",
			"9f8e7d6c5b4a39281706f5e4d3c2b1a0", "sk-4f7Hc2Qp9XvL3mZ8sT1wK6yB0nR5dJ", "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5", "hunter2", "4f7Hc2Qp9XvL3mZ8sT1wK6yB0nR5dJ", "c2stcHJvai00ZjdIYzJRcDlYdkwzbVo4c1Qxd0s2eUIwblI1ZEo"} {
			if strings.Contains(string(data), secret) && strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error quotes the secret: %v", c.Name, err)
			}
		}
	}
}

func TestDeepNestingIsRefusedCheaply(t *testing.T) {
	// A document nested thousands of levels deep must fail fast, not build
	// a field path per level.
	deep := strings.Repeat("{"+strings.Repeat("k", 100)+": ", 9000) + "x" + strings.Repeat("}", 9000)
	_, err := stack.Parse("deep.yaml", t.TempDir(), []byte(deep))
	if !errors.Is(err, stack.ErrSyntax) {
		t.Fatalf("err = %v, want ErrSyntax", err)
	}
}

func TestFieldPathsAreOneLine(t *testing.T) {
	for name, doc := range map[string]string{
		"multi-line key": "? |\n  line1\n  x.yaml:1: fine\n: 1\n",
		"escape in key":  "\"\\e[31mRED\\e[0m\": 1\n",
	} {
		_, err := stack.Parse(name, t.TempDir(), []byte(doc))
		if !errors.Is(err, stack.ErrUnknownField) {
			t.Errorf("%s: err = %v, want ErrUnknownField", name, err)
			continue
		}
		for _, r := range err.Error() {
			if r < ' ' || r == 0x7f {
				t.Errorf("%s: error has control character %q: %q", name, r, err)
				break
			}
		}
	}
}

func TestTooLarge(t *testing.T) {
	dir := testutil.StackDir(t)
	file := filepath.Join(dir, "huge.yaml")
	data := []byte("apiVersion: trustgate.dev/v1\n# " + strings.Repeat("x", stack.MaxManifestSize) + "\n")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Load(file); !errors.Is(err, stack.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestGoodManifests(t *testing.T) {
	dir := testutil.StackDir(t)
	for _, name := range []string{"minimal", "full"} {
		data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "stacks", "good", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := stack.Load(file)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Gateway.Role != stack.RoleGateway || s.Gateway.Kind != stack.KindGateway {
			t.Errorf("%s: gateway role %q kind %q", name, s.Gateway.Role, s.Gateway.Kind)
		}
		if s.Source.Dir != dir || s.Source.Digest.IsZero() {
			t.Errorf("%s: source = %+v", name, s.Source)
		}
	}
}

func TestFullManifest(t *testing.T) {
	dir := testutil.StackDir(t)
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "stacks", "good", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.Parse("full.yaml", dir, data)
	if err != nil {
		t.Fatal(err)
	}
	comps := s.Components()
	var got []string
	for _, c := range comps {
		got = append(got, c.Kind+"/"+c.Name+"/"+c.Role)
	}
	want := "gateway/gw/gateway plugin/guard/guardrail plugin/py/transform agent/audit/audit"
	if strings.Join(got, " ") != want {
		t.Errorf("components = %v, want %s", got, want)
	}
	if c := s.Providers[1].Credential.String(); c != "file:/run/secrets/local" {
		t.Errorf("credential = %s", c)
	}
	if s.Models[1].Card.Task != "text-generation" {
		t.Errorf("model card = %+v", s.Models[1].Card)
	}
}

func FuzzParse(f *testing.F) {
	root := testutil.RepoRoot(f)
	for _, dir := range []string{"good", "bad"} {
		files, _ := filepath.Glob(filepath.Join(root, "testdata", "stacks", dir, "*.yaml"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	dir := testutil.StackDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := stack.Parse("fuzz.yaml", dir, data)
		if err == nil && s == nil {
			t.Fatal("nil stack without error")
		}
		if err != nil {
			var fe *stack.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a FieldError: %T %v", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
		}
	})
}
