package audit

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// Sync says when a Writer flushes the log to stable storage (fsync).
type Sync int

const (
	// SyncCheckpoint flushes after each checkpoint: a crash loses at most
	// the unsigned tail. The zero value, and the default.
	SyncCheckpoint Sync = iota
	// SyncEach flushes after every line: the slowest and the safest.
	SyncEach
	// SyncNone leaves flushing to the operating system.
	SyncNone
)

// Options tune a Writer. The zero value is the defaults.
type Options struct {
	// Every is the number of entries after which a checkpoint is written:
	// 0 means 100, a negative number never by count.
	Every int
	// Interval: the first Append at least Interval after the last
	// checkpoint (or Open) writes a checkpoint after its entry. 0 means
	// 10 s, a negative number never by time. To sign entries when no
	// Append follows, call Checkpoint from a ticker.
	Interval time.Duration
	// Sync says when to fsync; the zero value is SyncCheckpoint.
	Sync Sync
	// MaxResume bounds the size of an existing log Open reads back to
	// resume it; a larger log is refused with ErrTooLarge (start a new
	// file). 0 means MaxLog.
	MaxResume int64
	// Now is the clock that stamps lines; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Every == 0 {
		o.Every = 100
	}
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.MaxResume <= 0 {
		o.MaxResume = MaxLog
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// A Writer appends events to a log and signs checkpoints. It is safe for
// concurrent use. Only one Writer, in any process, holds a log at a time
// (on Unix, an exclusive flock on the file).
//
// After a failure that leaves the file in a state the Writer cannot vouch
// for (a partial line it could not remove, a failed fsync), every call
// returns that error: Close it and Open the log again, which verifies it.
//
// Append holds the Writer while it writes, and while it signs and flushes a
// checkpoint when one is due: a caller on a latency-bound path puts a
// bounded queue in front of it. The zero Writer is not usable; Open makes
// one.
type Writer struct {
	f       *os.File
	signer  crypto.Signer
	key     *checkKey
	opts    Options
	resumed Report

	mu       sync.Mutex
	seq      uint64    // seq of the last line
	prev     string    // hash of the last line
	entries  uint64    // entry lines in the log
	unsigned uint64    // entries after the last checkpoint
	signed   bool      // the log has a checkpoint
	lastCP   time.Time // when the last checkpoint was written (or Open)
	size     int64     // bytes in the file
	err      error     // sticky failure
	closed   bool
}

// Open opens the log at path for appending, signing checkpoints with
// signer (ECDSA P-256, P-384, P-521 or Ed25519). A missing file is created
// with mode 0600. An existing one is read back (at most Options.MaxResume
// bytes) and verified with signer.Public() as Verify does; if its chain or
// a checkpoint is broken, Open refuses to extend it, with an error wrapping
// ErrTampered and the *Problem. A log signed by another key is refused
// the same way (ErrForged): start a new file when the key changes.
//
// A log whose last line was cut short (a crash in the middle of a write)
// is refused too. Entries after the last checkpoint are taken as they are
// and signed by the next checkpoint: Resumed says how many there were, so
// that the caller can record or refuse them.
func Open(path string, signer crypto.Signer, opts Options) (*Writer, error) {
	if signer == nil {
		return nil, fmt.Errorf("audit: opening %q: %w: no signer", path, ErrUnsupportedKey)
	}
	key, err := newCheckKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("audit: opening %q: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	w := &Writer{f: f, signer: signer, key: key, opts: opts.withDefaults(), prev: zeroHash}
	if err := w.resume(path); err != nil {
		f.Close()
		return nil, err
	}
	w.lastCP = w.opts.Now()
	return w, nil
}

// resume locks the file and reads back what it holds.
func (w *Writer) resume(path string) error {
	if err := lockFile(w.f); err != nil {
		return fmt.Errorf("audit: %q: %w", path, err)
	}
	fi, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("audit: %q is not a regular file", path)
	case fi.Size() > w.opts.MaxResume:
		return fmt.Errorf("audit: resuming %q: %d bytes, more than %d: %w", path, fi.Size(), w.opts.MaxResume, ErrTooLarge)
	case fi.Size() == 0:
		if w.opts.Sync == SyncNone {
			return nil
		}
		return syncDir(path)
	}
	c := newChain(w.key)
	err = c.readAll(newLineReader(io.NewSectionReader(w.f, 0, fi.Size()), fi.Size()))
	var p *Problem
	if errors.As(err, &p) {
		return fmt.Errorf("audit: resuming %q: %w: %w", path, ErrTampered, p)
	}
	if err != nil {
		return fmt.Errorf("audit: resuming %q: %w", path, err)
	}
	w.seq, w.prev, w.size = c.rep.LastSeq, c.rep.Head, fi.Size()
	w.entries, w.unsigned, w.signed = c.rep.Entries, c.rep.UnsignedTail, c.rep.Checkpoints > 0
	w.resumed = c.rep
	return nil
}

// Resumed describes the log as Open found it (the zero Report for a new
// or empty file). Its UnsignedTail entries were not signed when Open read
// them: whoever could write the file meanwhile could have changed them,
// and the next checkpoint signs them as they are.
func (w *Writer) Resumed() Report { return w.resumed }

// Append writes event, which must encode (encoding/json, without HTML
// escaping) to a JSON object, as one line with one write, and then a
// checkpoint if one is due. It refuses an event that would make a line
// longer than MaxLine with ErrTooLarge, writing nothing.
//
// An error wrapping ErrUnsigned means the entry was written but the
// checkpoint due after it failed; any other error means nothing was
// written.
func (w *Writer) Append(event any) error {
	body, err := marshalEvent(event)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	now := w.opts.Now()
	r := &record{seq: w.seq + 1, time: formatTime(now), prev: w.prev, event: body}
	line := r.encode()
	if len(line)+1 > MaxLine {
		return fmt.Errorf("audit: an event of %d bytes makes a line longer than %d bytes: %w", len(body), MaxLine, ErrTooLarge)
	}
	if err := w.write(line, w.opts.Sync == SyncEach); err != nil {
		return err
	}
	w.entries++
	w.unsigned++
	if w.due(now) {
		if err := w.checkpoint(now); err != nil {
			return fmt.Errorf("audit: entry %d was written, its checkpoint not: %w: %w", r.seq, ErrUnsigned, err)
		}
	}
	return nil
}

// Checkpoint writes a checkpoint now if any entry is unsigned (or the log
// has none yet), whatever Options say. Drive it from a ticker so that
// entries are signed when no Append follows them.
func (w *Writer) Checkpoint() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if w.unsigned == 0 && w.signed {
		return nil
	}
	return w.checkpoint(w.opts.Now())
}

