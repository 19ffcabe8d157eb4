package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
)

// Facts are what was found about a deployment, gathered elsewhere (by
// verify, the admission webhook or the gateway) and handed in. Evaluate
// trusts them as given: a signer listed here is one whose signature was
// verified.
type Facts struct {
	// Now is the evaluation time; a policy is void from its expiry on.
	Now time.Time `json:"now" yaml:"now"`
	// Components are the gateway, plugins, agents, images and models the
	// stack has.
	Components []ComponentFacts `json:"components" yaml:"components"`
	// Providers are where the deployment's config sends each credential.
	Providers []ProviderFacts `json:"providers,omitempty" yaml:"providers,omitempty"`
	// SBOM is the CycloneDX document as decoded JSON, for required fields
	// and CEL rules; nil when there is none.
	SBOM map[string]any `json:"sbom,omitempty" yaml:"sbom,omitempty"`
	// Statement is the SBOM attestation's statement as decoded JSON.
	Statement map[string]any `json:"statement,omitempty" yaml:"statement,omitempty"`
	// TopLevel is what SBOMs list outside every component (see
	// TopLevelPackages): packages at the top of an SBOM, or in its
	// metadata component. The deny list applies to them in the decision on
	// "sbom". verify reads them from verified SBOMs only.
	TopLevel *Packages `json:"topLevel,omitempty" yaml:"topLevel,omitempty"`
	// Manifest is the stack manifest as measured, and who signed it. When
	// set, the policy must govern this deployment (its metadata.name is the
	// manifest's) and the manifest must be bound (signed or pinned, see
	// Policy.Manifest). verify always sets it; nil is for callers that have
	// no manifest to judge, such as verdict fixtures about components.
	Manifest *ManifestFacts `json:"manifest,omitempty" yaml:"manifest,omitempty"`
	// IgnoreSignaturesUnsafe skips every signer and attestation rule. It
	// is for `policy test`, a dry run while writing a policy, and never
	// for a decision that lets something run.
	IgnoreSignaturesUnsafe bool `json:"-" yaml:"-"`
}

// ManifestFacts is the stack manifest: the deployment's name, the SHA-256
// of the manifest's bytes, and the policy signers whose vouching
// attestations name that digest (grouped by signature, as in
// ComponentFacts).
type ManifestFacts struct {
	Name       string     `json:"name" yaml:"name"`
	Digest     string     `json:"digest" yaml:"digest"`
	Signers    []string   `json:"signers,omitempty" yaml:"signers,omitempty"`
	Signatures [][]string `json:"signatures,omitempty" yaml:"signatures,omitempty"`
}

// ComponentFacts is what was found about one component.
type ComponentFacts struct {
	Kind   string `json:"kind" yaml:"kind"`
	Name   string `json:"name" yaml:"name"`
	Role   string `json:"role,omitempty" yaml:"role,omitempty"`
	Digest string `json:"digest" yaml:"digest"`
	// Signers are the policy's signers whose signature over the component
	// verified.
	Signers []string `json:"signers,omitempty" yaml:"signers,omitempty"`
	// Signatures, when set, groups Signers by signature: each entry lists
	// the signer names one signature verified under (two names when two
	// policy signers share a key or overlapping identities). A k-of-n rule
	// needs k distinct signatures matched to k distinct names. When empty,
	// each name in Signers counts as its own signature.
	Signatures   [][]string         `json:"signatures,omitempty" yaml:"signatures,omitempty"`
	Attestations []AttestationFacts `json:"attestations,omitempty" yaml:"attestations,omitempty"`
	// Packages are the purls the SBOM lists inside the component.
	Packages []string `json:"packages,omitempty" yaml:"packages,omitempty"`
	// Unidentified names the packages the SBOM lists inside the component
	// without a purl: a deny list cannot clear them.
	Unidentified []string `json:"unidentified,omitempty" yaml:"unidentified,omitempty"`
	// Systems names (name@version) the operating-system records the SBOM
	// lists inside the component: a distribution, identified by no purl.
	// The deny list matches them by name, so that a denied package cannot
	// hide as one.
	Systems []string `json:"systems,omitempty" yaml:"systems,omitempty"`
	// Problems are what the verifier found wrong while binding the
	// component to signed evidence (a start command other than the one the
	// signed SBOM records, an image tag not pinned by digest). Each is a
	// violation of the component's decision.
	Problems []Violation `json:"problems,omitempty" yaml:"problems,omitempty"`
	// SBOM says that an SBOM (a verified one, in verify) lists the
	// component, so that Packages is its inventory and not an absence of
	// evidence. Without it, a policy with SBOM rules denies the component:
	// no package can be shown not to be denied.
	SBOM bool `json:"sbom,omitempty" yaml:"sbom,omitempty"`
	// Requested is what the deployment's config would give the component.
	Requested Capabilities `json:"requested,omitempty" yaml:"requested,omitempty"`
	// Provider and Fallbacks are, for a model, the providers the
	// deployment's config serves it from, in order (none for a model
	// served from its file alone). A model's Digest is empty when it has
	// no file or folder here.
	Provider  string   `json:"provider,omitempty" yaml:"provider,omitempty"`
	Fallbacks []string `json:"fallbacks,omitempty" yaml:"fallbacks,omitempty"`
}

