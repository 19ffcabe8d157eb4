package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxLine bounds a line of the log, its newline included. Append refuses
// an event that would make a longer line (ErrTooLarge); Verify reports a
// longer line as ErrMalformed.
const MaxLine = 64 << 10

// MaxLog is the default bound on the bytes read to resume a log
// (Options.MaxResume) and the bound on the bytes Verify reads.
const MaxLog = 1 << 30

// zeroHash is the prev of the first line.
const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// checkpointDomain is the first line of the bytes a checkpoint signs.
const checkpointDomain = "trustgate-audit-checkpoint v1\n"

// record is one parsed line. Exactly one of event and cp is set.
type record struct {
	seq   uint64
	time  string
	prev  string
	event []byte // compact JSON object
	cp    *checkpoint
}

type checkpoint struct {
	count     uint64
	head      string
	keyID     string
	signature []byte
}

// encode is the one spelling of a record, without the newline.
func (r *record) encode() []byte {
	b := make([]byte, 0, 160+len(r.event))
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.seq, 10)
	b = append(b, `,"time":"`...)
	b = append(b, r.time...)
	b = append(b, `","prev":"`...)
	b = append(b, r.prev...)
	if r.cp == nil {
		b = append(b, `","event":`...)
		b = append(b, r.event...)
		return append(b, '}')
	}
	b = append(b, `","checkpoint":{"count":`...)
	b = strconv.AppendUint(b, r.cp.count, 10)
	b = append(b, `,"head":"`...)
	b = append(b, r.cp.head...)
	b = append(b, `","keyId":"`...)
	b = append(b, r.cp.keyID...)
	b = append(b, `","signature":"`...)
	b = base64.StdEncoding.AppendEncode(b, r.cp.signature)
	return append(b, `"}}`...)
}

// signedBytes are the bytes a checkpoint's signature covers.
func (r *record) signedBytes() []byte {
	return fmt.Appendf(nil, "%sseq %d\ncount %d\nhead %s\ntime %s\nkeyId %s\n",
		checkpointDomain, r.seq, r.cp.count, r.cp.head, r.time, r.cp.keyID)
}

// lineHash is the hex SHA-256 of a line without its newline.
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// formatTime is the one spelling of a line's time.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

type wireLine struct {
	Seq        *uint64         `json:"seq"`
	Time       *string         `json:"time"`
	Prev       *string         `json:"prev"`
	Event      json.RawMessage `json:"event"`
	Checkpoint *wireCheckpoint `json:"checkpoint"`
}

type wireCheckpoint struct {
	Count     *uint64 `json:"count"`
	Head      *string `json:"head"`
	KeyID     *string `json:"keyId"`
	Signature *string `json:"signature"`
}

// parseLine reads one line (without its newline). The error is the detail
// of an ErrMalformed problem; it holds no content of the line.
func parseLine(line []byte) (*record, error) {
	var w wireLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, jsonError(err)
	}
	switch {
	case w.Seq == nil || w.Time == nil || w.Prev == nil:
		return nil, fmt.Errorf("seq, time and prev are required")
	case (w.Event == nil) == (w.Checkpoint == nil):
		return nil, fmt.Errorf("a line holds exactly one of event and checkpoint")
	case !isHash(*w.Prev):
		return nil, fmt.Errorf("prev is not a lowercase hex SHA-256")
	}
	if t, err := time.Parse(time.RFC3339Nano, *w.Time); err != nil || formatTime(t) != *w.Time {
		return nil, fmt.Errorf("time is not RFC 3339 in UTC")
	}
	r := &record{seq: *w.Seq, time: *w.Time, prev: *w.Prev}
	if w.Event != nil {
		if w.Event[0] != '{' {
			return nil, fmt.Errorf("event is not a JSON object")
		}
		var compact bytes.Buffer
		if json.Compact(&compact, w.Event) != nil || !bytes.Equal(compact.Bytes(), w.Event) {
			return nil, fmt.Errorf("event is not compact JSON")
		}
		r.event = w.Event
	} else {
		cp, err := parseCheckpoint(w.Checkpoint)
		if err != nil {
			return nil, err
		}
		r.cp = cp
	}
	if !bytes.Equal(r.encode(), line) {
		return nil, fmt.Errorf("not in canonical form (key order, spacing, escapes, time in UTC)")
	}
	return r, nil
}

func parseCheckpoint(w *wireCheckpoint) (*checkpoint, error) {
	if w.Count == nil || w.Head == nil || w.KeyID == nil || w.Signature == nil {
		return nil, fmt.Errorf("checkpoint needs count, head, keyId and signature")
	}
	if !isHash(*w.Head) {
		return nil, fmt.Errorf("checkpoint head is not a lowercase hex SHA-256")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(*w.Signature)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("checkpoint signature is not standard base64")
	}
	return &checkpoint{count: *w.Count, head: *w.Head, keyID: *w.KeyID, signature: sig}, nil
}

func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// jsonError keeps the kind of a decoding error and drops what it quotes of
// the input, except a field name, clipped.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %s has the wrong type", clip(typ.Field, 40))
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s", clip(rest, 40))
	}
	return fmt.Errorf("not a JSON object")
}

// clip shows at most n bytes of s, printable ASCII only, for a detail.
func clip(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	if len(s) > n {
		return string(b) + "..."
	}
	return string(b)
}
