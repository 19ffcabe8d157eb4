package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/gather"
	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/verify"
)

// Defaults of Config.
const (
	// DefaultDeadline is how long one review may take: shorter than the
	// 10 s timeoutSeconds of the webhook configuration in deploy/, so that
	// the API server gets the webhook's reason, not its own timeout.
	DefaultDeadline  = 8 * time.Second
	DefaultCacheSize = 4096
	DefaultCacheTTL  = 5 * time.Minute
	// MaxImageEvidence bounds the attestation bytes read for one image.
	MaxImageEvidence = 32 << 20
	// MaxImages bounds the distinct images of one workload.
	MaxImages = 256
	// maxParallel bounds the images of one review verified at once.
	maxParallel = 8
)

// What a registry failure does (Config.OnRegistryError).
const (
	RegistryErrorDeny  = "deny"
	RegistryErrorAdmit = "admit"
)

// KeychainFunc returns the registry credentials for images of a pod in
// namespace with these imagePullSecrets (for a pod, the API server has
// added its service account's already).
type KeychainFunc func(ctx context.Context, namespace string, pullSecrets []string) (authn.Keychain, error)

// Config is a Checker's configuration. Policy is required.
type Config struct {
	Policy *PolicySource
	// Registry is how registries are reached; its Keychain is used when
	// Keychain is nil, or for pods without imagePullSecrets.
	Registry pin.Registry
	// Keychain, when set, adds the pod's imagePullSecrets to the
	// credentials (see PullSecretKeychain).
	Keychain KeychainFunc
	// Deadline bounds one review; zero is DefaultDeadline.
	Deadline time.Duration
	// OnRegistryError is RegistryErrorDeny (the default: fail closed) or
	// RegistryErrorAdmit, which admits with a warning an image whose
	// registry could not be read in time.
	OnRegistryError string
	// AllowTags admits an image named by a tag alone when the digest the
	// tag names now passes, with a warning. By default such an image is
	// denied: the kubelet pulls the tag later and may get other bytes.
	AllowTags bool
	// CacheSize bounds the verdicts kept (0 is DefaultCacheSize, < 0
	// keeps none); CacheTTL is how long one is kept (0 is
	// DefaultCacheTTL).
	CacheSize int
	CacheTTL  time.Duration
	// Metrics, when set, counts what the checker does.
	Metrics *Metrics
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Checker decides on workloads from the signed policy in force: the same
// verification as `trustgate verify` gives an image, cached by image and
// policy digest, each verification shared by every review that needs it
// at once.
type Checker struct {
	cfg   Config
	cache *expirable.LRU[string, *verdict]
	group singleflight.Group
}

// NewChecker returns a checker for cfg.
func NewChecker(cfg Config) (*Checker, error) {
	if cfg.Policy == nil {
		return nil, errors.New("admission: no policy source")
	}
	switch cfg.OnRegistryError {
	case "":
		cfg.OnRegistryError = RegistryErrorDeny
	case RegistryErrorDeny, RegistryErrorAdmit:
	default:
		return nil, fmt.Errorf("admission: on a registry error: want %s or %s, not %q", RegistryErrorDeny, RegistryErrorAdmit, cfg.OnRegistryError)
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Checker{cfg: cfg}
	if cfg.CacheSize > 0 {
		c.cache = expirable.NewLRU[string, *verdict](cfg.CacheSize, nil, cfg.CacheTTL)
	}
	return c, nil
}

// Decision is the answer on one workload.
type Decision struct {
	Allowed bool
	// Images is the verdict on each image use, in the pod spec's order
	// (init containers, containers, ephemeral containers).
	Images []ImageVerdict
	// Message is the reason for a denial, naming each image denied.
	Message string
	// Warnings are for the client: images admitted in audit mode, tags,
	// registry errors admitted by configuration.
	Warnings []string
}

// ImageVerdict is the verdict on one container's image.
type ImageVerdict struct {
	ImageUse
	// Digest is what the image was verified as ("" when it could not be
	// resolved).
	Digest  string
	Allowed bool
	// Reason is why it was denied, or the warning it was admitted with.
	Reason string
	// Report is the verification report, when one was made.
	Report *verify.Report
	Cached bool
}

// Check decides on w, within the configured deadline (and ctx's).
func (c *Checker) Check(ctx context.Context, w *Workload) Decision {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Deadline)
	defer cancel()
	out := Decision{Allowed: true, Images: make([]ImageVerdict, len(w.Images))}
	var creds *credentials
	if len(w.PullSecrets) > 0 && c.cfg.Keychain != nil {
		creds = &credentials{fn: c.cfg.Keychain, namespace: w.Namespace, secrets: w.PullSecrets}
	}
	// Each distinct image is judged once, however many containers use it.
	first := map[string]int{}
	var distinct []int
	for i, use := range w.Images {
		if _, ok := first[use.Image]; !ok {
			first[use.Image] = i
			distinct = append(distinct, i)
		}
	}
	if len(distinct) > MaxImages {
		c.cfg.Metrics.decided(time.Since(start))
		return Decision{Message: fmt.Sprintf("trustgate denied %s %s: %d distinct images, more than the %d one workload may name", w.Kind, w.Name, len(distinct), MaxImages)}
	}
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for _, i := range distinct {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out.Images[i] = c.image(ctx, w.Images[i], creds)
		}()
	}
	wg.Wait()
	for i, use := range w.Images {
		if j := first[use.Image]; j != i {
			v := out.Images[j]
			v.ImageUse = use
			out.Images[i] = v
		}
	}
	var denied []string
	for _, v := range out.Images {
		switch {
		case !v.Allowed:
			out.Allowed = false
			denied = append(denied, v.Container+" "+v.Image+": "+v.Reason)
		case v.Reason != "":
			out.Warnings = append(out.Warnings, v.Container+" "+v.Image+": "+v.Reason)
		}
		c.cfg.Metrics.image(v)
	}
	if !out.Allowed {
		out.Message = fmt.Sprintf("trustgate denied %s %s: %s", w.Kind, w.Name, strings.Join(denied, "; "))
	}
	c.cfg.Metrics.decided(time.Since(start))
	return out
}

