package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/gather"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verify"
)

// Options configure a gateway. Stack, Policy, Trust and DataDir are
// required; every other field has the default its comment gives. None of
// them changes what runs or where a credential goes without being checked:
// what runs is in the manifest, which the policy binds; where a credential
// goes is in the manifest's providers, which the policy binds to hosts.
type Options struct {
	// Stack is the stack manifest's path.
	Stack string
	// Policy is the policy's path; PolicyBundle its Sigstore bundle
	// (empty: Policy + ".bundle.json").
	Policy, PolicyBundle string
	// Trust is who may sign the policy, and the Sigstore trust material
	// keyless signatures are checked against.
	Trust policy.TrustRoot
	// Bundles are attestation bundle files (SBOMs, provenance, verification
	// summaries) to verify the components with.
	Bundles []string
	// DataDir holds the policy rollback state and the children's private
	// working folders and snapshots. It must belong to the gateway's user
	// and be closed to everyone else.
	DataDir string
	// MinPolicyVersion is the lowest policy version accepted, whatever the
	// rollback state says (a deleted state file cannot lower it).
	MinPolicyVersion uint64
	// ReapOrphans kills and reaps, while serving, every child of the
	// gateway it did not start: with Harden's child subreaper, what a
	// plugin or agent left behind outside its process group.
	ReapOrphans bool
	// InsecureDev waives the check of the gateway's own executable, for a
	// development build nobody signed. Every status answer says so.
	InsecureDev bool
	// Registry is how registries of the manifest's images are reached.
	Registry pin.Registry
	// Logger receives the gateway's log; nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Environ is the environment grants are taken from; nil means
	// os.Environ().
	Environ []string

	// afterVerify, when set (tests), runs after verification and before
	// any child starts: the moment a swap attack would aim for.
	afterVerify func()
}

// Limits on what the gateway copies before it runs it.
const (
	// MaxComponentSize bounds one plugin or agent executable.
	MaxComponentSize = 1 << 30
	// MaxTreeSize bounds a plugin folder.
	MaxTreeSize = 2 << 30
)

// Gateway is a verified deployment whose children run. Get one from Start;
// Serve binds the listener.
type Gateway struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	stack    *stack.Stack
	policy   *policy.Policy
	self     digest.Digest
	children []*child
	// models are the stack's models: what the router serves, and what the
	// watcher checks of the local ones.
	models  []*model
	runDir  string
	router  *router
	metrics *metrics
	audit   *auditTrail
	// hasAgents is set once the children are known: whether any event has
	// an agent to go to.
	hasAgents bool
	// socketDir holds the plugins' private socket folders.
	socketDir string
	// startMu is held (read) while a child is forked and not yet tracked,
	// and (write) by the orphan sweep.
	startMu sync.RWMutex
	procMu  sync.Mutex
	procs   map[int]bool
	env     map[string]string

	mu        sync.Mutex
	ready     bool
	lastCheck time.Time
	stopErr   error
	stopped   chan struct{}
	stopOnce  sync.Once
	listen    net.Addr
}

