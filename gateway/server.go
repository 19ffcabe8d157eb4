package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
)

// InsecureDevWarning is in every answer of a gateway started with
// Options.InsecureDev.
const InsecureDevWarning = "INSECURE DEVELOPMENT MODE: the gateway's own executable was not verified"

// Status is the gateway's verification summary, served at
// /v1/trustgate/status.
type Status struct {
	Ready       bool              `json:"ready"`
	InsecureDev bool              `json:"insecureDev,omitempty"`
	Warning     string            `json:"warning,omitempty"`
	Deployment  string            `json:"deployment"`
	Manifest    digest.Digest     `json:"manifestDigest"`
	Policy      PolicyStatus      `json:"policy"`
	Gateway     ComponentStatus   `json:"gateway"`
	Components  []ComponentStatus `json:"components"`
	// Models are the stack's models: where each is served from, what was
	// verified of a local one's files, and whether requests go to it.
	Models    []ModelStatus `json:"models,omitempty"`
	LastCheck time.Time     `json:"lastCheck"`
	Listen    string        `json:"listen,omitempty"`
	Audit     *AuditStatus  `json:"audit,omitempty"`
}

// PolicyStatus names the policy in force.
type PolicyStatus struct {
	Name    string        `json:"name"`
	Version uint64        `json:"version"`
	Digest  digest.Digest `json:"digest"`
	Expires time.Time     `json:"expires"`
}