// credentials resolves a pod's keychain once, on the first cache miss
// that needs it.
type credentials struct {
	fn        KeychainFunc
	namespace string
	secrets   []string
	once      sync.Once
	keychain  authn.Keychain
	err       error
}

func (cr *credentials) get(ctx context.Context, base authn.Keychain) (authn.Keychain, error) {
	if cr == nil {
		return base, nil
	}
	cr.once.Do(func() {
		cr.keychain, cr.err = cr.fn(ctx, cr.namespace, cr.secrets)
	})
	if cr.err != nil {
		return nil, fmt.Errorf("reading imagePullSecrets %s: %w", strings.Join(cr.secrets, ", "), cr.err)
	}
	if base == nil {
		base = authn.DefaultKeychain
	}
	return authn.NewMultiKeychain(cr.keychain, base), nil
}

// verdict is a cached result: the report on one image digest under one
// policy.
type verdict struct {
	report verify.Report
}

// image decides on one image use.
func (c *Checker) image(ctx context.Context, use ImageUse, creds *credentials) ImageVerdict {
	v := ImageVerdict{ImageUse: use}
	p := c.cfg.Policy.Current()
	if p == nil {
		v.Reason = "no signed policy is loaded"
		return v
	}
	ref, err := name.ParseReference(use.Image)
	if err != nil {
		v.Reason = "not an image reference: " + err.Error()
		return v
	}
	comp := p.ImageComponent(ref.Context().Name())
	if comp == nil {
		// Decided without a registry call: a pod cannot make the
		// webhook reach an address the policy does not name.
		r := verify.CheckImage(verify.Image{Policy: p, Now: c.cfg.Now()})
		return c.judge(v, r, false)
	}
	reg := c.cfg.Registry
	var pinned name.Digest
	unpinned := ""
	switch r := ref.(type) {
	case name.Digest:
		pinned = r
	default:
		kc, err := creds.get(ctx, reg.Keychain)
		if err != nil {
			return c.registryError(v, comp, err)
		}
		reg.Keychain = kc
		_, _, d, err := reg.Reference(ctx, ref.Name()) // fully qualified: docker.io, library/, :latest
		if err != nil {
			return c.registryError(v, comp, err)
		}
		pinned = d
		if !c.cfg.AllowTags {
			unpinned = use.Image
		}
	}
	d, err := digest.Parse(pinned.DigestStr())
	if err != nil || d.Algorithm() != digest.SHA256 {
		v.Reason = "the image's digest is not sha256:<64 hex>: " + pinned.DigestStr()
		return v
	}
	v.Digest = d.String()
	key := strings.Join([]string{p.Source().Digest.String(), comp.Name, pinned.String(), unpinned}, " ")
	if c.cache != nil && c.cfg.Now().Before(p.ExpiresAt()) {
		// An expired policy is never answered from the cache: the
		// verification below denies everything with the reason.
		if got, ok := c.cache.Get(key); ok {
			c.cfg.Metrics.cache(true)
			return c.tagNote(c.judge(v, got.report, true), ref)
		}
		c.cfg.Metrics.cache(false)
	}
	res := c.group.DoChan(key, func() (any, error) {
		// Not the caller's context: the work is shared with every
		// review waiting for the same key, and bounded on its own.
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Deadline)
		defer cancel()
		kc, err := creds.get(vctx, c.cfg.Registry.Keychain)
		if err != nil {
			return nil, err
		}
		reg := c.cfg.Registry
		reg.Keychain = kc
		budget := MaxImageEvidence
		ev, err := gather.ImageEvidence(vctx, pinned, reg, &budget)
		if err != nil {
			return nil, err
		}
		out := &verdict{report: verify.CheckImage(verify.Image{
			Policy: p, Material: c.cfg.Policy.Trust.Material, Component: comp.Name,
			Digest: d, Unpinned: unpinned, Evidence: ev, Now: c.cfg.Now(),
		})}
		if c.cache != nil {
			c.cache.Add(key, out)
		}
		return out, nil
	})
	select {
	case r := <-res:
		if r.Err != nil {
			return c.registryError(v, comp, r.Err)
		}
		return c.tagNote(c.judge(v, r.Val.(*verdict).report, false), ref)
	case <-ctx.Done():
		return c.registryError(v, comp, fmt.Errorf("no verdict within %s: %w", c.cfg.Deadline, ctx.Err()))
	}
}

