package jsonx

import (
	"strings"
	"testing"
)

func TestNoDuplicateKeys(t *testing.T) {
	for _, c := range []struct {
		doc  string
		deep int
		ok   bool
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, 8, true},
		{`{"a":1,"a":2}`, 8, false},
		{`{"a":1,"A":2}`, 8, false}, // one key to encoding/json
		{`{"b":{"x":1,"x":1}}`, 8, false},
		{`{"k\u00e9":1}`, 8, false}, // keys are printable ASCII
		{`[[[[1]]]]`, 4, true},
		{`[[[[[1]]]]]`, 4, false},
		{`{"a":`, 8, false},
	} {
		if err := NoDuplicateKeys([]byte(c.doc), c.deep); (err == nil) != c.ok {
			t.Errorf("%s (depth %d): %v, want ok=%v", c.doc, c.deep, err, c.ok)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	var v struct{ A int }
	if err := DecodeStrict([]byte(`{"A":1}`), &v, 8); err != nil || v.A != 1 {
		t.Fatalf("%v %+v", err, v)
	}
	for _, doc := range []string{`{"A":1,"B":2}`, `{"A":1} {"A":2}`, `{"A":1,"a":2}`, `{"A":"x"}`} {
		if err := DecodeStrict([]byte(doc), &v, 8); err == nil {
			t.Errorf("%s: accepted", doc)
		}
	}
	if err := DecodeStrict([]byte(strings.Repeat("[", 100)+strings.Repeat("]", 100)), &[]any{}, 64); err == nil {
		t.Error("nesting past the bound accepted")
	}
}
