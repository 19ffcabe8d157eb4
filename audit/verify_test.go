package audit

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestVerifyFixture(t *testing.T) {
	key := newKey(t)
	path := fixture(t, key)
	rep, err := verifyFile(t, path, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	want := Report{Entries: 7, Checkpoints: 3, LastSeq: 10, LastCheckpointSeq: 10,
		Head:               lineHash(bytes.TrimSuffix(lines[9], []byte("\n"))),
		LastCheckpointHash: lineHash(bytes.TrimSuffix(lines[9], []byte("\n")))}
	if *rep != want {
		t.Errorf("report %+v, want %+v", *rep, want)
	}
}

// TestVerifyTampering starts from the fixture (see fixture for its lines),
// breaks one thing, and wants the first problem at the line at fault.
func TestVerifyTampering(t *testing.T) {
	key, other := newKey(t), newKey(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, lines [][]byte) [][]byte
		kind   error
		line   int
		detail string
	}{
		{"one byte of an event edited", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"alpha"`), []byte(`"alphb"`), 1)
			return l
		}, ErrChanged, 2, "does not match the prev"},
		{"one byte of the last entry edited", func(t *testing.T, l [][]byte) [][]byte {
			l[8] = bytes.Replace(l[8], []byte(`"status":200`), []byte(`"status":500`), 1)
			return l
		}, ErrChanged, 9, ""},
		{"prev of the first line changed", func(t *testing.T, l [][]byte) [][]byte {
			l[0] = bytes.Replace(l[0], []byte(`"prev":"0`), []byte(`"prev":"1`), 1)
			return l
		}, ErrChanged, 1, "zero hash"},
		{"an entry deleted", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:4:4], l[5:]...)
		}, ErrMissing, 5, "seq 5 is not in the log"},
		{"the first entries deleted", func(t *testing.T, l [][]byte) [][]byte {
			return l[2:]
		}, ErrMissing, 1, "seq 1 to 2"},
		{"a checkpoint deleted", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:3:3], l[4:]...)
		}, ErrMissing, 4, "seq 4"},
		{"two entries swapped", func(t *testing.T, l [][]byte) [][]byte {
			l[4], l[5] = l[5], l[4]
			return l
		}, ErrReordered, 5, "seq 5 is at line 6"},
		{"an entry moved back", func(t *testing.T, l [][]byte) [][]byte {
			moved := l[4]
			l = append(l[:4:4], l[5:]...)
			return append(l[:8:8], append([][]byte{moved}, l[8:]...)...)
		}, ErrReordered, 5, "seq 5 is at line 9"},
		{"an entry duplicated", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:5:5], append([][]byte{l[4]}, l[5:]...)...)
		}, ErrReordered, 6, "seq 5 comes after seq 5"},
		{"edited and re-chained, checkpoint's prev left", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"alpha"`), []byte(`"alphb"`), 1)
			rechain(t, l[:3], 2, false)
			return l
		}, ErrChanged, 3, ""},
		{"edited and re-chained, old checkpoint kept", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"alpha"`), []byte(`"alphb"`), 1)
			rechain(t, l, 2, false)
			return l
		}, ErrForged, 4, "a line from 1 to 3"},
		{"edited and re-chained, checkpoint heads rewritten", func(t *testing.T, l [][]byte) [][]byte {
			l[5] = bytes.Replace(l[5], []byte(`"alpha"`), []byte(`"alphb"`), 1)
			rechain(t, l, 6, true)
			return l
		}, ErrForged, 8, "signature does not verify"},
		{"checkpoint signed by another key", func(t *testing.T, l [][]byte) [][]byte {
			l[3] = resign(t, l[3], other)
			return l
		}, ErrForged, 4, "not by the key given"},
		{"checkpoint signed by another key under ours", func(t *testing.T, l [][]byte) [][]byte {
			ours := mustParse(t, l[3]).cp.keyID
			r := mustParse(t, resign(t, l[3], other))
			r.cp.keyID = ours
			l[3] = encodeLine(r)
			return l
		}, ErrForged, 4, "signature does not verify"},
		{"checkpoint with a wrong count, signed", func(t *testing.T, l [][]byte) [][]byte {
			r := mustParse(t, l[7])
			r.cp.count = 5
			l[7] = resign(t, encodeLine(r), key)
			return l
		}, ErrForged, 8, "counts 5 entries"},
		{"last checkpoint's time edited", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = bytes.Replace(l[9], []byte(`"time":"2026-`), []byte(`"time":"2025-`), 1)
			return l
		}, ErrForged, 10, "signature"},
		{"checkpoint replayed from another log", func(t *testing.T, l [][]byte) [][]byte {
			// Another log by the same key, of other events: its first
			// checkpoint fitted to this log's chain.
			o := readLines(t, fixtureOf(t, key, "gamma"))
			r := mustParse(t, o[3])
			r.prev = mustParse(t, l[3]).prev
			r.cp.head = r.prev
			l[3] = encodeLine(r)
			return l
		}, ErrForged, 4, "signature"},
		{"truncated mid-line", func(t *testing.T, l [][]byte) [][]byte {
			l[6] = l[6][:len(l[6])/2]
			return l[:7]
		}, ErrMalformed, 7, "cut short"},
		{"last newline removed", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = bytes.TrimSuffix(l[9], []byte("\n"))
			return l
		}, ErrMalformed, 10, "cut short"},
		{"a field added", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`{"seq"`), []byte(`{"x":1,"seq"`), 1)
			return l
		}, ErrMalformed, 3, "unknown field"},
		{"a space added", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"n":3`), []byte(`"n": 3`), 1)
			return l
		}, ErrMalformed, 3, "not compact"},
		{"a key spelled in capitals", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"seq"`), []byte(`"SEQ"`), 1)
			return l
		}, ErrMalformed, 3, "canonical"},
		{"a key given twice", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`{"seq":3,`), []byte(`{"seq":3,"seq":3,`), 1)
			return l
		}, ErrMalformed, 3, "canonical"},
		{"prev in capitals", func(t *testing.T, l [][]byte) [][]byte {
			r := mustParse(t, l[4])
			l[4] = bytes.Replace(l[4], []byte(r.prev), []byte(strings.ToUpper(r.prev)), 1)
			return l
		}, ErrMalformed, 5, "hex"},
		{"not JSON", func(t *testing.T, l [][]byte) [][]byte {
			l[4] = []byte("hello\n")
			return l
		}, ErrMalformed, 5, "not JSON"},
		{"a blank line", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:4:4], append([][]byte{[]byte("\n")}, l[4:]...)...)
		}, ErrMalformed, 5, ""},
		{"an overlong line", func(t *testing.T, l [][]byte) [][]byte {
			l[4] = append(bytes.Repeat([]byte("x"), MaxLine), '\n')
			return l
		}, ErrMalformed, 5, "longer than"},
		{"no checkpoint left", func(t *testing.T, l [][]byte) [][]byte {
			return l[:3]
		}, ErrUnsigned, 1, "no checkpoint"},
		{"emptied", func(t *testing.T, l [][]byte) [][]byte {
			return nil
		}, ErrUnsigned, 1, "0 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fixture(t, key)
			writeLines(t, path, tt.tamper(t, readLines(t, path)))
			_, err := verifyFile(t, path, key.Public())
			p := wantProblem(t, err, tt.kind, tt.line)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not say %q", p.Detail, tt.detail)
			}
		})
	}
}

// TestVerifyProblemSeq: a problem names the seq the line carries.
func TestVerifyProblemSeq(t *testing.T) {
	key := newKey(t)
	path := fixture(t, key)
	l := readLines(t, path)
	writeLines(t, path, append(l[:4:4], l[5:]...))
	_, err := verifyFile(t, path, key.Public())
	if p := wantProblem(t, err, ErrMissing, 5); p.Seq != 6 {
		t.Errorf("seq %d, want 6", p.Seq)
	}
	if want := "line 5 (seq 6): missing: seq 5 is not in the log: the entry was removed"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestVerifyUnsignedTail: a log cut after a checkpoint verifies (nothing in
// the file shows the cut) and reports the entries no checkpoint signs.
func TestVerifyUnsignedTail(t *testing.T) {
	key := newKey(t)
	path := fixture(t, key)
	writeLines(t, path, readLines(t, path)[:6])
	rep, err := verifyFile(t, path, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if rep.UnsignedTail != 2 || rep.LastCheckpointSeq != 4 || rep.Entries != 5 || rep.LastSeq != 6 {
		t.Errorf("report %+v: want 5 entries, 2 unsigned after the checkpoint at seq 4", *rep)
	}
}

func TestVerifyReportsBeforeTheProblem(t *testing.T) {
	key := newKey(t)
	path := fixture(t, key)
	l := readLines(t, path)
	l[5], l[6] = l[6], l[5]
	writeLines(t, path, l)
	rep, err := verifyFile(t, path, key.Public())
	wantProblem(t, err, ErrReordered, 6)
	if rep == nil || rep.Entries != 4 || rep.LastSeq != 5 || rep.LastCheckpointSeq != 4 {
		t.Errorf("report %+v: want the 5 lines before the problem", rep)
	}
}

func TestVerifyKeys(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	path := fixture(t, edPriv)
	if _, err := verifyFile(t, path, edPriv.Public()); err != nil {
		t.Errorf("Ed25519: %v", err)
	}
	_, err = verifyFile(t, path, newKey(t).Public())
	wantProblem(t, err, ErrForged, 4)

	for _, pub := range []crypto.PublicKey{nil, "a key", ed25519.PublicKey{1, 2}} {
		_, err := verifyFile(t, path, pub)
		var p *Problem
		if !errors.Is(err, ErrUnsupportedKey) || errors.As(err, &p) {
			t.Errorf("key %T: err = %v, want ErrUnsupportedKey and no problem of the log", pub, err)
		}
	}
}

func TestVerifyBounds(t *testing.T) {
	key := newKey(t)
	data, err := os.ReadFile(fixture(t, key))
	if err != nil {
		t.Fatal(err)
	}
	c := newChain(mustCheckKey(t, key.Public()))
	err = c.readAll(newLineReader(bytes.NewReader(data), int64(len(data)-1)))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("a log one byte over the bound: err = %v, want ErrTooLarge", err)
	}
	c = newChain(mustCheckKey(t, key.Public()))
	if err := c.readAll(newLineReader(bytes.NewReader(data), int64(len(data)))); err != nil {
		t.Errorf("a log at the bound: %v", err)
	}
}

// TestVerifyReadError: an error reading is not a problem of the log.
func TestVerifyReadError(t *testing.T) {
	key := newKey(t)
	data, err := os.ReadFile(fixture(t, key))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	_, err = Verify(&failingReader{data: data[:100], err: boom}, key.Public())
	var p *Problem
	if !errors.Is(err, boom) || errors.As(err, &p) {
		t.Errorf("err = %v, want the read error and no problem", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func mustCheckKey(t testing.TB, pub crypto.PublicKey) *checkKey {
	t.Helper()
	k, err := newCheckKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