// AttestationFacts is one verified attestation about a component.
type AttestationFacts struct {
	PredicateType string         `json:"predicateType" yaml:"predicateType"`
	Signers       []string       `json:"signers,omitempty" yaml:"signers,omitempty"`
	Signatures    [][]string     `json:"signatures,omitempty" yaml:"signatures,omitempty"`
	Predicate     map[string]any `json:"predicate,omitempty" yaml:"predicate,omitempty"`
}

// ProviderFacts is where the config sends one credential.
type ProviderFacts struct {
	Name       string `json:"name" yaml:"name"`
	BaseURL    string `json:"baseURL" yaml:"baseURL"`
	Credential string `json:"credential" yaml:"credential"`
}

// Decision is the verdict on one component (or provider, or the SBOM).
// When it denies, Rule, Expected and Found describe the first violation;
// Violations lists them all.
type Decision struct {
	Subject    string      `json:"subject" yaml:"subject"` // kind/name, provider/name, sbom or policy
	Allowed    bool        `json:"allowed" yaml:"allowed"`
	Mode       string      `json:"mode" yaml:"mode"`
	Rule       string      `json:"rule,omitempty" yaml:"rule,omitempty"`
	Expected   string      `json:"expected,omitempty" yaml:"expected,omitempty"`
	Found      string      `json:"found,omitempty" yaml:"found,omitempty"`
	Violations []Violation `json:"violations,omitempty" yaml:"violations,omitempty"`
	// Grants is what the component may receive (plugins and agents). The
	// gateway hands out Grants, never what the config requested: in audit
	// mode a request beyond them is reported, not granted.
	Grants *Capabilities `json:"grants,omitempty" yaml:"grants,omitempty"`
}

// Outcomes of a decision (Decision.Outcome).
const (
	OutcomePass  = "pass"
	OutcomeAudit = "audit" // denied in audit mode: reported, not enforced
	OutcomeFail  = "fail"
)

// Outcome is what the decision comes to: OutcomePass, OutcomeAudit or
// OutcomeFail.
func (d Decision) Outcome() string {
	switch {
	case d.Allowed:
		return OutcomePass
	case d.Mode == ModeAudit:
		return OutcomeAudit
	}
	return OutcomeFail
}

// Violation is one broken rule.
type Violation struct {
	Rule     string `json:"rule" yaml:"rule"`
	Expected string `json:"expected" yaml:"expected"`
	Found    string `json:"found" yaml:"found"`
}

// Report is every decision of one evaluation. Allowed is true only when no
// decision in enforce mode denies.
type Report struct {
	Allowed   bool       `json:"allowed" yaml:"allowed"`
	Decisions []Decision `json:"decisions" yaml:"decisions"`
}

// Evaluate applies p to f. It is pure: the same policy and facts give the
// same report. Anything the facts have and the policy does not name is
// denied (or audited, if the policy's default says so).
func Evaluate(p *Policy, f Facts) Report {
	var r Report
	if p == nil {
		p = &Policy{}
	}
	if d := p.expired(f.Now); d != nil {
		r.add(*d)
		return r.done()
	}
	if f.Manifest != nil {
		r.add(p.manifest(*f.Manifest, f))
	}
	for _, c := range f.Components {
		r.add(p.component(c, f))
	}
	for i := range p.Components {
		r.addIf(p.absent(i, f.Components))
	}
	for _, pr := range f.Providers {
		r.add(p.provider(pr))
	}
	if len(p.SBOM.Require) > 0 || (len(p.SBOM.Deny) > 0 && !f.TopLevel.Empty()) {
		d := Decision{Subject: "sbom", Mode: ModeEnforce}
		d.Violations = append(p.requiredFields(f.SBOM), p.topLevelViolations(f.TopLevel)...)
		r.add(d)
	}
	return r.done()
}

