package policy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/yamlx"

	"github.com/trustgate/trustgate/internal/readfile"
)

// MaxPolicySize bounds a policy file.
const MaxPolicySize = 1 << 20

// FieldError is a problem with one field of a policy: file, line, field
// path and a wrapped sentinel.
type FieldError = yamlx.FieldError

// Kinds of problem, matched with errors.Is. The YAML-level kinds are
// yamlx's, re-exported.
var (
	ErrSyntax       = yamlx.ErrSyntax
	ErrUnknownField = yamlx.ErrUnknownField
	ErrDuplicateKey = yamlx.ErrDuplicateKey
	ErrWrongType    = yamlx.ErrWrongType

	ErrRequired          = errors.New("required")
	ErrInvalid           = errors.New("invalid")
	ErrDuplicate         = errors.New("named twice")
	ErrUnanchored        = bundle.ErrUnanchored
	ErrUnknownSigner     = errors.New("unknown signer")
	ErrUnboundCredential = errors.New("credential bound to no host")
	ErrCEL               = errors.New("CEL expression")
	ErrVersionRange      = errors.New("version range")
	ErrExpired           = errors.New("policy expired")
)

// Problems is every problem found in one policy, in document order. It
// unwraps to each, so errors.Is finds any of their kinds.
type Problems []*FieldError

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems for errors.Is and errors.As.
func (ps Problems) Unwrap() []error {
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// Kinds of component a policy can name.
var componentKinds = []string{"gateway", "plugin", "agent", "image", "model"}

// Options tune parsing.
type Options struct {
	// Dir is the folder keyFile paths are relative to (and may not
	// leave); empty means signers may not use keyFile.
	Dir string
	// Now, when set, makes an expired policy a problem (lint does this;
	// LoadSigned checks expiry itself).
	Now time.Time
}

// Load reads and parses the policy file at path, with keyFile paths
// relative to its folder.
func Load(path string, now time.Time) (*Policy, error) {
	data, err := readfile.Read(path, MaxPolicySize)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return Parse(path, data, Options{Dir: abs, Now: now})
}

// Parse parses and checks a policy. Every problem is reported, as Problems;
// CEL programs, regular expressions, version ranges and keys are compiled
// here, once.
func Parse(file string, data []byte, opts Options) (*Policy, error) {
	doc, err := yamlx.Parse(file, data, MaxPolicySize)
	if err != nil {
		return nil, asProblems(err)
	}
	var p Policy
	ix, err := doc.Decode(&p)
	if err != nil {
		return nil, asProblems(err)
	}
	p.source = Source{File: file, Digest: digest.FromBytes(data)}
	c := &checker{ix: ix, p: &p, opts: opts}
	c.check()
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	return &p, nil
}

func asProblems(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return Problems{fe}
	}
	return err
}

type checker struct {
	ix       *yamlx.Index
	p        *Policy
	opts     Options
	problems Problems
	signers  map[string]bool
	creds    map[string]bool
}

func (c *checker) fail(field string, kind error, format string, args ...any) {
	c.problems = append(c.problems, c.ix.Errorf(field, kind, format, args...))
}

func (c *checker) check() {
	p := c.p
	if p.APIVersion != APIVersion {
		c.fail("apiVersion", ErrInvalid, "want %q", APIVersion)
	}
	if p.Kind != Kind {
		c.fail("kind", ErrInvalid, "want %q", Kind)
	}
	if p.Metadata.Name == "" {
		c.fail("metadata.name", ErrRequired, "")
	}
	if p.Version == 0 {
		c.fail("version", ErrRequired, "a number from 1 that only goes up")
	}
	c.expiry()
	switch p.Default {
	case "", ModeEnforce, ModeAudit, "deny": // deny: the earlier word for enforce
	default:
		c.fail("default", ErrInvalid, "want enforce or audit")
	}
	switch c.p.OnAuditFailure {
	case "", AuditRefuse, AuditContinue:
	default:
		c.fail("onAuditFailure", ErrInvalid, "want %s or %s", AuditRefuse, AuditContinue)
	}
	c.signerList()
	c.providers()
	c.components()
	c.manifest()
	c.sbom()
}