// Start runs steps 1 to 5 of the lifecycle (see the package doc): after it
// returns without error, every plugin and agent runs from verified bytes
// and nothing listens yet. A refusal is a *Refusal.
func Start(ctx context.Context, opts Options) (_ *Gateway, err error) {
	g, err := verified(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	if opts.afterVerify != nil {
		opts.afterVerify()
	}
	if g.audit, err = openAudit(g); err != nil {
		return nil, refuse(StepConfig, "audit log "+g.stack.GatewayConfig.AuditLog, err)
	}
	g.emit("gateway.verified", g.verifiedEvent())
	// 5. start
	for _, c := range g.children {
		if err := g.startChild(ctx, c); err != nil {
			return nil, refuse(StepStart, c.subject(), err)
		}
	}
	// The routes, and the provider keys read once.
	g.metrics = newMetrics(g)
	if g.router, err = newRouter(g); err != nil {
		return nil, refuse(StepStart, "router", err)
	}
	g.mu.Lock()
	g.lastCheck = g.now()
	g.mu.Unlock()
	return g, nil
}

// verified runs steps 1 to 4: on success every plugin and agent is sealed
// and verified, and nothing runs yet.
func verified(ctx context.Context, opts Options) (_ *Gateway, err error) {
	if opts.Stack == "" || opts.Policy == "" || opts.DataDir == "" {
		return nil, errors.New("the gateway needs a stack manifest, a policy and a data folder")
	}
	if len(opts.Trust.Keys) == 0 && len(opts.Trust.Identities) == 0 {
		return nil, errors.New("no policy trust root: give a key or a keyless identity that may sign the policy")
	}
	// Absolute, since the children (a plugin dialing its socket under
	// it) do not run in the gateway's working folder.
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	opts.DataDir = dataDir
	g := &Gateway{opts: opts, log: opts.Logger, now: opts.Now, stopped: make(chan struct{})}
	if g.log == nil {
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.env = environ(opts.Environ)
	if err := checkPrivateDir(opts.DataDir); err != nil {
		return nil, refuse(StepConfig, "data folder "+opts.DataDir, err)
	}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()

	// 1. self: the executable is hashed while steps 2 to 4 read and seal
	// the rest (it only measures; the policy judges the digest in step 4,
	// with everything else).
	selfDone := make(chan struct{})
	var selfDigest digest.Digest
	var selfErr error
	go func() {
		defer close(selfDone)
		selfDigest, selfErr = measureSelf()
	}()
	g.log.Info("measuring own executable", "step", StepSelf, "path", selfExe)
	// Never leave the hash running behind a refusal.
	defer func() { <-selfDone }()

	// 2. policy (the manifest is parsed first: the policy governs the
	// deployment the manifest names, and nothing of it runs yet).
	s, err := stack.Load(opts.Stack)
	if err != nil {
		return nil, refuse(StepConfig, "stack manifest "+opts.Stack, err)
	}
	g.stack = s
	p, err := g.loadPolicy(s.Metadata.Name)
	if err != nil {
		return nil, err
	}
	g.policy = p
	g.log.Info("policy verified", "step", StepPolicy, "policy", p.Metadata.Name, "version", p.Version,
		"digest", p.Source().Digest.String(), "expires", p.ExpiresAt().UTC().Format(time.RFC3339))

	// 3. config
	if err := g.checkConfig(); err != nil {
		return nil, err
	}
	g.log.Info("configuration loaded", "step", StepConfig, "manifest", s.Source.Digest.String(),
		"plugins", len(s.Plugins), "agents", len(s.Agents), "providers", len(s.Providers))

	// 4. verify
	if err := g.verify(ctx, func() error {
		<-selfDone
		if selfErr != nil {
			return refuse(StepSelf, "gateway", selfErr)
		}
		g.self = selfDigest
		g.log.Info("measured own executable", "step", StepSelf, "digest", selfDigest.String())
		return nil
	}); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gateway) loadPolicy(deployment string) (*policy.Policy, error) {
	statePath := filepath.Join(g.opts.DataDir, "policy-state.json")
	p, err := loadSignedPolicy(g.opts, deployment, statePath, g.now())
	if err != nil {
		return nil, &Refusal{Step: StepPolicy, Component: "policy " + g.opts.Policy, Err: err}
	}
	if p.Version < g.opts.MinPolicyVersion {
		return nil, &Refusal{Step: StepPolicy, Component: "policy " + g.opts.Policy, Rule: "minimum policy version",
			Expected: fmt.Sprintf(">= %d", g.opts.MinPolicyVersion), Found: fmt.Sprint(p.Version)}
	}
	return p, nil
}

// checkConfig refuses what the gateway cannot run as verified: a component
// from an image (the gateway runs files and folders), a folder started by
// anything but a Python module.
func (g *Gateway) checkConfig() error {
	for _, c := range append(append([]stack.Component{}, g.stack.Plugins...), g.stack.Agents...) {
		if c.Image != "" {
			return &Refusal{Step: StepConfig, Component: c.Kind + "/" + c.Name, Rule: "runs from",
				Expected: "a file or folder the gateway can seal", Found: "image " + c.Image}
		}
	}
	if g.stack.Gateway.Image != "" {
		return &Refusal{Step: StepConfig, Component: "gateway/" + g.stack.Gateway.Name, Rule: "runs from",
			Expected: "the gateway's executable by path", Found: "image " + g.stack.Gateway.Image}
	}
	if l := g.stack.GatewayConfig.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return refuse(StepConfig, "gatewayConfig.listen", err)
		}
	}
	return nil
}