// Close signs what is unsigned with a last checkpoint (a log that has
// none gets one, even with no entry) and closes the file. Calls after the
// first return ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("audit: %w", ErrClosed)
	}
	w.closed = true
	var errs []error
	if w.err != nil {
		errs = append(errs, w.err)
	} else if w.unsigned > 0 || !w.signed {
		errs = append(errs, w.checkpoint(w.opts.Now()))
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit: %w", err))
	}
	return errors.Join(errs...)
}

func (w *Writer) usable() error {
	if w.closed {
		return fmt.Errorf("audit: %w", ErrClosed)
	}
	return w.err
}

func (w *Writer) due(now time.Time) bool {
	return (w.opts.Every > 0 && w.unsigned >= uint64(w.opts.Every)) ||
		(w.opts.Interval > 0 && now.Sub(w.lastCP) >= w.opts.Interval)
}

// checkpoint signs the chain so far and writes the checkpoint line.
func (w *Writer) checkpoint(now time.Time) error {
	r := &record{seq: w.seq + 1, time: formatTime(now), prev: w.prev,
		cp: &checkpoint{count: w.entries, head: w.prev, keyID: w.key.id}}
	msg := r.signedBytes()
	sig, err := w.key.sign(w.signer, msg)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if !w.key.verify(msg, sig) {
		return fmt.Errorf("audit: the signer's checkpoint signature does not verify with its public key")
	}
	r.cp.signature = sig
	if err := w.write(r.encode(), w.opts.Sync != SyncNone); err != nil {
		return err
	}
	w.unsigned, w.signed, w.lastCP = 0, true, now
	return nil
}

// write appends line and its newline with one write. A failed write is
// cut back off the file; if that fails too, or fsync fails, the Writer is
// broken for good.
func (w *Writer) write(line []byte, flush bool) error {
	buf := append(line, '\n')
	if _, err := w.f.Write(buf); err != nil {
		if terr := w.f.Truncate(w.size); terr != nil {
			w.err = fmt.Errorf("audit: the log may end in a partial line (%w): %w", terr, err)
			return w.err
		}
		return fmt.Errorf("audit: %w", err)
	}
	w.size += int64(len(buf))
	w.seq++
	w.prev = lineHash(line)
	if flush {
		if err := w.f.Sync(); err != nil {
			w.err = fmt.Errorf("audit: %w", err)
			return w.err
		}
	}
	return nil
}

// marshalEvent encodes an event as compact JSON, which must be an object.
func marshalEvent(event any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(event); err != nil {
		return nil, fmt.Errorf("audit: encoding the event: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("audit: the event is not a JSON object: %w", ErrMalformed)
	}
	return b, nil
}
