package plugin

import (
	"bytes"
	"log/slog"
	"testing"
)

// FuzzLineWriter checks that a plugin's output, however it is cut into
// writes, comes out as the same text in lines of at most maxLine bytes.
func FuzzLineWriter(f *testing.F) {
	f.Add([]byte("one\ntwo\r\nthree"), uint16(3))
	f.Add(bytes.Repeat([]byte("x"), maxLine+10), uint16(1000))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		var got bytes.Buffer
		out := newOutput(&got, slog.New(slog.DiscardHandler))
		w := out.stream()
		n := max(int(chunk), 1)
		for rest := data; len(rest) > 0; {
			k := min(n, len(rest))
			if m, err := w.Write(rest[:k]); m != k || err != nil {
				t.Fatalf("Write = %d, %v", m, err)
			}
			rest = rest[k:]
		}
		w.flush()
		for _, line := range bytes.SplitAfter(got.Bytes(), []byte("\n")) {
			if len(line) > maxLine+1 {
				t.Fatalf("line of %d bytes", len(line))
			}
		}
		norm := func(b []byte) []byte {
			return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), nil)
		}
		if !bytes.Equal(norm(got.Bytes()), norm(data)) {
			t.Fatalf("text changed: %q -> %q", data, got.Bytes())
		}
	})
}
