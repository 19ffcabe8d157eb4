package clientkeys

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// pollInterval is how often, at most, a Reloader looks at its file.
const pollInterval = time.Second

// Reloader checks keys against the key file at its path, reloading it
// when the file changes (another inode, size, modification time or mode),
// looked at no more than once a second, from whichever Check comes first.
// A file that no longer loads (missing, malformed, unsafe) leaves the
// previous keys in use and the error reported: logged once per version
// of the file and returned by Err. Safe for concurrent use.
type Reloader struct {
	path     string
	logger   *slog.Logger
	interval time.Duration

	set  atomic.Pointer[Set]
	err  atomic.Pointer[error] // nil: the last load worked
	next atomic.Int64          // Unix ns before which Check does not look

	mu   sync.Mutex // serialises loads; guards seen
	seen fileID     // the version of the file last loaded or tried
}

// NewReloader loads the key file at path, which must load. logger, nil
// for none, receives reloads and the errors that kept the previous keys
// in use; never a key.
func NewReloader(path string, logger *slog.Logger) (*Reloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, id, err := load(path)
	if err != nil {
		return nil, err
	}
	r := &Reloader{path: path, logger: logger, interval: pollInterval, seen: id}
	r.set.Store(s)
	r.next.Store(time.Now().Add(r.interval).UnixNano())
	return r, nil
}

// Check is (*Set).Check on the current keys, after reloading the file if
// it is time to look and it changed.
func (r *Reloader) Check(presented string) (id string, ok bool) {
	r.poll()
	return r.set.Load().Check(presented)
}

// Set returns the keys in use now.
func (r *Reloader) Set() *Set { return r.set.Load() }

// Err returns the error of the last load, nil if it worked.
func (r *Reloader) Err() error {
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Reload loads the file now, changed or not. On an error the previous
// keys stay in use and the error is returned (not logged).
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

// poll reloads the file if the interval has passed and the file changed.
// One caller per interval wins the right to look; the others go on with
// the current keys.
func (r *Reloader) poll() {
	now := time.Now().UnixNano()
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+int64(r.interval)) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if statID(r.path) == r.seen {
		return
	}
	if err := r.reloadLocked(); err != nil {
		r.logger.Error("gateway keys not reloaded; the previous keys stay in use", "path", r.path, "error", err)
	}
}

func (r *Reloader) reloadLocked() error {
	before := statID(r.path)
	s, id, err := load(r.path)
	if id == (fileID{}) {
		id = before // not openable: remember what stat saw, to not retry it
	}
	r.seen = id
	if err != nil {
		r.err.Store(&err)
		return err
	}
	r.set.Store(s)
	r.err.Store(nil)
	r.logger.Info("gateway keys reloaded", "path", r.path, "keys", s.Len())
	return nil
}

// statID is the fileID of path now, zero if it cannot be examined.
func statID(path string) fileID {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}
	}
	return idOf(fi)
}