// judge turns a report into the verdict on one image: the first broken
// rule, and why the attestations that did not verify failed (so that an
// unsigned image, a wrong signer and a tampered attestation read apart).
func (c *Checker) judge(v ImageVerdict, r verify.Report, cached bool) ImageVerdict {
	v.Report, v.Cached, v.Allowed = &r, cached, r.Allowed
	for _, d := range r.Decisions {
		if d.Allowed {
			continue
		}
		why := d.Rule + ": expected " + d.Expected + ", found " + d.Found
		if d.Mode == policy.ModeAudit {
			why = "admitted in audit mode: " + why
		}
		v.Reason = why + unverified(r.Evidence)
		break
	}
	return v
}

// unverified says how many of the attestations found did not verify, and
// why the first did not.
func unverified(ev []verify.EvidenceResult) string {
	n, first := 0, ""
	for _, e := range ev {
		if !e.Verified {
			if n == 0 {
				first = e.Error
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d of %d attestations beside it did not verify: %s)", n, len(ev), safetext.Clip(first, 200))
}

// tagNote says, for an image named by a tag, which digest the tag named
// when it was judged: in the reason for a denial, and, when tags are
// allowed, in the warning an admission carries.
func (c *Checker) tagNote(v ImageVerdict, ref name.Reference) ImageVerdict {
	if _, ok := ref.(name.Tag); !ok || v.Digest == "" {
		return v
	}
	switch {
	case !v.Allowed:
		v.Reason += " (the tag names " + v.Digest + " now)"
	case c.cfg.AllowTags:
		w := "admitted by tag: verified as " + v.Digest + ", which the tag names now; pin it by digest"
		if v.Reason != "" {
			w = v.Reason + "; " + w
		}
		v.Reason = w
	}
	return v
}

// registryError is the verdict when the registry could not be read in
// time: denied (fail closed), unless the configuration or the image's
// audit mode in the policy admits it with a warning.
func (c *Checker) registryError(v ImageVerdict, comp *policy.Component, err error) ImageVerdict {
	c.cfg.Metrics.registryError()
	switch {
	case comp != nil && comp.Mode == policy.ModeAudit:
		v.Allowed = true
		v.Reason = "admitted unverified in audit mode: " + err.Error()
	case c.cfg.OnRegistryError == RegistryErrorAdmit:
		v.Allowed = true
		v.Reason = "admitted unverified (on a registry error: admit): " + err.Error()
	default:
		v.Reason = "not verified: " + err.Error()
	}
	return v
}