// expired is the decision that voids everything when the policy has
// expired at now (or now is unknown), nil otherwise.
func (p *Policy) expired(now time.Time) *Decision {
	if !now.IsZero() && !p.expires.IsZero() && now.Before(p.expires) {
		return nil
	}
	return &Decision{Subject: "policy", Mode: ModeEnforce, Violations: []Violation{{
		Rule: "expires", Expected: "before " + fmtTime(p.expires), Found: fmtTime(now)}}}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.UTC().Format(time.RFC3339)
}

func (r *Report) add(d Decision) {
	d.Allowed = len(d.Violations) == 0
	if !d.Allowed {
		v := d.Violations[0]
		d.Rule, d.Expected, d.Found = v.Rule, v.Expected, v.Found
	}
	r.Decisions = append(r.Decisions, d)
}

func (r *Report) addIf(d *Decision) {
	if d != nil {
		r.add(*d)
	}
}

func (r *Report) done() Report {
	r.Allowed = true
	for _, d := range r.Decisions {
		if !d.Allowed && d.Mode != ModeAudit {
			r.Allowed = false
		}
	}
	return *r
}

// lookup finds the policy entry for a component by kind and name.
func (p *Policy) lookup(kind, name string) (int, *Component) {
	for i := range p.Components {
		if c := &p.Components[i]; c.Kind == kind && c.Name == name {
			return i, c
		}
	}
	return -1, nil
}

// absent is the decision on the i-th component the policy names when the
// deployment does not have it: denied unless the policy marks it optional
// (nil then, as when it is present and decided on its own).
func (p *Policy) absent(i int, have []ComponentFacts) *Decision {
	pc := &p.Components[i]
	if pc.Optional || slices.ContainsFunc(have, func(c ComponentFacts) bool { return c.Kind == pc.Kind && c.Name == pc.Name }) {
		return nil
	}
	d := Decision{Subject: pc.Kind + "/" + pc.Name, Mode: ModeEnforce}
	if pc.Mode == ModeAudit {
		d.Mode = ModeAudit
	}
	d.Violations = []Violation{{fmt.Sprintf("components[%d]", i), "present in the deployment (the policy names it; optional: true allows it to be absent)", "absent"}}
	return &d
}

// manifest decides on the stack manifest: the policy must be the one for
// this deployment, and the manifest bound by the policy's manifest rule
// (or, without one, signed by any of its signers).
func (p *Policy) manifest(m ManifestFacts, f Facts) Decision {
	d := Decision{Subject: "manifest", Mode: ModeEnforce}
	v := &d.Violations
	if m.Name != p.Metadata.Name {
		*v = append(*v, Violation{"metadata.name", "the deployment " + strconv.Quote(p.Metadata.Name) + " (the policy governs the stack of its name)", strconv.Quote(m.Name)})
	}
	rule := p.Manifest
	if rule == nil {
		if len(m.Signers) == 0 && !f.IgnoreSignaturesUnsafe {
			*v = append(*v, Violation{"manifest", "the manifest's digest named by an attestation a policy signer signed (trustgate sbom --attest), or pinned under manifest.digests", orNone(m.Digest) + ", signed by no policy signer"})
		}
		return d
	}
	if len(rule.Digests) > 0 && !slices.Contains(rule.Digests, m.Digest) {
		*v = append(*v, Violation{"manifest.digests", oneOf(rule.Digests), orNone(m.Digest)})
	}
	if rule.Signers != nil && !f.IgnoreSignaturesUnsafe {
		if ok, want, got := rule.Signers.satisfied(m.Signers, m.Signatures); !ok {
			*v = append(*v, Violation{"manifest.signers", want, got})
		}
	}
	return d
}

