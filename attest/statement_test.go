package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"
)

const testPredicate = `{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}`

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestNewStatementShape(t *testing.T) {
	st, err := NewStatement(PredicateCycloneDX, []byte(testPredicate),
		Subject{Name: "b", Digest: map[string]string{"sha256": sha("b")}},
		Subject{Name: "a", Digest: map[string]string{"dirHash": sha("a")}},
	)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"dirHash":"` + sha("a") +
		`"}},{"name":"b","digest":{"sha256":"` + sha("b") + `"}}],"predicateType":"https://cyclonedx.org/bom",` +
		`"predicate":{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}}`
	if string(raw) != want {
		t.Fatalf("statement:\n got %s\nwant %s", raw, want)
	}
}

// The predicate is signed as given: no HTML escaping of <, > and &.
func TestPredicateKeptByteForByte(t *testing.T) {
	pred := `{"description":"a <b> & c","n":1}`
	st, err := NewStatement(PredicateCycloneDX, []byte(pred), Subject{Name: "f", Digest: map[string]string{"sha256": sha("f")}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"predicate":`+pred+`}`) {
		t.Fatalf("predicate changed: %s", raw)
	}
}

func TestNewStatementRejects(t *testing.T) {
	good := Subject{Name: "f", Digest: map[string]string{"sha256": sha("f")}}
	cases := []struct {
		name      string
		predType  string
		predicate string
		subjects  []Subject
		want      error
	}{
		{"predicate not JSON", PredicateCycloneDX, `{"a":`, []Subject{good}, ErrPredicate},
		{"predicate an array", PredicateCycloneDX, `[1,2]`, []Subject{good}, ErrPredicate},
		{"predicate empty", PredicateCycloneDX, ``, []Subject{good}, ErrPredicate},
		{"predicate type relative", "bom", testPredicate, []Subject{good}, ErrPredicateType},
		{"no subject", PredicateCycloneDX, testPredicate, nil, ErrInvalidSubject},
		{"empty name", PredicateCycloneDX, testPredicate, []Subject{{Digest: good.Digest}}, ErrInvalidSubject},
		{"no digest", PredicateCycloneDX, testPredicate, []Subject{{Name: "f"}}, ErrInvalidSubject},
		{"sha1 only", PredicateCycloneDX, testPredicate, []Subject{{Name: "f", Digest: map[string]string{"sha1": strings.Repeat("a", 40)}}}, ErrInvalidSubject},
		{"unknown algorithm", PredicateCycloneDX, testPredicate, []Subject{{Name: "f", Digest: map[string]string{"blake9": sha("f")}}}, ErrInvalidSubject},
		{"short digest", PredicateCycloneDX, testPredicate, []Subject{{Name: "f", Digest: map[string]string{"sha256": "abcd"}}}, ErrInvalidSubject},
		{"upper-case hex", PredicateCycloneDX, testPredicate, []Subject{{Name: "f", Digest: map[string]string{"sha256": strings.ToUpper(sha("f"))}}}, ErrInvalidSubject},
		{"same name twice", PredicateCycloneDX, testPredicate, []Subject{good, good}, ErrInvalidSubject},
		{"newline in name", PredicateCycloneDX, testPredicate, []Subject{{Name: "a\nb", Digest: good.Digest}}, ErrInvalidSubject},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewStatement(c.predType, []byte(c.predicate), c.subjects...)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestPredicateErrorsDoNotQuoteContent(t *testing.T) {
	for _, secret := range []string{
		`{"token": "sk-live-abcdefghijklmnop", "x": }`,                    // syntax error
		`{"token": "sk-live-abcdefghijklmnop", "token": "sk-live-other"}`, // duplicate key
		`{"token": "sk-live-abcdefghijklmnop", "n": 1e99999}`,             // number out of range
	} {
		_, err := NewStatement(PredicateCycloneDX, []byte(secret), Subject{Name: "f", Digest: map[string]string{"sha256": sha("f")}})
		if !errors.Is(err, ErrPredicate) || strings.Contains(err.Error(), "sk-live") || strings.Contains(err.Error(), "99999") {
			t.Errorf("%s: got %v", secret, err)
		}
	}
}

func TestPredicateTypeNames(t *testing.T) {
	for in, want := range map[string]string{
		"cyclonedx":                    PredicateCycloneDX,
		"CycloneDX":                    PredicateCycloneDX,
		"slsaprovenance":               PredicateSLSAProvenance,
		"vsa":                          PredicateVSA,
		"policy":                       PredicatePolicy,
		"https://example.com/custom/1": "https://example.com/custom/1",
	} {
		got, err := PredicateType(in)
		if err != nil || got != want {
			t.Errorf("PredicateType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "spdx-ish", "/relative/path", "mailto:x"} {
		if _, err := PredicateType(bad); !errors.Is(err, ErrPredicateType) {
			t.Errorf("PredicateType(%q): got %v, want ErrPredicateType", bad, err)
		}
	}
}

func TestFileSubject(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugin.bin")
	if err := os.WriteFile(file, []byte("plugin bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := FileSubject(file)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "plugin.bin" || s.Digest["sha256"] != sha("plugin bytes") || len(s.Digest) != 1 {
		t.Fatalf("file subject: %+v", s)
	}

	tree := filepath.Join(dir, "site-packages")
	if err := os.MkdirAll(filepath.Join(tree, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"pkg/__init__.py": "x = 1\n", "top.txt": "top\n"} {
		if err := os.WriteFile(filepath.Join(tree, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = FileSubject(tree)
	if err != nil {
		t.Fatal(err)
	}
	h1, err := dirhash.HashDir(tree, "", dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	// dirHash is h1 in hex, with no prefix: in-toto's DigestSet spec.
	raw, _ := base64Decode(strings.TrimPrefix(h1, "h1:"))
	if s.Digest["dirHash"] != hex.EncodeToString(raw) || len(s.Digest) != 1 {
		t.Fatalf("dir subject %+v, dirhash %s", s, h1)
	}

	// Relative paths keep their shape; a climb out is cut to the base name.
	wd, _ := os.Getwd()
	t.Chdir(dir)
	if s, err := FileSubject("./site-packages/../plugin.bin"); err != nil || s.Name != "plugin.bin" {
		t.Fatalf("relative: %+v %v", s, err)
	}
	t.Chdir(filepath.Join(dir, "site-packages"))
	if s, err := FileSubject("../plugin.bin"); err != nil || s.Name != "plugin.bin" {
		t.Fatalf("climbing: %+v %v", s, err)
	}
	// "." is named by the folder's own name.
	if s, err := FileSubject("."); err != nil || s.Name != "site-packages" {
		t.Fatalf("dot: %+v %v", s, err)
	}
	t.Chdir(wd)
}

func TestFileSubjectRejects(t *testing.T) {
	dir := t.TempDir()
	if _, err := FileSubject(filepath.Join(dir, "missing")); !errors.Is(err, ErrInvalidSubject) {
		t.Fatalf("missing: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FileSubject(fifo); !errors.Is(err, ErrInvalidSubject) {
		t.Fatalf("fifo: %v", err)
	}
	tree := filepath.Join(dir, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := FileSubject(tree); !errors.Is(err, ErrInvalidSubject) {
		t.Fatalf("link out of tree: %v", err)
	}
}

func base64Decode(s string) ([]byte, error) {
	var b []byte
	err := json.Unmarshal([]byte(`"`+s+`"`), &b)
	return b, err
}
