package safetext

import "testing"

func TestClip(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"plain", 80, "plain"},
		{"a\x1b[2Jb", 80, "a?[2Jb"},
		{"x\u202eevil", 80, "x?evil"},
		{"\xff\xfe", 80, "??"},
		{"abcdef", 3, "abc..."},
		{"aé", 2, "a..."}, // never cuts inside a character
		{"line\nnext", 80, "line?next"},
	} {
		if got := Clip(c.in, c.n); got != c.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestLineAndQuote(t *testing.T) {
	if got := Line("first \x07line\nsecond"); got != "first ?line" {
		t.Errorf("Line = %q", got)
	}
	if got := Quote("ok name"); got != "ok name" {
		t.Errorf("Quote = %q", got)
	}
	if got := Quote("a\u202eb"); got != `"a\u202eb"` {
		t.Errorf("Quote = %q", got)
	}
}
