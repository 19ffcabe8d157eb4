package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"testing"
)

// FuzzVerify: Verify never panics or hangs on any input, and whatever it
// accepts is signed and holds together.
func FuzzVerify(f *testing.F) {
	// A fixed key, so that a saved input verifies the same way every run.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	data, err := os.ReadFile(fixture(f, key))
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(bytes.Join(lines[2:], nil))
	f.Add(bytes.Join(append([][]byte{lines[1], lines[0]}, lines[2:]...), nil))
	f.Add(bytes.Replace(data, []byte("alpha"), []byte("alphb"), 1))
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","prev":"` + zeroHash + `","event":{}}` + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := Verify(bytes.NewReader(in), key.Public())
		var p *Problem
		switch {
		case err == nil:
			if rep.Checkpoints == 0 || rep.Entries+rep.Checkpoints != rep.LastSeq {
				t.Fatalf("accepted with report %+v", *rep)
			}
			if !bytes.HasSuffix(in, []byte("\n")) {
				t.Fatal("accepted input that does not end in a newline")
			}
		case errors.As(err, &p):
			if p.Line < 1 || p.Kind == nil || rep == nil {
				t.Fatalf("problem %+v, report %v", p, rep)
			}
		default:
			t.Fatalf("an error that is not a problem of the log: %v", err)
		}
	})
}