func (c *checker) manifest() {
	m := c.p.Manifest
	if m == nil {
		return
	}
	if len(m.Digests) == 0 && m.Signers == nil {
		c.fail("manifest", ErrRequired, "give digests, signers, or both")
	}
	for j, d := range m.Digests {
		if parsed, err := digest.Parse(d); err != nil || parsed.Algorithm() != digest.SHA256 {
			c.fail(fmt.Sprintf("manifest.digests[%d]", j), ErrInvalid, "want sha256:<64 hex>, the manifest file's digest")
		}
	}
	c.signerRule("manifest.signers", m.Signers)
}

func (c *checker) expiry() {
	if c.p.Expires == "" {
		c.fail("expires", ErrRequired, "an RFC 3339 time such as 2027-01-01T00:00:00Z")
		return
	}
	t, err := time.Parse(time.RFC3339, c.p.Expires)
	if err != nil {
		c.fail("expires", ErrInvalid, "want an RFC 3339 time such as 2027-01-01T00:00:00Z")
		return
	}
	c.p.expires = t
	if !c.opts.Now.IsZero() && !t.After(c.opts.Now) {
		c.fail("expires", ErrExpired, "expired at %s", t.UTC().Format(time.RFC3339))
	}
}

var (
	namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62})$`)
	envPattern  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)
)

func (c *checker) signerList() {
	c.signers = map[string]bool{}
	hints := map[string]string{}
	defer func() {
		// One key under two names would let one signature count twice.
		for i, s := range c.p.Signers {
			if s.publicKey == nil {
				continue
			}
			h, _ := attest.KeyHint(s.publicKey)
			if prev, ok := hints[h]; ok {
				c.fail(fmt.Sprintf("signers[%d]", i), ErrDuplicate, "the same key as signer %q", prev)
			}
			hints[h] = s.Name
		}
	}()
	for i := range c.p.Signers {
		s := &c.p.Signers[i]
		at := fmt.Sprintf("signers[%d]", i)
		c.name(at+".name", s.Name, c.signers)
		n := 0
		for _, set := range []bool{s.Key != "", s.KeyFile != "", s.Keyless != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			c.fail(at, ErrInvalid, "give exactly one of key, keyFile and keyless")
			continue
		}
		switch {
		case s.Key != "":
			c.publicKey(at+".key", s, []byte(s.Key))
		case s.KeyFile != "":
			data, err := c.keyFile(s.KeyFile)
			if err != nil {
				c.fail(at+".keyFile", ErrInvalid, "%v", err)
				continue
			}
			c.publicKey(at+".keyFile", s, data)
		default:
			c.identity(at+".keyless", s.Keyless)
		}
	}
}

func (c *checker) publicKey(at string, s *Signer, pemBytes []byte) {
	pk, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		c.fail(at, ErrInvalid, "not a PEM public key")
		return
	}
	if _, err := attest.KeyHint(pk); err != nil {
		c.fail(at, ErrInvalid, "unsupported public key")
		return
	}
	s.publicKey = pk
}

// keyFile reads a public key file inside the policy's folder.
func (c *checker) keyFile(name string) ([]byte, error) {
	if c.opts.Dir == "" {
		return nil, errors.New("keyFile needs the policy to be read from a file")
	}
	root, err := os.OpenRoot(c.opts.Dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	data, err := readfile.ReadIn(root, filepath.FromSlash(name), 64<<10)
	if err != nil {
		return nil, fmt.Errorf("cannot read it inside the policy's folder")
	}
	return data, nil
}

func (c *checker) identity(at string, id *Identity) {
	for _, p := range id.Check() {
		kind, said := ErrInvalid, bundle.ErrIdentity
		if errors.Is(p.Err, ErrUnanchored) {
			kind, said = ErrUnanchored, bundle.ErrUnanchored
		}
		c.fail(at+"."+p.Field, kind, "%s", strings.TrimPrefix(p.Err.Error(), said.Error()+": "))
	}
}

func (c *checker) name(at, n string, seen map[string]bool) {
	switch {
	case n == "":
		c.fail(at, ErrRequired, "")
	case !namePattern.MatchString(n):
		c.fail(at, ErrInvalid, "want lower-case letters, digits, '.', '_' and '-', at most 63")
	case seen[n]:
		c.fail(at, ErrDuplicate, "")
	}
	seen[n] = true
}

func (c *checker) providers() {
	c.creds = map[string]bool{}
	names := map[string]bool{}
	for i, pr := range c.p.Providers {
		at := fmt.Sprintf("providers[%d]", i)
		if pr.Name != "" {
			if names[pr.Name] {
				c.fail(at+".name", ErrDuplicate, "")
			}
			names[pr.Name] = true
		}
		if !validCredential(pr.Credential) {
			c.fail(at+".credential", ErrInvalid, "want env:NAME or file:/absolute/path")
		} else if c.creds[pr.Credential] {
			c.fail(at+".credential", ErrDuplicate, "")
		}
		c.creds[pr.Credential] = true
		if len(pr.BaseURLs) == 0 {
			c.fail(at+".baseURLs", ErrUnboundCredential, "list the upstream base URLs this credential may be sent to")
		}
		for j, u := range pr.BaseURLs {
			if err := checkBaseURL(u); err != nil {
				c.fail(fmt.Sprintf("%s.baseURLs[%d]", at, j), ErrInvalid, "%v", err)
			}
		}
	}
}

// validCredential reports whether ref is env:NAME or file:/absolute/path,
// the two ways a stack manifest names a credential.
func validCredential(ref string) bool {
	kind, v, ok := strings.Cut(ref, ":")
	switch {
	case !ok:
		return false
	case kind == "env":
		return envPattern.MatchString(v)
	case kind == "file":
		return strings.HasPrefix(v, "/") && filepath.Clean(v) == v
	}
	return false
}

// checkBaseURL accepts https URLs, and http only to loopback, with no user
// information, query or fragment.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("a base URL carries no credentials, query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("plain http only to loopback")
		}
	default:
		return errors.New("want https")
	}
	return nil
}

func (c *checker) components() {
	seen := map[string]bool{}
	for i := range c.p.Components {
		comp := &c.p.Components[i]
		at := fmt.Sprintf("components[%d]", i)
		if !slices.Contains(componentKinds, comp.Kind) {
			c.fail(at+".kind", ErrInvalid, "want one of %s", strings.Join(componentKinds, ", "))
		}
		key := comp.Kind + "/" + comp.Name
		if comp.Name == "" {
			c.fail(at+".name", ErrRequired, "")
		} else if seen[key] {
			c.fail(at+".name", ErrDuplicate, "%s", key)
		}
		seen[key] = true
		switch comp.Mode {
		case "", ModeEnforce, ModeAudit:
		default:
			c.fail(at+".mode", ErrInvalid, "want enforce or audit")
		}
		for j, d := range comp.Digests {
			parsed, err := digest.Parse(d)
			if err != nil || (parsed.Algorithm() != digest.SHA256 && parsed.Algorithm() != digest.H1) {
				c.fail(fmt.Sprintf("%s.digests[%d]", at, j), ErrInvalid, "want sha256:<64 hex> or h1:<base64>")
				continue
			}
			comp.digests = append(comp.digests, parsed)
		}
		switch {
		case comp.Kind == "model" && len(comp.Digests) == 0 && comp.Signers == nil && comp.Provider == "":
			c.fail(at, ErrRequired, "give the provider that serves the model, or digests or signers for its file or folder")
		case comp.Kind != "model" && len(comp.Digests) == 0 && comp.Signers == nil:
			c.fail(at, ErrRequired, "give digests, signers, or both")
		}
		c.modelProviders(at, comp)
		c.signerRule(at+".signers", comp.Signers)
		for j := range comp.Attestations {
			c.attestation(fmt.Sprintf("%s.attestations[%d]", at, j), &comp.Attestations[j])
		}
		c.capabilities(at+".capabilities", comp.Kind, comp.Capabilities)
		c.runtime(at, comp)
		c.repositories(at, comp)
	}
}

// modelProviders checks a model's provider and fallbacks: provider names,
// none twice, fallbacks only after a provider, and only for models.
func (c *checker) modelProviders(at string, comp *Component) {
	if comp.Kind != "model" {
		if comp.Provider != "" || len(comp.Fallbacks) > 0 {
			c.fail(at+".provider", ErrInvalid, "only models are served by providers")
		}
		return
	}
	if comp.Provider != "" && !namePattern.MatchString(comp.Provider) {
		c.fail(at+".provider", ErrInvalid, "want a provider's name from the stack manifest")
	}
	if len(comp.Fallbacks) > 0 && comp.Provider == "" {
		c.fail(at+".fallbacks", ErrInvalid, "a model without a provider has nothing to fall back from")
	}
	for j, f := range comp.Fallbacks {
		switch {
		case !namePattern.MatchString(f):
			c.fail(fmt.Sprintf("%s.fallbacks[%d]", at, j), ErrInvalid, "want a provider's name from the stack manifest")
		case f == comp.Provider || slices.Contains(comp.Fallbacks[:j], f):
			c.fail(fmt.Sprintf("%s.fallbacks[%d]", at, j), ErrDuplicate, "")
		}
	}
}

// repositories checks an image's repository patterns.
func (c *checker) repositories(at string, comp *Component) {
	if len(comp.Repositories) > 0 && comp.Kind != "image" {
		c.fail(at+".repositories", ErrInvalid, "only images are pulled from repositories")
		return
	}
	for j, r := range comp.Repositories {
		if err := checkRepositoryPattern(r); err != nil {
			c.fail(fmt.Sprintf("%s.repositories[%d]", at, j), ErrInvalid, "%v", err)
		}
	}
}

// runtime checks what only trustgate-gateway reads: onDrift and the
// interpreter pin, for the components it runs beside itself.
func (c *checker) runtime(at string, comp *Component) {
	runs := comp.Kind == "plugin" || comp.Kind == "agent"
	switch comp.OnDrift {
	case "":
	case OnDriftDisable, OnDriftStop:
		if !runs && comp.Kind != "model" {
			c.fail(at+".onDrift", ErrInvalid, "only plugins, agents and local models are watched for drift")
		}
	default:
		c.fail(at+".onDrift", ErrInvalid, "want %s or %s", OnDriftDisable, OnDriftStop)
	}
	if comp.FailOpen && comp.Kind != "plugin" {
		c.fail(at+".failOpen", ErrInvalid, "only plugins are called on the request path")
	}
	if comp.Interpreter == nil {
		return
	}
	if !runs {
		c.fail(at+".interpreter", ErrInvalid, "only plugins and agents run under an interpreter")
	}
	if len(comp.Interpreter.Digests) == 0 {
		c.fail(at+".interpreter.digests", ErrRequired, "")
	}
	for j, d := range comp.Interpreter.Digests {
		if parsed, err := digest.Parse(d); err != nil || parsed.Algorithm() != digest.SHA256 {
			c.fail(fmt.Sprintf("%s.interpreter.digests[%d]", at, j), ErrInvalid, "want sha256:<64 hex>")
		}
	}
}

func (c *checker) signerRule(at string, r *SignerRule) {
	if r == nil {
		return
	}
	if len(r.AnyOf) == 0 {
		c.fail(at+".anyOf", ErrRequired, "")
	}
	named := map[string]bool{}
	for j, n := range r.AnyOf {
		switch {
		case !c.signers[n]:
			c.fail(fmt.Sprintf("%s.anyOf[%d]", at, j), ErrUnknownSigner, "no signer of that name in signers")
		case named[n]:
			// Listed twice, one signature would count twice.
			c.fail(fmt.Sprintf("%s.anyOf[%d]", at, j), ErrDuplicate, "")
		}
		named[n] = true
	}
	if r.Threshold < 0 || r.Threshold > len(r.AnyOf) {
		c.fail(at+".threshold", ErrInvalid, "want 1 to %d", len(r.AnyOf))
	}
}

func (c *checker) attestation(at string, a *AttestationRule) {
	pt, err := attest.PredicateType(a.Type)
	if err != nil {
		c.fail(at+".type", ErrInvalid, "want cyclonedx, slsaprovenance, vsa or an absolute URI")
		return
	}
	a.predicateType = pt
	if (a.Builder != "" || a.SourceRepository != "") && pt != attest.PredicateSLSAProvenance {
		c.fail(at, ErrInvalid, "builder and sourceRepository apply to slsaprovenance only")
	}
	c.signerRule(at+".signers", a.Signers)
}

func (c *checker) capabilities(at, kind string, caps Capabilities) {
	if kind != "plugin" && kind != "agent" && (len(caps.Env) > 0 || len(caps.Credentials) > 0 || len(caps.Hooks) > 0) {
		c.fail(at, ErrInvalid, "only plugins and agents are granted capabilities")
		return
	}
	for j, e := range caps.Env {
		switch {
		case !envPattern.MatchString(e):
			c.fail(fmt.Sprintf("%s.env[%d]", at, j), ErrInvalid, "want an environment variable name")
		case c.creds["env:"+e]:
			// Passing it as plain environment would skip the credential's
			// host binding.
			c.fail(fmt.Sprintf("%s.env[%d]", at, j), ErrInvalid, "this variable is a provider credential; grant it under credentials")
		}
	}
	for j, cr := range caps.Credentials {
		if !c.creds[cr] {
			c.fail(fmt.Sprintf("%s.credentials[%d]", at, j), ErrUnboundCredential, "no providers entry binds it to upstream hosts")
		}
	}
	for j, h := range caps.Hooks {
		if !slices.Contains(Hooks, h) {
			c.fail(fmt.Sprintf("%s.hooks[%d]", at, j), ErrInvalid, "want one of %s", strings.Join(Hooks, ", "))
		}
		if kind != "plugin" {
			c.fail(fmt.Sprintf("%s.hooks[%d]", at, j), ErrInvalid, "only plugins use hooks")
		}
	}
}

func (c *checker) sbom() {
	for i := range c.p.SBOM.Deny {
		r := &c.p.SBOM.Deny[i]
		at := fmt.Sprintf("sbom.deny[%d]", i)
		if err := r.compile(); err != nil {
			field := at + ".purl"
			if errors.Is(err, ErrVersionRange) {
				field = at + ".versions"
			}
			c.fail(field, err, "")
		}
	}
	for i, f := range c.p.SBOM.Require {
		if !slices.Contains(requiredFields, f) {
			c.fail(fmt.Sprintf("sbom.require[%d]", i), ErrInvalid, "want one of %s", strings.Join(requiredFields, ", "))
		}
	}
	seen := map[string]bool{}
	for i := range c.p.SBOM.Rules {
		r := &c.p.SBOM.Rules[i]
		at := fmt.Sprintf("sbom.rules[%d]", i)
		c.name(at+".name", r.Name, seen)
		for j, k := range r.Kinds {
			if !slices.Contains(componentKinds, k) {
				c.fail(fmt.Sprintf("%s.kinds[%d]", at, j), ErrInvalid, "want one of %s", strings.Join(componentKinds, ", "))
			}
		}
		prg, err := compileCEL(r.Expression)
		if err != nil {
			c.fail(at+".expression", ErrCEL, "%v", err)
			continue
		}
		r.program = prg
	}
}