func (p *Policy) component(c ComponentFacts, f Facts) Decision {
	d := Decision{Subject: c.Kind + "/" + c.Name, Mode: ModeEnforce}
	i, pc := p.lookup(c.Kind, c.Name)
	if pc == nil {
		if p.Default == ModeAudit {
			d.Mode = ModeAudit
		}
		d.Violations = append(d.Violations, Violation{Rule: "default", Expected: "a components entry for " + d.Subject + servedBy(c), Found: "none"})
		d.Violations = append(d.Violations, c.Problems...)
		return d
	}
	if pc.Mode == ModeAudit {
		d.Mode = ModeAudit
	}
	at := fmt.Sprintf("components[%d]", i)
	v := &d.Violations
	*v = append(*v, c.Problems...)
	if pc.Role != "" && pc.Role != c.Role {
		*v = append(*v, Violation{at + ".role", pc.Role, orNone(c.Role)})
	}
	if len(pc.digests) > 0 && !slices.ContainsFunc(pc.digests, func(dg digest.Digest) bool { return dg.String() == c.Digest }) {
		*v = append(*v, Violation{at + ".digests", oneOf(pc.Digests), orNone(c.Digest)})
	}
	if pc.Signers != nil && !f.IgnoreSignaturesUnsafe {
		if ok, want, got := pc.Signers.satisfied(c.Signers, c.Signatures); !ok {
			*v = append(*v, Violation{at + ".signers", want, got})
		}
	}
	for j, a := range pc.Attestations {
		if f.IgnoreSignaturesUnsafe {
			break
		}
		if viol, ok := a.check(c.Attestations, p.source.Digest.Hex()); !ok {
			viol.Rule = fmt.Sprintf("%s.attestations[%d]%s", at, j, viol.Rule)
			*v = append(*v, viol)
		}
	}
	if c.Kind == "model" {
		*v = append(*v, modelViolations(at, pc, c)...)
	}
	*v = append(*v, capabilityViolations(at+".capabilities", pc.Capabilities, c.Requested)...)
	if !c.SBOM && (len(p.SBOM.Deny) > 0 || len(p.SBOM.Rules) > 0) && c.Kind != "model" {
		*v = append(*v, Violation{"sbom", "an SBOM that lists this component's packages, for the deny list and rules", "none"})
	}
	if len(c.Unidentified) > 0 && len(p.SBOM.Deny) > 0 {
		*v = append(*v, Violation{"sbom.deny", "every package identified by a purl, so the deny list can judge it", "no purl for " + strings.Join(c.Unidentified, ", ")})
	}
	*v = append(*v, p.packageViolations(c)...)
	*v = append(*v, p.celViolations(c, f)...)
	if c.Kind == "plugin" || c.Kind == "agent" {
		g := pc.Capabilities
		d.Grants = &g
	}
	return d
}

// servedBy says, for a model served by a provider, which: a hint of the
// entry a policy needs for it.
func servedBy(c ComponentFacts) string {
	if c.Kind != "model" || c.Provider == "" {
		return ""
	}
	return " (kind: model, provider: " + c.Provider + ")"
}

