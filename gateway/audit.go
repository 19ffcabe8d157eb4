package gateway

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/audit"
	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/policy"
)

// Audit trail limits.
const (
	// auditQueue bounds the events waiting to be written: a slow disk makes
	// the trail fail (and the policy decide), never a request wait.
	auditQueue = 4096
	// auditCheckpointEvery signs the chain at least this often.
	auditCheckpointEvery = 10 * time.Second
	maxAuditKey          = 64 << 10
)

// ErrAuditFailing means the audit log cannot be written.
var ErrAuditFailing = errors.New("the audit log cannot be written")

// auditTrail appends the gateway's events (requests, verification, drift,
// children's exits) to the hash-chained log of package audit, from a
// bounded queue on a goroutine of its own. A write that fails, or a queue
// that overflows, marks the trail failing for good (until the gateway
// restarts); the policy's onAuditFailure says whether the gateway then
// refuses requests or serves on.
type auditTrail struct {
	w      *audit.Writer
	refuse bool
	queue  chan map[string]any
	done   chan struct{}

	mu     sync.RWMutex // held (write) to close the queue
	closed bool

	failing atomic.Pointer[string]
	dropped atomic.Int64
}

// openAudit opens (or resumes) the log gatewayConfig names; nil when it
// names none. A log that does not verify under the key is refused: start a
// new file rather than extend one that was changed.
func openAudit(g *Gateway) (*auditTrail, error) {
	cfg := g.stack.GatewayConfig
	if cfg.AuditLog == "" {
		return nil, nil
	}
	signer, err := auditSigner(cfg.AuditKey)
	if err != nil {
		return nil, err
	}
	w, err := audit.Open(cfg.AuditLog, signer.Signer(), audit.Options{})
	if err != nil {
		return nil, err
	}
	if tail := w.Resumed().UnsignedTail; tail > 0 {
		g.log.Warn("the audit log had entries no checkpoint signed; they are signed as found", "entries", tail)
	}
	t := &auditTrail{w: w, refuse: g.policy.OnAuditFailure != policy.AuditContinue,
		queue: make(chan map[string]any, auditQueue), done: make(chan struct{})}
	go t.run(g)
	return t, nil
}

// auditSigner reads the checkpoint key: a private key only its owner may
// read.
func auditSigner(path string) (*attest.Key, error) {
	f, err := readfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit key %q may be read by others (mode %o); want 0600", path, fi.Mode().Perm())
	}
	data, err := readfile.Read(path, maxAuditKey)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	k, err := attest.ParsePrivateKey(data, nil)
	if err != nil {
		return nil, fmt.Errorf("audit key %q: %w", path, err)
	}
	return k, nil
}

func (t *auditTrail) run(g *Gateway) {
	defer close(t.done)
	tick := time.NewTicker(auditCheckpointEvery)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-t.queue:
			if !ok {
				return
			}
			if t.failing.Load() != nil {
				t.dropped.Add(1)
				continue
			}
			if err := t.w.Append(ev); err != nil {
				t.fail(g, err)
			}
		case <-tick.C:
			if t.failing.Load() == nil {
				if err := t.w.Checkpoint(); err != nil {
					t.fail(g, err)
				}
			}
		}
	}
}

func (t *auditTrail) fail(g *Gateway, err error) {
	msg := err.Error()
	if t.failing.CompareAndSwap(nil, &msg) {
		g.log.Error("the audit log cannot be written", "error", msg, "refusing requests", t.refuse)
	}
}

// record queues one event; a full queue fails the trail.
func (t *auditTrail) record(g *Gateway, ev map[string]any) {
	if t == nil {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return
	}
	select {
	case t.queue <- ev:
	default:
		t.dropped.Add(1)
		t.fail(g, errors.New("the audit queue is full: the log is not written fast enough"))
	}
}

// usable reports whether requests may be served: the trail works, or the
// policy says to go on without it.
func (t *auditTrail) usable() bool {
	return t == nil || !t.refuse || t.failing.Load() == nil
}

// AuditStatus is the audit trail's state in the status answer.
type AuditStatus struct {
	Enabled bool   `json:"enabled"`
	Failing string `json:"failing,omitempty"`
	Dropped int64  `json:"dropped,omitempty"`
	Refuses bool   `json:"refusesRequestsOnFailure"`
}

func (t *auditTrail) status() *AuditStatus {
	if t == nil {
		return nil
	}
	st := &AuditStatus{Enabled: true, Dropped: t.dropped.Load(), Refuses: t.refuse}
	if f := t.failing.Load(); f != nil {
		st.Failing = *f
	}
	return st
}

// close writes what is queued and a last checkpoint.
func (t *auditTrail) close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	close(t.queue)
	t.mu.Unlock()
	<-t.done
	_ = t.w.Close()
}