// verify seals every plugin and agent, measures the deployment from those
// copies and the running executable, and applies the policy.
func (g *Gateway) verify(ctx context.Context, self func() error) error {
	runDir, err := os.MkdirTemp(g.opts.DataDir, "run-")
	if err != nil {
		return refuse(StepVerify, "data folder", err)
	}
	g.runDir = runDir
	if g.socketDir, err = socketBase(runDir); err != nil {
		return refuse(StepVerify, "plugin socket folder", err)
	}
	children, err := g.seal(ctx)
	g.children = children
	for _, c := range children {
		g.hasAgents = g.hasAgents || c.events != nil
	}
	if err != nil {
		return err
	}
	if err := self(); err != nil {
		return err
	}
	byName := map[string]*child{}
	for _, c := range children {
		byName[c.comp.Kind+"/"+c.comp.Name] = c
	}
	measure := func(_ context.Context, _ *os.Root, c stack.Component) (digest.Digest, error) {
		if c.Kind == stack.KindGateway {
			return g.self, nil
		}
		if ch, ok := byName[c.Kind+"/"+c.Name]; ok {
			return ch.digest, nil
		}
		return digest.Digest{}, fmt.Errorf("%s %q was not sealed", c.Kind, c.Name)
	}
	m, err := gather.StackMeasured(ctx, g.stack, g.opts.Registry, measure)
	if err != nil {
		return refuse(StepVerify, "deployment", err)
	}
	if g.models, err = g.collectModels(m.Components); err != nil {
		return refuse(StepVerify, "models", err)
	}
	evidence, err := gather.Files(g.opts.Bundles...)
	if err != nil {
		return refuse(StepVerify, "bundle", err)
	}
	attached, err := gather.Attached(ctx, m, g.opts.Registry)
	if err != nil {
		return refuse(StepVerify, "attestations beside the images", err)
	}
	report := verify.Check(verify.Deployment{
		Policy: g.policy, Material: g.opts.Trust.Material, Manifest: m.Manifest,
		Components: m.Components, Providers: m.Providers,
		Evidence: append(evidence, attached...), Now: g.now(),
	})
	for _, e := range report.Evidence {
		if e.Verified {
			g.log.Info("evidence verified", "step", StepVerify, "source", e.Source, "predicateType", e.PredicateType, "signers", e.Signers, "subjects", e.Subjects)
		} else {
			g.log.Warn("evidence not verified", "step", StepVerify, "source", e.Source, "error", e.Error)
		}
	}
	return g.decide(report)
}

// decide logs every decision and refuses the first one denied in enforce
// mode; it also hands each child the grants the policy decided.
func (g *Gateway) decide(r verify.Report) error {
	var first *Refusal
	for _, d := range r.Decisions {
		switch {
		case !d.Allowed && g.opts.InsecureDev && d.Subject == stack.KindGateway+"/"+g.stack.Gateway.Name:
			g.log.Warn(InsecureDevWarning, "step", StepVerify, "component", d.Subject, "rule", d.Rule, "expected", d.Expected, "found", d.Found)
		case d.Allowed:
			g.log.Info("verified", "step", StepVerify, "component", d.Subject)
		case d.Mode == policy.ModeAudit:
			g.log.Warn("allowed in audit mode", "step", StepVerify, "component", d.Subject, "rule", d.Rule, "expected", d.Expected, "found", d.Found)
		default:
			g.log.Error("denied", "step", StepVerify, "component", d.Subject, "rule", d.Rule, "expected", d.Expected, "found", d.Found)
			if first == nil {
				first = &Refusal{Step: StepVerify, Component: d.Subject, Rule: d.Rule, Expected: d.Expected, Found: d.Found}
			}
		}
		for _, m := range g.models {
			if m.subject() == d.Subject {
				m.mu.Lock()
				m.verified = d.Allowed
				if !d.Allowed {
					m.audit = fmt.Sprintf("allowed in audit mode: %s: expected %s, found %s", d.Rule, d.Expected, d.Found)
				}
				m.mu.Unlock()
			}
		}
		for _, c := range g.children {
			if c.subject() != d.Subject {
				continue
			}
			if d.Grants != nil {
				c.grants = *d.Grants
			}
			c.verified = d.Allowed
			if !d.Allowed {
				c.audit = fmt.Sprintf("allowed in audit mode: %s: expected %s, found %s", d.Rule, d.Expected, d.Found)
			}
		}
	}
	if first != nil {
		return first
	}
	// The interpreter pins are the gateway's own rule: verify.Check does
	// not see interpreters.
	for _, c := range g.children {
		if err := c.checkInterpreter(); err != nil {
			return err
		}
	}
	return nil
}

// verifiedEvent is the audit event of a verified start: the policy, the
// manifest and every component's digest.
func (g *Gateway) verifiedEvent() map[string]any {
	comps := map[string]string{"gateway/" + g.stack.Gateway.Name: g.self.String()}
	for _, c := range g.children {
		comps[c.subject()] = c.digest.String()
	}
	for _, m := range g.models {
		if m.measured != nil {
			comps[m.subject()] = m.measured.Digest.String()
		}
	}
	return map[string]any{"policy": g.policy.Metadata.Name, "policyVersion": g.policy.Version,
		"policyDigest": g.policy.Source().Digest.String(), "manifestDigest": g.stack.Source.Digest.String(),
		"components": comps, "insecureDev": g.opts.InsecureDev}
}

// Close stops every child, writes the audit log's last checkpoint, and
// removes the sealed copies and snapshots. It is safe to call more than
// once.
func (g *Gateway) Close() {
	for _, c := range g.children {
		c.stop()
	}
	if g.audit != nil {
		g.emit("gateway.stop", nil)
		g.audit.close()
	}
	if g.runDir != "" {
		removeAll(g.runDir)
	}
	if g.socketDir != "" && !strings.HasPrefix(g.socketDir, g.runDir+"/") {
		removeAll(g.socketDir)
	}
}