// modelViolations binds a model to where the policy says it is served
// from: its provider and allowed fallbacks and, for a model with a file or
// folder here, a pin by digests or signers (which the component's other
// rules check). A model the policy pins that has no file here is denied by
// those rules themselves: no digest, no signature.
func modelViolations(at string, pc *Component, c ComponentFacts) []Violation {
	var out []Violation
	if pc.Provider != c.Provider {
		want := pc.Provider + " (the provider the policy binds the model to)"
		if pc.Provider == "" {
			want = "no provider (the policy binds the model to its file or folder)"
		}
		out = append(out, Violation{at + ".provider", want, orNone(c.Provider)})
	}
	for _, fb := range c.Fallbacks {
		if !slices.Contains(pc.Fallbacks, fb) {
			want := "no fallback"
			if len(pc.Fallbacks) > 0 {
				want = oneOf(pc.Fallbacks)
			}
			out = append(out, Violation{at + ".fallbacks", want, fb})
		}
	}
	if c.Digest != "" && len(pc.Digests) == 0 && pc.Signers == nil {
		out = append(out, Violation{at + ".digests", "digests or signers that pin the model's file or folder", c.Digest})
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func oneOf(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return "one of " + strings.Join(items, ", ")
}

// satisfied checks a k-of-n rule against the signatures that verified:
// k distinct signatures, each matched to a distinct name of AnyOf, so that
// one signature never counts twice (two names with one key, overlapping
// identities). Without signature groups, each verified name is one
// signature.
func (r *SignerRule) satisfied(verified []string, signatures [][]string) (bool, string, string) {
	need := r.Threshold
	if need == 0 {
		need = 1
	}
	if len(signatures) == 0 {
		for _, n := range verified {
			signatures = append(signatures, []string{n})
		}
	}
	matched := matchSignatures(r.AnyOf, signatures)
	want := fmt.Sprintf("%d of %s", need, strings.Join(r.AnyOf, ", "))
	found := "no trusted signature"
	if len(matched) > 0 {
		found = fmt.Sprintf("%d distinct signature(s), by %s", len(matched), strings.Join(matched, ", "))
	}
	return len(matched) >= need, want, found
}

// matchSignatures is a maximum matching of signatures to distinct names
// (augmenting paths; n is a handful), returning the matched names.
func matchSignatures(names []string, signatures [][]string) []string {
	owner := map[string]int{} // name -> signature index
	var try func(sig int, seen map[string]bool) bool
	try = func(sig int, seen map[string]bool) bool {
		for _, n := range signatures[sig] {
			if !slices.Contains(names, n) || seen[n] {
				continue
			}
			seen[n] = true
			if o, taken := owner[n]; !taken || try(o, seen) {
				owner[n] = sig
				return true
			}
		}
		return false
	}
	for i := range signatures {
		try(i, map[string]bool{})
	}
	var out []string
	for _, n := range names {
		if _, ok := owner[n]; ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// check finds an attestation that meets the rule; otherwise it returns the
// violation (its Rule holds only a suffix) of the closest candidate.
//
// A verification summary meets a vsa rule only when it says PASSED and
// names this very policy (policyDigest, the sha256 of the policy's bytes):
// a summary made under another policy (a staging one with audit modes)
// says nothing about this one's rules.
func (a AttestationRule) check(found []AttestationFacts, policyDigest string) (Violation, bool) {
	want := a.predicateType
	best := Violation{Expected: "an attestation of type " + want, Found: "none of that type"}
	for _, f := range found {
		if f.PredicateType != want {
			continue
		}
		if want == attest.PredicateVSA && lookupString(f.Predicate, "verificationResult") != "PASSED" {
			best = Violation{Rule: ".verificationResult", Expected: "PASSED", Found: orNone(lookupString(f.Predicate, "verificationResult"))}
			continue
		}
		if got := lookupString(f.Predicate, "policy", "digest", "sha256"); want == attest.PredicateVSA && got != policyDigest {
			best = Violation{Rule: ".policy", Expected: "a summary made under this policy (sha256:" + policyDigest + ")", Found: "sha256:" + orNone(got)}
			continue
		}
		if a.Signers != nil {
			if ok, w, g := a.Signers.satisfied(f.Signers, f.Signatures); !ok {
				best = Violation{Rule: ".signers", Expected: w, Found: g}
				continue
			}
		}
		if a.Builder != "" {
			if got := lookupString(f.Predicate, "runDetails", "builder", "id"); got != a.Builder {
				best = Violation{Rule: ".builder", Expected: a.Builder, Found: orNone(got)}
				continue
			}
		}
		if a.SourceRepository != "" && !fromRepository(f.Predicate, a.SourceRepository) {
			best = Violation{Rule: ".sourceRepository", Expected: a.SourceRepository, Found: orNone(sourceOf(f.Predicate))}
			continue
		}
		return Violation{}, true
	}
	return best, false
}

// lookupString walks nested JSON objects by key and returns a string leaf.
func lookupString(m map[string]any, path ...string) string {
	var cur any = m
	for _, k := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = obj[k]
	}
	s, _ := cur.(string)
	return s
}

// fromRepository reports whether a SLSA v1 provenance was built from repo:
// the GitHub workflow's repository, or a resolved git dependency of it.
//
// When the workflow names its repository, that alone decides: a build of
// another repository that merely fetched this one as a dependency is not a
// build from it. Otherwise the first resolved dependency, the source by
// SLSA convention, decides.
func fromRepository(pred map[string]any, repo string) bool {
	if wf := lookupString(pred, "buildDefinition", "externalParameters", "workflow", "repository"); wf != "" {
		return wf == repo
	}
	deps, _ := lookupAny(pred, "buildDefinition", "resolvedDependencies").([]any)
	if len(deps) == 0 {
		return false
	}
	m, _ := deps[0].(map[string]any)
	uri, _ := m["uri"].(string)
	uri = strings.TrimPrefix(uri, "git+")
	return uri == repo || strings.HasPrefix(uri, repo+"@")
}

func sourceOf(pred map[string]any) string {
	if s := lookupString(pred, "buildDefinition", "externalParameters", "workflow", "repository"); s != "" {
		return s
	}
	deps, _ := lookupAny(pred, "buildDefinition", "resolvedDependencies").([]any)
	if len(deps) > 0 {
		m, _ := deps[0].(map[string]any)
		s, _ := m["uri"].(string)
		return s
	}
	return ""
}

func lookupAny(m map[string]any, path ...string) any {
	var cur any = m
	for _, k := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[k]
	}
	return cur
}

// capabilityViolations lists what the config would give that the policy
// does not grant.
func capabilityViolations(at string, granted, requested Capabilities) []Violation {
	var out []Violation
	for _, c := range []struct {
		field          string
		granted, asked []string
	}{
		{"env", granted.Env, requested.Env},
		{"credentials", granted.Credentials, requested.Credentials},
		{"hooks", granted.Hooks, requested.Hooks},
	} {
		for _, x := range c.asked {
			if !slices.Contains(c.granted, x) {
				want := "nothing"
				if len(c.granted) > 0 {
					want = oneOf(c.granted)
				}
				out = append(out, Violation{at + "." + c.field, want, x})
			}
		}
	}
	return out
}

// packageViolations applies the deny list to the component's packages:
// by purl, read strictly (one that does not parse cannot be shown not to be
// denied, so it is a violation of its own), and to its operating-system
// records by name.
func (p *Policy) packageViolations(c ComponentFacts) []Violation {
	if len(p.SBOM.Deny) == 0 {
		return nil
	}
	var out, unreadable []Violation
	for _, raw := range c.Packages {
		pu, err := ParsePurl(raw)
		if err != nil {
			unreadable = append(unreadable, Violation{"sbom.deny", "every package identified by a purl that parses, so the deny list can judge it", raw + ": " + err.Error()})
			continue
		}
		for j := range p.SBOM.Deny {
			if hit, note := p.SBOM.Deny[j].matches(pu); hit {
				out = append(out, p.SBOM.Deny[j].violation(j, raw, note))
			}
		}
	}
	for _, sys := range c.Systems {
		name, version := splitNameVersion(sys)
		for j := range p.SBOM.Deny {
			r := &p.SBOM.Deny[j]
			if packageName(r.purlType, "", name) != r.purlName {
				continue
			}
			if hit, note := r.inRange(version); hit {
				out = append(out, r.violation(j, "operating-system record "+sys+" (no purl; named as a denied package)", note))
			}
		}
	}
	return append(out, unreadable...)
}

// topLevelViolations applies the deny list to what SBOMs list outside
// every component, as to a component's packages: a package without a purl
// cannot be cleared.
func (p *Policy) topLevelViolations(top *Packages) []Violation {
	if len(p.SBOM.Deny) == 0 || top.Empty() {
		return nil
	}
	c := ComponentFacts{Packages: top.Packages, Unidentified: top.Unidentified, Systems: top.Systems}
	var out []Violation
	if len(c.Unidentified) > 0 {
		out = append(out, Violation{"sbom.deny", "every package identified by a purl, so the deny list can judge it", "no purl for " + strings.Join(c.Unidentified, ", ")})
	}
	return append(out, p.packageViolations(c)...)
}

// violation is the deny rule j broken by the package found.
func (r *PackageRule) violation(j int, found, note string) Violation {
	want := "no " + r.Purl
	if v := strings.TrimSpace(r.Versions); v != "" && v != "*" {
		want += " in " + v
	}
	if r.Reason != "" {
		want += " (" + r.Reason + ")"
	}
	if note != "" {
		found += "; " + note
	}
	return Violation{fmt.Sprintf("sbom.deny[%d]", j), want, found}
}

func splitNameVersion(s string) (string, string) {
	if i := strings.LastIndexByte(s, '@'); i > 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func (p *Policy) provider(pr ProviderFacts) Decision {
	d := Decision{Subject: "provider/" + pr.Name, Mode: ModeEnforce}
	for i, named := range p.Providers {
		if named.Name != "" && named.Name == pr.Name && named.Credential != pr.Credential {
			// The models bound to this provider's name must not reach
			// another upstream through a renamed provider.
			d.Violations = append(d.Violations, Violation{fmt.Sprintf("providers[%d].credential", i), named.Credential + " (the policy's provider " + strconv.Quote(pr.Name) + ")", orNone(pr.Credential)})
		}
	}
	for i, bound := range p.Providers {
		if bound.Credential != pr.Credential {
			continue
		}
		if !slices.ContainsFunc(bound.BaseURLs, func(u string) bool { return sameBaseURL(u, pr.BaseURL) }) {
			d.Violations = append(d.Violations, Violation{fmt.Sprintf("providers[%d].baseURLs", i), oneOf(bound.BaseURLs), orNone(pr.BaseURL)})
		}
		return d
	}
	d.Violations = append(d.Violations, Violation{"providers", "a providers entry binding " + pr.Credential + " to its hosts", "none"})
	return d
}

// sameBaseURL compares base URLs ignoring a trailing slash.
func sameBaseURL(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}
