package audit

import (
	"bufio"
	"crypto"
	"errors"
	"fmt"
	"io"
)

// Report is what Verify found in a log.
type Report struct {
	// Entries counts entry lines, Checkpoints checkpoint lines.
	Entries, Checkpoints uint64
	// LastSeq is the seq of the last line (0 for an empty log); Head is that
	// line's hash (the zero hash for an empty log).
	LastSeq uint64
	Head    string
	// LastCheckpointSeq and LastCheckpointHash are the seq and line hash of
	// the last checkpoint (0 and "" without one): what an external anchor
	// keeps to detect a log cut back to an earlier checkpoint.
	LastCheckpointSeq  uint64
	LastCheckpointHash string
	// UnsignedTail counts the entries after the last checkpoint. They are
	// chained but not signed: whoever can write the file can rewrite or
	// remove them without a trace. Not an error; callers decide whether to
	// warn.
	UnsignedTail uint64
}

// Verify reads a whole log from r and checks its chain and, with pub, each
// checkpoint. It reads at most MaxLog bytes (more is ErrTooLarge) and no
// line longer than MaxLine.
//
// It returns the first problem as a *Problem, whose Kind is ErrChanged,
// ErrMissing, ErrReordered, ErrForged, ErrMalformed, or ErrUnsigned when no
// checkpoint signs the log at all; the Report then describes the lines
// before the problem. Other errors (reading r, a key that is not ECDSA or
// Ed25519) are not problems of the log.
//
// A nil error proves the log up to its last checkpoint is what the key's
// holder signed. Callers must still check Report.UnsignedTail, and compare
// the last checkpoint with an anchor kept elsewhere if a log cut back to an
// earlier checkpoint must be detected (see the package documentation).
func Verify(r io.Reader, pub crypto.PublicKey) (*Report, error) {
	key, err := newCheckKey(pub)
	if err != nil {
		return nil, fmt.Errorf("audit: verifying: %w", err)
	}
	c := newChain(key)
	lr := newLineReader(r, MaxLog)
	if err := c.readAll(lr); err != nil {
		rep := c.rep
		return &rep, err
	}
	rep := c.rep
	if rep.Checkpoints == 0 {
		return &rep, &Problem{Line: 1, Seq: min(rep.LastSeq, 1), Kind: ErrUnsigned,
			Detail: fmt.Sprintf("no checkpoint signs the log (%d entries)", rep.Entries)}
	}
	return &rep, nil
}

// chain is the state of a log read so far.
type chain struct {
	key    *checkKey
	rep    Report
	line   int // lines read
	cpLine int // line of the last checkpoint
}

func newChain(key *checkKey) *chain {
	return &chain{key: key, rep: Report{Head: zeroHash}}
}

// readAll reads lr to its end; it returns a *Problem or an error reading.
func (c *chain) readAll(lr *lineReader) error {
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var bad *badLine
			if errors.As(err, &bad) {
				return &Problem{Line: c.line + 1, Seq: c.rep.LastSeq + 1, Kind: ErrMalformed, Detail: bad.detail}
			}
			return err
		}
		if p := c.add(line); p != nil {
			if errors.Is(p.Kind, ErrMissing) {
				c.classifyGap(p, lr)
			}
			return p
		}
	}
}

// add checks one line (without its newline) against the chain so far.
func (c *chain) add(line []byte) *Problem {
	n, want := c.line+1, c.rep.LastSeq+1
	r, err := parseLine(line)
	if err != nil {
		return &Problem{Line: n, Seq: want, Kind: ErrMalformed, Detail: err.Error()}
	}
	switch {
	case r.seq < want:
		return &Problem{Line: n, Seq: r.seq, Kind: ErrReordered,
			Detail: fmt.Sprintf("seq %d comes after seq %d", r.seq, c.rep.LastSeq)}
	case r.seq > want:
		return &Problem{Line: n, Seq: r.seq, Kind: ErrMissing, Detail: gapDetail(want, r.seq)}
	case r.prev != c.rep.Head && n == 1:
		return &Problem{Line: 1, Seq: r.seq, Kind: ErrChanged,
			Detail: "the first line's prev is not the zero hash"}
	case r.prev != c.rep.Head:
		return &Problem{Line: c.line, Seq: c.rep.LastSeq, Kind: ErrChanged,
			Detail: fmt.Sprintf("its hash %s does not match the prev %s of line %d", short(c.rep.Head), short(r.prev), n)}
	}
	if r.cp != nil {
		if p := c.checkpoint(n, r); p != nil {
			return p
		}
	}
	c.line = n
	c.rep.LastSeq = r.seq
	c.rep.Head = lineHash(line)
	if r.cp == nil {
		c.rep.Entries++
		c.rep.UnsignedTail++
	} else {
		c.rep.Checkpoints++
		c.rep.UnsignedTail = 0
		c.rep.LastCheckpointSeq = r.seq
		c.rep.LastCheckpointHash = c.rep.Head
		c.cpLine = n
	}
	return nil
}

