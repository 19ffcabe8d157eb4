package admission

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/verifier"
)

// PolicySource is the signed policy the webhook answers from: loaded and
// verified at start, then re-read whenever its files change. A policy that
// fails to load (unsigned, tampered, expired, for another deployment,
// older than the one in force) leaves the one in force as it is.
type PolicySource struct {
	// Path and Bundle are the policy file and its Sigstore bundle (empty:
	// Path + ".bundle.json").
	Path, Bundle string
	// Deployment is the name the policy must govern (its metadata.name):
	// a policy signed for another deployment is refused.
	Deployment string
	// Trust is who may sign the policy.
	Trust policy.TrustRoot
	// StatePath remembers the newest policy version accepted, across
	// restarts (see policy.State).
	StatePath string
	// Log receives reload results; nil discards them.
	Log *slog.Logger
	// OnReload, when set, is told of each reload attempt: the policy in
	// force afterwards, and the error that refused a new one.
	OnReload func(p *policy.Policy, err error)

	cur  atomic.Pointer[policy.Policy]
	mu   sync.Mutex // serializes loads
	seen [sha256.Size]byte
	// refused remembers the files last refused and why, so that a bad
	// policy left in place is verified, logged and counted once, not at
	// every recheck.
	refused    [sha256.Size]byte
	refusedErr error
}

// Current returns the policy in force (nil before Load succeeds).
func (s *PolicySource) Current() *policy.Policy { return s.cur.Load() }

// Load reads and verifies the policy now. At start it must succeed; later
// (Reload) a failure keeps the policy in force. Files that have not
// changed since the last load are not verified again.
func (s *PolicySource) Load(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	bundlePath := s.bundlePath()
	sum, err := s.fingerprint(bundlePath)
	if err != nil {
		return err
	}
	cur := s.cur.Load()
	switch {
	case cur != nil && sum == s.seen:
		return nil
	case cur != nil && s.refusedErr != nil && sum == s.refused:
		return errUnchanged
	}
	p, err := verifier.Policy(s.Path, bundlePath, s.Trust, s.Deployment, s.StatePath, now)
	if err == nil && cur != nil {
		err = newer(cur, p)
	}
	if err != nil {
		s.refused, s.refusedErr = sum, err
		return err
	}
	s.seen, s.refusedErr = sum, nil
	s.cur.Store(p)
	return nil
}

// errUnchanged: the files are the ones last refused.
var errUnchanged = errors.New("the policy files are the ones last refused")

// newer refuses a policy older than the one in force, or the same version
// with other content, even when the state file was lost (an emptyDir after
// a restart of the node).
func newer(cur, p *policy.Policy) error {
	switch {
	case p.Version < cur.Version:
		return fmt.Errorf("%w: %w: version %d, version %d is in force", verifier.ErrDenied, policy.ErrRollback, p.Version, cur.Version)
	case p.Version == cur.Version && p.Source().Digest != cur.Source().Digest:
		return fmt.Errorf("%w: %w: version %d is in force with other content; raise the version", verifier.ErrDenied, policy.ErrRollback, p.Version)
	}
	return nil
}

// fingerprint hashes the policy and its bundle as they are now.
func (s *PolicySource) fingerprint(bundlePath string) ([sha256.Size]byte, error) {
	h := sha256.New()
	for _, f := range []struct {
		path string
		max  int64
	}{{s.Path, policy.MaxPolicySize}, {bundlePath, attest.MaxBundleSize}} {
		data, err := readfile.Read(f.path, f.max)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return [sha256.Size]byte{}, err
		}
		fmt.Fprintf(h, "%d:", len(data))
		h.Write(data)
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

func (s *PolicySource) bundlePath() string {
	if s.Bundle != "" {
		return s.Bundle
	}
	return s.Path + ".bundle.json"
}

// Reload loads the policy again and reports the result to the log and to
// OnReload. It returns the error that refused a new policy.
func (s *PolicySource) Reload(now time.Time) error {
	before := s.cur.Load()
	err := s.Load(now)
	if errors.Is(err, errUnchanged) {
		return nil // refused, logged and counted already
	}
	after := s.cur.Load()
	log := s.logger()
	switch {
	case err != nil:
		log.Error("policy refused; the policy in force stays", "file", s.Path, "err", err, "version", versionOf(after))
	case after != before:
		log.Info("policy reloaded", "file", s.Path, "version", after.Version, "digest", after.Source().Digest.String())
	default:
		return nil // unchanged
	}
	if s.OnReload != nil {
		s.OnReload(after, err)
	}
	return err
}

func (s *PolicySource) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return discard
}

func versionOf(p *policy.Policy) uint64 {
	if p == nil {
		return 0
	}
	return p.Version
}

// Watch reloads the policy when a file in its folders changes, and every
// interval in any case (a ConfigMap volume swaps a symlink, which some
// filesystems do not report), until ctx ends.
func (s *PolicySource) Watch(ctx context.Context, interval time.Duration) {
	w, err := fsnotify.NewWatcher()
	var events chan fsnotify.Event
	var errs chan error
	if err == nil {
		defer w.Close()
		for _, dir := range []string{filepath.Dir(s.Path), filepath.Dir(s.bundlePath())} {
			_ = w.Add(dir) // the ticker still catches changes
		}
		events, errs = w.Events, w.Errors
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
		case err := <-errs:
			s.logger().Warn("watching the policy's folders; the recheck still runs", "err", err)
			continue
		case <-tick.C:
		}
		if err := s.Reload(time.Now()); err != nil {
			continue // logged and counted by Reload; the policy in force stays
		}
	}
}
