package oms

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/bundle"
)

// TestLegacyKeyBundle: a key signature of model_signing v0.3 to v1.0.1
// carries the public key where a bundle holds a hint, which no strict
// parser reads; without those two members it parses, every other byte
// kept. Any other shape is left for the parser to judge.
func TestLegacyKeyBundle(t *testing.T) {
	raw, err := os.ReadFile("../testdata/model-transparency/scripts/tests/v1.0.1-elliptic-key/model.sig")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Parse(raw); !errors.Is(err, bundle.ErrMalformed) {
		t.Fatalf("the legacy bundle as written: got %v, want ErrMalformed", err)
	}
	fixed := LegacyKeyBundle(raw)
	if _, err := bundle.Parse(fixed); err != nil {
		t.Fatalf("the legacy bundle without the key: %v", err)
	}
	top, _ := members(raw)
	fixedTop, _ := members(fixed)
	if len(top) != len(fixedTop) || !bytes.Equal(top[2].value, fixedTop[2].value) {
		t.Error("the envelope was not kept byte for byte")
	}
	for _, s := range []string{
		strings.Replace(string(raw), `"keyDetails"`, `"validFor":{},"keyDetails"`, 1),           // another member beside them
		strings.Replace(string(raw), `"mediaType"`, `"verificationMaterial":{},"mediaType"`, 1), // two verification materials
		`{"verificationMaterial":{"publicKey":{"hint":"x"}}}`,                                   // nothing to undo
		`not json`,
	} {
		if got := LegacyKeyBundle([]byte(s)); string(got) != s {
			t.Errorf("%.60q was rewritten", s)
		}
	}
}

// TestHashOneReplaced: a file swapped after it was listed, or cut short
// under a shard, is refused.
func TestHashOneReplaced(t *testing.T) {
	r, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, n := range []string{"a", "b"} {
		if err := r.WriteFile(n, []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	infoB, _ := r.Lstat("b")
	open := func(rel string) (*os.File, error) { return r.OpenFile(rel, openFlags, 0) }
	buf := make([]byte, 4)
	if _, err := hashOne(t.Context(), open, fileEntry{path: "a", info: infoB}, job{whole: true}, buf); !errors.Is(err, ErrSpecialFile) {
		t.Errorf("another file than listed: got %v, want ErrSpecialFile", err)
	}
	if _, err := hashOne(t.Context(), open, fileEntry{path: "b", info: infoB}, job{start: 8, end: 16}, buf); !errors.Is(err, ErrMismatch) {
		t.Errorf("a shard past the end: got %v, want ErrMismatch", err)
	}
	if _, err := hashOne(t.Context(), open, fileEntry{path: "b", info: infoB}, job{whole: true}, buf); err != nil {
		t.Errorf("the file listed: %v", err)
	}
}
