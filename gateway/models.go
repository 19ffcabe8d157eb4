package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/trustgate/trustgate/localmodel"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verify"
)

// States of a model, as the status shows them.
const (
	// ModelServed: requests for the model are routed (a local model's
	// files verified at start-up and still match).
	ModelServed = "served"
	// ModelNotNamed: the policy does not name the model (allowed only by a
	// default of audit): no request is ever routed to it.
	ModelNotNamed = "not named by the policy"
	// ModelFailed: a local model's files drifted from what was verified:
	// no request is routed to it until the gateway restarts and verifies
	// it again.
	ModelFailed = StateFailed
)

// model is one model of the stack as the gateway serves it: the policy's
// entry for it and, for a model with a file or folder here, what was
// measured and verified at start-up. The gateway runs no model; it routes
// to the providers that serve it (a local server, for a local model), and
// watches a local model's files for drift as it watches plugins.
type model struct {
	spec     stack.Model
	pol      *policy.Component       // nil: the policy does not name it
	measured *localmodel.Measurement // nil: served by a provider only
	size     int64                   // a local model's files' total size, as verified

	// failed is set, once and for good, when the files drifted: read on
	// every request without a lock.
	failed atomic.Bool

	mu       sync.Mutex
	verified bool   // the policy's decision
	audit    string // why it is allowed though denied (audit mode)
	state    string
	reason   string
}

func (m *model) subject() string { return stack.KindModel + "/" + m.spec.Name }

// routable reports whether requests may go to the model, and why not.
func (m *model) routable() (bool, string) {
	if m.pol == nil {
		return false, ModelNotNamed
	}
	if !m.failed.Load() {
		return true, ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return false, m.reason
}

// collectModels pairs every model of the stack with its policy entry and, for a
// local one, its measurement (from m, the deployment as measured for the
// policy) and its files' total size, for the drift watcher's cheap first
// check.
func (g *Gateway) collectModels(measured []verify.Measured) ([]*model, error) {
	root, err := os.OpenRoot(g.stack.Source.Dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var out []*model
	for _, spec := range g.stack.Models {
		m := &model{spec: spec, pol: g.policy.Component(stack.KindModel, spec.Name), state: ModelServed}
		if m.pol == nil {
			m.state = ModelNotNamed
		}
		i := slices.IndexFunc(measured, func(c verify.Measured) bool { return c.Kind == stack.KindModel && c.Name == spec.Name })
		if i >= 0 && measured[i].Model != nil {
			m.measured = measured[i].Model
			if m.size, err = filesSize(root, filepath.FromSlash(spec.File)); err != nil {
				return nil, fmt.Errorf("model %q: %w", spec.Name, err)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// filesSize is the total size of the regular files at name in root: the
// file itself, or those of the folder.
func filesSize(root *os.Root, name string) (int64, error) {
	return regularSize(root.FS(), filepath.ToSlash(name))
}

// recheckModels measures every local model again and compares it with
// what was verified; a model whose files (or signature) changed drifted.
func (g *Gateway) recheckModels(ctx context.Context, root *os.Root) {
	for _, m := range g.models {
		if ok, _ := m.routable(); !ok || m.measured == nil {
			continue // drifted already (for good), never routed, or remote
		}
		if err := m.onDisk(ctx, g.stack.Source.Dir, root); err != nil {
			if ctx.Err() != nil {
				return
			}
			g.modelDrifted(m, err)
		}
	}
}

// onDisk checks the model's files where the manifest says they are: first
// that they hold no more bytes than were verified (a swap for a huge file
// is drift at once, not an hour of hashing), then the same measurement as
// at start-up.
func (m *model) onDisk(ctx context.Context, dir string, root *os.Root) error {
	name := filepath.FromSlash(m.spec.File)
	fi, err := root.Stat(name)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if err := treeNoLarger(root, name, m.size); err != nil {
			return err
		}
	} else if fi.Size() != m.size {
		return fmt.Errorf("%w: %d bytes, verified %d", ErrSize, fi.Size(), m.size)
	}
	now, err := localmodel.Measure(ctx, dir, m.spec)
	if err != nil {
		return err
	}
	return m.measured.Same(now)
}

// modelDrifted handles a local model whose files no longer match what was
// verified: it is logged, reported to the agents and the audit log, and no
// request is routed to it again; under onDrift: stop the gateway stops.
func (g *Gateway) modelDrifted(m *model, err error) {
	m.mu.Lock()
	already := m.state == ModelFailed
	m.state, m.reason = ModelFailed, driftPrefix+err.Error()
	m.failed.Store(true)
	m.mu.Unlock()
	if already {
		return
	}
	g.reportDrift(m.subject(), err, "drift: the model's files differ from what was verified; no request is routed to it until the gateway restarts")
	if m.pol.DriftAction() == policy.OnDriftStop {
		g.shutdown(&Refusal{Step: "drift", Component: m.subject(), Rule: "onDrift: stop", Err: err})
	}
}

// ModelStatus is one model of the stack: where it is served from, what was
// verified of its files, and whether requests are routed to it.
type ModelStatus struct {
	Name      string   `json:"name"`
	Provider  string   `json:"provider,omitempty"`
	Fallbacks []string `json:"fallbacks,omitempty"`
	// Digest is a local model's verified digest; Signed says it was
	// verified by its OMS signature.
	Digest   string `json:"digest,omitempty"`
	Signed   bool   `json:"signed,omitempty"`
	Verified bool   `json:"verified"`
	State    string `json:"state"`
	Reason   string `json:"reason,omitempty"`
}

func (m *model) status() ModelStatus {
	st := ModelStatus{Name: m.spec.Name, Provider: m.spec.Provider, Fallbacks: m.spec.Fallbacks}
	if m.measured != nil {
		st.Digest, st.Signed = m.measured.Digest.String(), m.measured.Signed()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st.Verified, st.State, st.Reason = m.verified, m.state, m.reason
	if st.Reason == "" {
		st.Reason = m.audit
	}
	return st
}