// ComponentStatus is one component: what was verified and how it runs.
type ComponentStatus struct {
	Kind        string       `json:"kind"`
	Name        string       `json:"name"`
	Role        string       `json:"role,omitempty"`
	Digest      string       `json:"digest"`
	Verified    bool         `json:"verified"`
	State       string       `json:"state,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	PID         int          `json:"pid,omitempty"`
	Restarts    int          `json:"restarts,omitempty"`
	Interpreter *interpreter `json:"interpreter,omitempty"`
	Grants      []string     `json:"grants,omitempty"` // names only, never values
}

// Status reports the gateway's state now.
func (g *Gateway) Status() Status {
	g.mu.Lock()
	st := Status{Ready: g.ready, LastCheck: g.lastCheck}
	if g.listen != nil {
		st.Listen = g.listen.String()
	}
	g.mu.Unlock()
	st.Deployment, st.Manifest = g.stack.Metadata.Name, g.stack.Source.Digest
	st.Audit = g.audit.status()
	st.Policy = PolicyStatus{Name: g.policy.Metadata.Name, Version: g.policy.Version, Digest: g.policy.Source().Digest, Expires: g.policy.ExpiresAt().UTC()}
	st.Gateway = ComponentStatus{Kind: stack.KindGateway, Name: g.stack.Gateway.Name, Role: stack.RoleGateway, Digest: g.self.String(), Verified: !g.opts.InsecureDev, State: StateRunning}
	if g.opts.InsecureDev {
		st.InsecureDev, st.Warning = true, InsecureDevWarning
	}
	for _, c := range g.children {
		c.mu.Lock()
		cs := ComponentStatus{Kind: c.comp.Kind, Name: c.comp.Name, Role: c.comp.Role, Digest: c.digest.String(), Verified: c.verified,
			State: c.state, Reason: c.reason, PID: c.pid, Restarts: c.restarts, Grants: grantNames(c.grants)}
		if cs.Reason == "" {
			cs.Reason = c.audit
		}
		if c.interp != nil {
			cs.Interpreter = &interpreter{Path: c.interp.Path, Digest: c.interp.Digest}
		}
		c.mu.Unlock()
		st.Components = append(st.Components, cs)
	}
	for _, m := range g.models {
		st.Models = append(st.Models, m.status())
	}
	return st
}

// Handler serves /healthz, /readyz and /v1/trustgate/status. In insecure
// development mode every answer carries the warning, in a header and in
// its body.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		g.answer(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		g.mu.Lock()
		ready := g.ready
		g.mu.Unlock()
		if !ready {
			g.answer(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready"})
			return
		}
		g.answer(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	mux.HandleFunc("GET /v1/trustgate/status", func(w http.ResponseWriter, _ *http.Request) {
		g.answer(w, http.StatusOK, g.Status())
	})
	if g.router != nil {
		g.router.register(mux)
	}
	if g.metrics != nil {
		mux.Handle("GET /metrics", g.metrics.handler())
	}
	return recoverPanics(g.log, mux)
}

// recoverPanics answers a request whose handler panicked with a 500 in
// OpenAI's shape, and logs the panic by its type only: its value may hold
// anything the handler held, a key included. http.ErrAbortHandler (the
// proxy's way to drop a broken stream) is passed on.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			log.Error("panic while serving a request; answered 500", "kind", fmt.Sprintf("%T", v), "path", r.URL.Path)
			writeError(w, http.StatusInternalServerError, "The gateway failed while serving this request.", "api_error", "", "internal_error")
		}()
		next.ServeHTTP(w, r)
	})
}

func (g *Gateway) answer(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	if g.opts.InsecureDev {
		w.Header().Set("X-Trustgate-Warning", InsecureDevWarning)
		if m, ok := body.(map[string]any); ok {
			m["warning"] = InsecureDevWarning
		}
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}

// sweepLoop sweeps orphans every second until ctx ends.
func (g *Gateway) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.sweepOrphans()
		}
	}
}

// Serve is step 6: it binds the listener the manifest names, serves until
// ctx ends or the gateway must stop (drift under onDrift: stop, the policy
// expired), then stops every child. onListen, when not nil, is told the
// bound address. It returns nil after ctx ended, and the reason otherwise.
func (g *Gateway) Serve(ctx context.Context, onListen func(net.Addr)) error {
	defer g.Close()
	cfg := g.stack.GatewayConfig
	addr := cfg.Listen
	if addr == "" {
		addr = stack.DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return refuse(StepListen, addr, err)
	}
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: cfg.Duration(cfg.ReadHeaderTimeout, 10*time.Second),
		IdleTimeout:       cfg.Duration(cfg.IdleTimeout, 120*time.Second),
	}
	watcher := g.newWatcher()
	g.mu.Lock()
	g.ready, g.listen = true, ln.Addr()
	g.mu.Unlock()
	g.log.Info("listening", "step", StepListen, "addr", ln.Addr().String(), "insecureDev", g.opts.InsecureDev)
	if onListen != nil {
		onListen(ln.Addr())
	}
	g.emit("gateway.ready", map[string]any{"addr": ln.Addr().String(), "policyVersion": g.policy.Version, "policyDigest": g.policy.Source().Digest.String()})

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go g.watch(wctx, watcher)
	if g.opts.ReapOrphans {
		go g.sweepLoop(wctx)
	}
	expiry := time.NewTimer(time.Until(g.policy.ExpiresAt()))
	defer expiry.Stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var result error
	select {
	case <-ctx.Done():
	case <-g.stopped:
		g.mu.Lock()
		result = g.stopErr
		g.mu.Unlock()
	case <-expiry.C:
		result = &Refusal{Step: "running", Component: "policy " + g.policy.Metadata.Name, Rule: "expires",
			Expected: "a policy in force", Found: "expired at " + g.policy.ExpiresAt().UTC().Format(time.RFC3339), Err: policy.ErrExpired}
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			result = fmt.Errorf("serving: %w", err)
		}
	}
	g.mu.Lock()
	g.ready = false
	g.mu.Unlock()
	if result != nil {
		g.log.Error("stopping", "reason", result.Error())
	} else {
		g.log.Info("stopping")
	}
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Duration(cfg.ShutdownTimeout, 10*time.Second))
	defer scancel()
	_ = srv.Shutdown(sctx)
	return result
}
