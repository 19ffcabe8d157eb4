package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/policy"
)

// DefaultRecheckInterval is how often files are hashed again when the
// manifest's gatewayConfig.recheckInterval is not set.
const DefaultRecheckInterval = 30 * time.Second

// newWatcher watches, through fsnotify, the folders that hold every
// plugin's and agent's files and every local model's (addWatches); nil
// when file change notification is unavailable. It is made before the
// gateway listens, so that no change after that goes unseen.
func (g *Gateway) newWatcher() *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		g.log.Warn("file change notification unavailable; rechecking on the timer only", "error", err)
		return nil
	}
	g.addWatches(w)
	return w
}

// watch hashes every plugin's and agent's files, and every local model's,
// again on a timer and soon after any change w (when not nil) reports,
// until ctx ends; it closes w.
func (g *Gateway) watch(ctx context.Context, w *fsnotify.Watcher) {
	cfg := g.stack.GatewayConfig
	ticker := time.NewTicker(cfg.Duration(cfg.RecheckInterval, DefaultRecheckInterval))
	defer ticker.Stop()
	var events <-chan fsnotify.Event
	if w != nil {
		defer w.Close()
		events = w.Events
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			g.recheck(ctx)
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			debounce.Reset(50 * time.Millisecond)
		case <-debounce.C:
			g.recheck(ctx)
		}
	}
}

// addWatches watches the folders that hold each component's files, and
// each snapshot.
func (g *Gateway) addWatches(w *fsnotify.Watcher) {
	add := func(dir string) {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = w.Add(p)
			}
			return nil
		})
	}
	for _, c := range g.children {
		p := filepath.Join(g.stack.Source.Dir, filepath.FromSlash(c.comp.Path))
		if c.snapshot != "" {
			add(p)
			add(filepath.Dir(c.snapshot))
		} else {
			_ = w.Add(filepath.Dir(p))
		}
	}
	for _, m := range g.models {
		if m.measured == nil {
			continue
		}
		p := filepath.Join(g.stack.Source.Dir, filepath.FromSlash(m.spec.File))
		_ = w.Add(filepath.Dir(p))
		add(p) // a folder's own folders (nothing for a file)
		if m.spec.Signature != "" {
			_ = w.Add(filepath.Dir(filepath.Join(g.stack.Source.Dir, filepath.FromSlash(m.spec.Signature))))
		}
	}
}

// recheck measures every child's files on disk (and its snapshot), and
// every local model's, against what was verified.
func (g *Gateway) recheck(ctx context.Context) {
	root, err := os.OpenRoot(g.stack.Source.Dir)
	if err != nil {
		g.log.Error("recheck: manifest folder", "error", err)
		return
	}
	defer root.Close()
	for _, c := range g.children {
		finding := c.onDisk(root)
		if c.checks == nil {
			continue // never started
		}
		select {
		case c.checks <- finding:
		case <-c.exited:
		case <-ctx.Done():
			return
		}
	}
	g.recheckModels(ctx, root)
	g.mu.Lock()
	g.lastCheck = g.now()
	g.mu.Unlock()
}

// onDisk hashes the child's file or folder where the manifest says it is,
// its snapshot, and its interpreter, and says which differs.
func (c *child) onDisk(root *os.Root) error {
	name := filepath.FromSlash(c.comp.Path)
	if c.snapshot == "" {
		return sameFile(root, name, c.size, c.digest)
	}
	if err := treeNoLarger(root, name, c.size); err != nil {
		return err
	}
	d, err := digest.Tree(root, name)
	if err != nil {
		return err
	}
	if err := d.Verify(c.digest); err != nil {
		return err
	}
	snap, err := os.OpenRoot(filepath.Dir(c.snapshot))
	if err != nil {
		return err
	}
	defer snap.Close()
	if d, err = digest.Tree(snap, filepath.Base(c.snapshot)); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := d.Verify(c.digest); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	dir, err := os.OpenRoot(filepath.Dir(c.interp.Path))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := sameFile(dir, filepath.Base(c.interp.Path), c.interp.size, c.interp.Digest); err != nil {
		return fmt.Errorf("interpreter %s: %w", c.interp.Path, err)
	}
	return nil
}

// ErrSize means a file or folder no longer has the size that was
// verified: drift, found without reading it all.
var ErrSize = errors.New("size differs from what was verified")

// sameFile checks that the file name in root has size bytes and the
// digest want, reading at most size+1 bytes: a file swapped for a huge one
// is drift at once, not an hour of hashing that holds up every other
// check.
func sameFile(root *os.Root, name string, size int64, want digest.Digest) error {
	f, err := readfile.OpenIn(root, name)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.Size() != size {
		return fmt.Errorf("%w: %d bytes, verified %d", ErrSize, fi.Size(), size)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, size+1))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: %d bytes read, verified %d", ErrSize, n, size)
	}
	got, err := digest.Parse("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if err != nil {
		return err
	}
	return got.Verify(want)
}

// treeNoLarger refuses a folder whose regular files hold more bytes than
// the verified snapshot, before its tree digest is computed. (A link
// inside the tree is followed by the digest, as when it was verified.)
func treeNoLarger(root *os.Root, name string, size int64) error {
	var total int64
	return fs.WalkDir(root.FS(), filepath.ToSlash(name), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if total += fi.Size(); total > size {
				return fmt.Errorf("%w: more than the %d bytes verified", ErrSize, size)
			}
		}
		return nil
	})
}

const driftPrefix = "drift: "

func isDrift(reason string) bool {
	return len(reason) >= len(driftPrefix) && reason[:len(driftPrefix)] == driftPrefix
}

// drifted handles a child whose files no longer match what was verified:
// it is logged, reported to the agents, stopped and not restarted; under
// onDrift: stop the gateway stops.
func (g *Gateway) drifted(c *child, err error) {
	c.mu.Lock()
	already := c.state == StateFailed && isDrift(c.reason)
	c.mu.Unlock()
	if already {
		return
	}
	g.reportDrift(c.subject(), err, "drift: files differ from what was verified; the component is stopped and will not be restarted from them")
	c.fail(driftPrefix + err.Error())
	if c.pol.DriftAction() == policy.OnDriftStop {
		g.shutdown(&Refusal{Step: "drift", Component: c.subject(), Rule: "onDrift: stop", Err: err})
	}
}

// reportDrift logs a component's drift (what was expected and found, for
// a digest mismatch), tells the agents and counts it.
func (g *Gateway) reportDrift(subject string, err error, msg string) {
	attrs := []any{"component", subject, "error", err.Error()}
	if mm := (*digest.MismatchError)(nil); errors.As(err, &mm) {
		attrs = append(attrs, "expected", mm.Expected.String(), "found", mm.Actual.String())
	}
	g.log.Error(msg, attrs...)
	g.emit("component.drift", map[string]any{"component": subject, "error": err.Error()})
	g.metrics.drifted(subject)
}

// shutdown stops the gateway with err; the first error wins.
func (g *Gateway) shutdown(err error) {
	g.stopOnce.Do(func() {
		g.mu.Lock()
		g.stopErr = err
		g.mu.Unlock()
		close(g.stopped)
	})
}
