package audit

import (
	"errors"
	"fmt"
)

// The kinds of problem Verify finds, as the Kind of a *Problem. Match them
// with errors.Is.
var (
	// ErrChanged: a line's hash does not match the prev of the line after
	// it: the line (or that prev) was edited.
	ErrChanged = errors.New("changed")
	// ErrMissing: seq skips numbers that appear nowhere later: entries were
	// removed.
	ErrMissing = errors.New("missing")
	// ErrReordered: seq goes down or repeats, or skips a number that
	// appears later: entries were moved or duplicated.
	ErrReordered = errors.New("reordered")
	// ErrForged: a checkpoint's signature does not verify with the key, it
	// names another key, or its head or count does not match the log.
	ErrForged = errors.New("forged checkpoint")
	// ErrMalformed: a line is not a canonical log line: not JSON, unknown or
	// missing fields, bad hex or base64, a value spelled another way, no
	// newline at its end, or longer than MaxLine. Append also refuses an
	// event that is not a JSON object with it.
	ErrMalformed = errors.New("malformed")
	// ErrUnsigned: no checkpoint signs the log at all. (Entries after the
	// last checkpoint are only counted, in Report.UnsignedTail.) Append
	// returns it when an entry was written but the checkpoint due after it
	// failed: the entry is in the log, not yet signed.
	ErrUnsigned = errors.New("unsigned")
)

// Errors of the Writer and of reading a log.
var (
	// ErrTampered: Open found the existing log broken and refuses to extend
	// it. The error also wraps the *Problem.
	ErrTampered = errors.New("log has been tampered with")
	// ErrTooLarge: an event that would make a line longer than MaxLine, or
	// a log longer than the limit for reading it.
	ErrTooLarge = errors.New("too large")
	// ErrClosed: the Writer was closed.
	ErrClosed = errors.New("audit log closed")
	// ErrInUse: another Writer (in this or another process) holds the log.
	ErrInUse = errors.New("log is in use by another writer")
	// ErrUnsupportedKey: a key that is neither ECDSA (P-256, P-384, P-521)
	// nor Ed25519, or no key.
	ErrUnsupportedKey = errors.New("unsupported key")
)

// A Problem is the first thing wrong with a log: where it is and what kind
// (one of ErrChanged, ErrMissing, ErrReordered, ErrForged, ErrMalformed,
// ErrUnsigned). errors.Is(p, p.Kind) holds.
type Problem struct {
	// Line is the 1-based line number in the file of the line at fault.
	Line int
	// Seq is the seq that line carries, or, when it cannot be read, the seq
	// it should carry.
	Seq uint64
	// Kind is the sentinel error for the kind of problem.
	Kind error
	// Detail says what was found. It quotes no event content.
	Detail string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("line %d (seq %d): %v: %s", p.Line, p.Seq, p.Kind, p.Detail)
}

// Unwrap returns the kind.
func (p *Problem) Unwrap() error { return p.Kind }