// checkpoint checks a checkpoint line whose prev matched the chain.
func (c *chain) checkpoint(n int, r *record) *Problem {
	forged := func(format string, args ...any) *Problem {
		return &Problem{Line: n, Seq: r.seq, Kind: ErrForged, Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case r.cp.keyID != c.key.id:
		return forged("signed by key %s, not by the key given (%s)", clip(r.cp.keyID, 44), c.key.id)
	case r.cp.head != r.prev:
		return forged("its head is not the hash of line %d: a line from %d to %d was changed and the chain rebuilt after it", n-1, c.cpLine+1, n-1)
	case r.cp.count != c.rep.Entries:
		return forged("it counts %d entries, the log has %d before it", r.cp.count, c.rep.Entries)
	case !c.key.verify(r.signedBytes(), r.cp.signature):
		return forged("the signature does not verify with the key given")
	}
	return nil
}

// classifyGap reads on to tell a removed entry (ErrMissing) from a moved one
// (ErrReordered): the seq the gap skips is either later in the log or
// nowhere.
func (c *chain) classifyGap(p *Problem, lr *lineReader) {
	want := c.rep.LastSeq + 1
	for n := p.Line + 1; ; n++ {
		line, err := lr.next()
		if errors.Is(err, io.EOF) || (err != nil && !isBadLine(err)) {
			return
		}
		if err != nil {
			continue
		}
		if seq, ok := peekSeq(line); ok && seq == want {
			p.Kind = ErrReordered
			p.Detail = fmt.Sprintf("seq %d comes after seq %d; seq %d is at line %d", p.Seq, c.rep.LastSeq, want, n)
			return
		}
	}
}

func gapDetail(want, got uint64) string {
	if got == want+1 {
		return fmt.Sprintf("seq %d is not in the log: the entry was removed", want)
	}
	return fmt.Sprintf("seq %d to %d are not in the log: the entries were removed", want, got-1)
}

// peekSeq reads the seq of a line that may be otherwise malformed.
func peekSeq(line []byte) (uint64, bool) {
	r, err := parseLine(line)
	if err != nil {
		return 0, false
	}
	return r.seq, true
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12] + "..."
	}
	return hash
}

// lineReader reads a log line by line, bounded per line and in total.
type lineReader struct {
	br        *bufio.Reader
	read, max int64
}

func newLineReader(r io.Reader, max int64) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(io.LimitReader(r, max+1), MaxLine), max: max}
}

// badLine is a line that cannot be a log line whatever it holds.
type badLine struct{ detail string }

func (b *badLine) Error() string { return b.detail }

func isBadLine(err error) bool {
	var b *badLine
	return errors.As(err, &b)
}

// next returns the next line without its newline (valid until the next
// call), io.EOF at the end, a *badLine for a line too long or cut short,
// ErrTooLarge past the bound, or the reader's error.
func (lr *lineReader) next() ([]byte, error) {
	line, err := lr.br.ReadSlice('\n')
	lr.read += int64(len(line))
	if lr.read > lr.max {
		return nil, fmt.Errorf("audit: log longer than %d bytes: %w", lr.max, ErrTooLarge)
	}
	switch {
	case err == nil:
		return line[:len(line)-1], nil
	case errors.Is(err, bufio.ErrBufferFull):
		lr.skipLine()
		return nil, &badLine{fmt.Sprintf("line longer than %d bytes", MaxLine)}
	case errors.Is(err, io.EOF) && len(line) == 0:
		return nil, io.EOF
	case errors.Is(err, io.EOF):
		return nil, &badLine{"the last line is cut short (no newline at its end)"}
	}
	return nil, fmt.Errorf("audit: reading the log: %w", err)
}

// skipLine discards the rest of an overlong line.
func (lr *lineReader) skipLine() {
	for lr.read <= lr.max {
		line, err := lr.br.ReadSlice('\n')
		lr.read += int64(len(line))
		if !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
