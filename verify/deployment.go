package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/localmodel"
	"github.com/trustgate/trustgate/oms"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/sbomprop"

	"github.com/trustgate/trustgate/internal/safetext"
)

// Measured is one component of a deployment as the caller measured it: its
// kind, name and role from the stack manifest, the digest of the bytes that
// will run (never a digest some document claims), how the manifest starts
// it, and what the deployment's config would give it.
type Measured struct {
	Kind, Name, Role string
	Digest           digest.Digest
	// Argv is what the manifest starts the gateway, a plugin or an agent
	// with: its command, then its args (nil for neither). A verified SBOM
	// that lists the component must record the same (sbomprop.Command).
	// Images and models run nothing of their own and leave it nil.
	Argv []string
	// Unpinned is, for an image from a registry, the manifest's reference
	// when it names a tag and no digest: what was verified is the digest
	// the tag has now, and a runtime resolving the tag later may get other
	// bytes. Such an image is denied.
	Unpinned  string
	Requested policy.Capabilities
	// Provider and Fallbacks are, for a model, the providers the manifest
	// serves it from, in order. A model with no file or folder here has a
	// zero Digest.
	Provider  string
	Fallbacks []string
	// Model is, for a model with a file or folder, how it was measured
	// (Digest is its digest). When it was measured as its OMS signature
	// says, that signature, verified from the same bytes by a policy
	// signer, counts toward its signer rules if it lists exactly the files
	// measured (localmodel.Match); if it does not, the model is denied and
	// the report says which files differ.
	Model *localmodel.Measurement
}

// Manifest is the stack manifest as measured: the deployment's name (its
// metadata.name) and the SHA-256 of the manifest's bytes.
type Manifest struct {
	Name   string
	Digest digest.Digest
}

// Evidence is one bundle and where it was found (a file, a referrer, a
// tag), for the report.
type Evidence struct {
	Source string
	Raw    []byte
	// Payload, when not nil, makes the evidence a cosign image signature
	// from the .sig tag (attest.Attachment.Payload): the signed simple
	// signing payload, with Raw the bundle of the message signature over
	// it.
	Payload []byte
}

// Deployment is everything a deployment check needs, gathered by the
// caller: the policy (loaded with policy.LoadSigned for this manifest's
// deployment), the trust material for keyless signers, what was measured,
// and the bundles found.
type Deployment struct {
	Policy     *policy.Policy
	Material   root.TrustedMaterial
	Manifest   Manifest
	Components []Measured
	Providers  []policy.ProviderFacts
	Evidence   []Evidence
	Now        time.Time
}

// Report is the verdict on a deployment: the policy's decisions, and what
// became of each bundle.
type Report struct {
	Allowed   bool              `json:"allowed"`
	Decisions []policy.Decision `json:"decisions"`
	Evidence  []EvidenceResult  `json:"evidence"`
}

// EvidenceResult says what one bundle proved, or why it proved nothing.
type EvidenceResult struct {
	Source        string   `json:"source"`
	Verified      bool     `json:"verified"`
	Signers       []string `json:"signers,omitempty"` // the policy's names for who signed it
	PredicateType string   `json:"predicateType,omitempty"`
	Subjects      []string `json:"subjects,omitempty"` // the components it is about, kind/name
	Error         string   `json:"error,omitempty"`
}

// Check verifies every bundle against every signer the policy trusts and
// evaluates the policy on what is left: facts measured from the bytes that
// will run, and facts read from verified attestations. In particular:
//
//   - each verified attestation is attached to the components (and the
//     manifest) whose measured digest it names;
//   - a signature counts toward signer rules only from an attestation that
//     vouches for its subjects (see endorses), from a message signature
//     over a component's exact bytes, or from a cosign signature of an
//     image's exact digest (neither of which is an attestation), and once
//     per signer however many bundles carry it or however many policy
//     names it verifies under;
//   - packages are read only from verified CycloneDX attestations, by
//     signers the component's cyclonedx attestation rule names (any policy
//     signer when it names none), walking every nested component; what a
//     verified SBOM of the deployment lists outside every component (at
//     its top level) is judged by the deny list too;
//   - an OMS model signature counts only for the local model whose
//     manifest entry names its very bytes, and only when it lists exactly
//     the files measured;
//   - the start command the manifest gives each component must be the one
//     the verified SBOM records for it;
//   - the manifest must be bound: signed, or pinned by the policy.
//
// It is pure.
func Check(d Deployment) Report {
	if d.Policy == nil {
		d.Policy = &policy.Policy{} // names nothing, trusts no one: denies all
	}
	b := newBinder(d)
	var results []EvidenceResult
	var sboms []sbomDoc // verified CycloneDX attestations that name a measured component
	for _, ev := range d.Evidence {
		res, doc := b.attach(ev)
		results = append(results, res)
		if doc != nil {
			sboms = append(sboms, *doc)
		}
	}
	facts := b.facts()
	facts.TopLevel = topLevel(sboms)
	// The deployment-wide SBOM (for required fields and CEL rules) is the
	// one verified SBOM about this deployment. Two that differ leave none,
	// so that the rules fail rather than read whichever came last.
	switch distinctPredicates(sboms) {
	case 1:
		// A statement that cannot be read back leaves no SBOM-wide facts:
		// the rules that need them fail.
		if st, err := statementMap(sboms[0].result.Statement); err == nil {
			facts.SBOM, facts.Statement = sboms[0].asMap, st
		}
	case 0:
	default:
		for i := range results {
			if results[i].PredicateType == attest.PredicateCycloneDX && len(results[i].Subjects) > 0 {
				results[i].Error = "one of several different verified SBOMs of this deployment: none is used for SBOM-wide rules"
			}
		}
	}
	r := policy.Evaluate(d.Policy, facts)
	return Report{Allowed: r.Allowed, Decisions: r.Decisions, Evidence: results}
}

// sbomDoc is a verified CycloneDX attestation, decoded once.
type sbomDoc struct {
	result *bundle.Result
	bom    *cdx.BOM
	asMap  map[string]any
}

// topLevel is what the verified SBOMs of the deployment list outside
// every component (policy.TopLevelPackages), each package once; nil when
// they list nothing there.
func topLevel(docs []sbomDoc) *policy.Packages {
	var all policy.Packages
	for _, d := range docs {
		p := policy.TopLevelPackages(d.bom)
		all.Packages = append(all.Packages, p.Packages...)
		all.Unidentified = append(all.Unidentified, p.Unidentified...)
		all.Systems = append(all.Systems, p.Systems...)
	}
	if all.Empty() {
		return nil
	}
	for _, l := range []*[]string{&all.Packages, &all.Unidentified, &all.Systems} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return &all
}

func distinctPredicates(docs []sbomDoc) int {
	seen := map[string]bool{}
	for _, d := range docs {
		seen[string(d.result.Statement.Predicate)] = true
	}
	return len(seen)
}

// binder gathers what verified evidence proves about each component and
// the manifest.
type binder struct {
	d          Deployment
	components []policy.ComponentFacts
	compSigs   []signatures
	manifest   policy.ManifestFacts
	manSigs    signatures
}

func newBinder(d Deployment) *binder {
	b := &binder{d: d, compSigs: make([]signatures, len(d.Components))}
	b.manifest = policy.ManifestFacts{Name: d.Manifest.Name, Digest: d.Manifest.Digest.String()}
	for _, m := range d.Components {
		c := policy.ComponentFacts{Kind: m.Kind, Name: m.Name, Role: m.Role, Digest: m.Digest.String(), Requested: m.Requested,
			Provider: m.Provider, Fallbacks: m.Fallbacks}
		if m.Unpinned != "" {
			c.Problems = append(c.Problems, policy.Violation{Rule: "ref", Expected: "an image reference pinned by digest (NAME@sha256:...), so that what runs is what was verified", Found: m.Unpinned})
		}
		b.components = append(b.components, c)
	}
	return b
}

// facts returns the facts for the policy, with each component's and the
// manifest's signatures counted once per signer.
func (b *binder) facts() policy.Facts {
	f := policy.Facts{Now: b.d.Now, Providers: b.d.Providers, Components: b.components}
	for i := range f.Components {
		f.Components[i].Signers, f.Components[i].Signatures = b.compSigs[i].lists()
	}
	m := b.manifest
	m.Signers, m.Signatures = b.manSigs.lists()
	f.Manifest = &m
	return f
}

// signatures groups the policy names that verified signatures carry by who
// signed (the signer's key, or a certificate's issuer and subject): the
// same signer counts once, however many bundles, encodings or re-wrapped
// copies of a signature were handed in.
type signatures struct {
	order []string
	names map[string][]string
}

func (s *signatures) add(id string, names []string) {
	if s.names == nil {
		s.names = map[string][]string{}
	}
	if _, ok := s.names[id]; !ok {
		s.order = append(s.order, id)
	}
	for _, n := range names {
		if !slices.Contains(s.names[id], n) {
			s.names[id] = append(s.names[id], n)
		}
	}
}

// lists returns every name that verified, and the names by signature.
func (s *signatures) lists() (signers []string, groups [][]string) {
	for _, id := range s.order {
		groups = append(groups, s.names[id])
		for _, n := range s.names[id] {
			if !slices.Contains(signers, n) {
				signers = append(signers, n)
			}
		}
	}
	return signers, groups
}

// attach verifies one bundle and adds what it proves to the facts: an
// attestation about each component it names and, when it vouches for its
// subjects, the signature toward their signer rules (and the manifest's).
// It returns the decoded SBOM when the bundle is a usable SBOM of the
// deployment.
func (b *binder) attach(ev Evidence) (EvidenceResult, *sbomDoc) {
	out := EvidenceResult{Source: ev.Source}
	if ev.Payload != nil {
		return b.attachImageSignature(out, ev), nil
	}
	bun, err := bundle.Parse(ev.Raw)
	if err != nil {
		out.Error = err.Error()
		return out, nil
	}
	if bundle.IsMessage(bun) {
		return b.attachMessage(out, bun), nil
	}
	var verified *bundle.Result
	for _, s := range b.d.Policy.Signers {
		signer, err := policySigner(s)
		if err != nil {
			out.Error = err.Error()
			continue
		}
		res, err := bundle.Unbound(bun, signer, bundle.Options{Material: b.d.Material})
		if err != nil {
			if out.Error == "" {
				out.Error = err.Error()
			}
			continue
		}
		verified = res
		out.Signers = append(out.Signers, s.Name)
	}
	if verified == nil {
		if len(b.d.Policy.Signers) == 0 {
			out.Error = "the policy trusts no signer"
		}
		return out, nil
	}
	if verified.PredicateType == attest.PredicateCosignSign {
		return b.signedImage(out, verified), nil
	}
	if verified.PredicateType == oms.PredicateType {
		return b.signedModel(out, verified, ev.Raw), nil
	}
	var doc *sbomDoc
	if verified.PredicateType == attest.PredicateCycloneDX {
		bom, asMap, err := policy.DecodeSBOM(verified.Statement.Predicate)
		if err != nil {
			// Signed, but not readable one way only: it proves nothing.
			out.Signers, out.Error = nil, err.Error()
			return out, nil
		}
		doc = &sbomDoc{result: verified, bom: bom, asMap: asMap}
	}
	var pred map[string]any
	if err := json.Unmarshal(verified.Statement.Predicate, &pred); err != nil || pred == nil {
		// Signed, but no predicate a rule could read: it proves nothing.
		out.Signers, out.Error = nil, "the predicate is not a JSON object"
		return out, nil
	}
	out.Verified, out.Error, out.PredicateType = true, "", verified.PredicateType
	group := slices.Clone(out.Signers)
	vouches := b.endorses(verified.PredicateType, pred)
	if vouches && names(verified.Statement, b.d.Manifest.Digest) && b.aboutDeployment(verified, doc) {
		out.Subjects = append(out.Subjects, "manifest")
		b.manSigs.add(verified.SignerID, group)
	}
	about := false
	for i := range b.components {
		c := &b.components[i]
		m := b.d.Components[i]
		if !names(verified.Statement, m.Digest) {
			continue
		}
		about = true
		out.Subjects = append(out.Subjects, c.Kind+"/"+c.Name)
		if vouches {
			b.compSigs[i].add(verified.SignerID, group)
		}
		c.Attestations = append(c.Attestations, policy.AttestationFacts{PredicateType: verified.PredicateType, Signers: group, Signatures: [][]string{group}, Predicate: pred})
		if doc != nil && b.inventories(m, group) {
			b.inventory(c, m, doc.bom)
		}
	}
	if doc == nil || !about {
		return out, nil
	}
	return out, doc
}

// attachMessage verifies a message signature (cosign sign-blob --bundle)
// against every policy signer, for each component whose measured SHA-256
// is the digest it signs: a verified one counts as that signer's signature
// over the component's bytes, toward its signer rules, once per signer. It
// is no attestation: it satisfies no attestations rule, carries no
// packages, and never binds the manifest (whose bytes a signer of some
// other file could have signed by chance).
func (b *binder) attachMessage(out EvidenceResult, bun *sgbundle.Bundle) EvidenceResult {
	out.PredicateType = MessageSignature
	for i := range b.components {
		m := b.d.Components[i]
		if m.Digest.Algorithm() != digest.SHA256 {
			continue
		}
		art := bundle.Artifact{SHA256: m.Digest.Hex()}
		names, id, err, _ := b.policySigners(func(s bundle.Signer) (*bundle.MessageResult, error) {
			return bundle.Message(bun, art, s, bundle.Options{Material: b.d.Material})
		})
		if err != nil && out.Error == "" {
			out.Error = err.Error()
		}
		b.countSignature(&out, i, id, names)
	}
	if !out.Verified && out.Error == "" {
		out.Error = "a message signature over no component's exact bytes, by no policy signer"
	}
	return out
}

// MessageSignature is the evidence type reported for a message signature,
// which has no predicate.
const MessageSignature = "message signature"

// CosignSignature is the evidence type reported for a cosign image
// signature (the .sig tag, or a statement of type
// attest.PredicateCosignSign), which has no predicate.
const CosignSignature = "cosign signature"

// attachImageSignature verifies a cosign image signature of the .sig tag
// (bundle.ImageSignature: the signature over the payload, then the
// payload, which must name the image) against every policy signer, for
// each image component whose measured SHA-256 is the digest the payload
// names (a file that happens to hash the same is no image).
// A verified one counts as that signer's signature over the component's
// bytes, toward its signer rules, once per signer, as a message signature
// over a file does (attachMessage): no attestation, no packages, never the
// manifest.
func (b *binder) attachImageSignature(out EvidenceResult, ev Evidence) EvidenceResult {
	out.PredicateType = CosignSignature
	bun, err := bundle.ParseImageSignature(ev.Raw)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	var elsewhere error // a verified signature of another digest
	for i := range b.components {
		m := b.d.Components[i]
		if m.Kind != "image" || m.Digest.Algorithm() != digest.SHA256 {
			continue // a cosign signature names an image manifest's digest
		}
		art := bundle.Artifact{SHA256: m.Digest.Hex()}
		names, id, err, subject := b.policySigners(func(s bundle.Signer) (*bundle.MessageResult, error) {
			return bundle.ImageSignature(bun, ev.Payload, art, s, bundle.Options{Material: b.d.Material})
		})
		if err != nil && out.Error == "" {
			out.Error = err.Error()
		}
		if subject != nil {
			elsewhere = subject
		}
		b.countSignature(&out, i, id, names)
	}
	switch {
	case out.Verified:
	case elsewhere != nil: // about another image (or payload): say which
		out.Error = elsewhere.Error()
	case out.Error == "":
		out.Error = "a cosign signature of no component's digest, by no policy signer"
	}
	return out
}

// signedImage counts a verified statement of type
// attest.PredicateCosignSign (cosign sign --new-bundle-format) as its
// signer's signature over each image whose measured SHA-256 it names,
// toward its signer rules: no attestation, never the manifest.
func (b *binder) signedImage(out EvidenceResult, verified *bundle.Result) EvidenceResult {
	names := out.Signers
	out.Signers, out.PredicateType = nil, CosignSignature
	for i, m := range b.d.Components {
		if m.Kind == "image" && m.Digest.Algorithm() == digest.SHA256 && bundle.Bind(verified.Statement, bundle.Artifact{SHA256: m.Digest.Hex()}) == nil {
			b.countSignature(&out, i, verified.SignerID, names)
		}
	}
	if !out.Verified {
		out.Error = "a cosign signature of no component's digest"
	}
	return out
}

// policySigners verifies one signature (by verify, for one artifact)
// under each policy signer: the names it verifies under and the signer's
// id; of the refusals, the first that is not about the subject (one that
// says more than that the signer is another), and one that is (a
// signature over other bytes).
func (b *binder) policySigners(verify func(bundle.Signer) (*bundle.MessageResult, error)) (names []string, id string, firstErr, subjectErr error) {
	for _, s := range b.d.Policy.Signers {
		signer, err := policySigner(s)
		if err != nil {
			continue
		}
		res, err := verify(signer)
		switch {
		case errors.Is(err, bundle.ErrSubject):
			subjectErr = err
		case err != nil:
			// Say why for a signer of the bundle's kind, rather than that
			// another signer (a key, for a certificate) is not it.
			if firstErr == nil || errors.Is(firstErr, bundle.ErrUntrustedSigner) && !errors.Is(err, bundle.ErrUntrustedSigner) {
				firstErr = err
			}
		default:
			names, id = append(names, s.Name), res.SignerID
		}
	}
	return names, id, firstErr, subjectErr
}

// ModelSignature is the evidence type reported for an OpenSSF model
// signature (OMS), which attests nothing beyond the model's files.
const ModelSignature = "model signature"

// signedModel counts a verified OMS statement as its signer's signature
// over each local model measured as the same signature bytes say
// (Measured.Model), when it lists exactly the files measured (and as an
// attestation of type oms.PredicateType about it); for a model
// whose files differ, the difference is a problem of the model's decision.
// An OMS signature that no model of the manifest names (one handed in as a
// bundle file, say) proves nothing: which files a model has, and which to
// leave out, are read from the signature the manifest names.
func (b *binder) signedModel(out EvidenceResult, verified *bundle.Result, raw []byte) EvidenceResult {
	names := out.Signers
	out.Signers, out.PredicateType = nil, ModelSignature
	named := false
	for i, m := range b.d.Components {
		if m.Kind != "model" || !m.Model.Signed() || !bytes.Equal(m.Model.Signature, raw) {
			continue
		}
		named = true
		if err := localmodel.Match(verified.Statement, m.Model); err != nil {
			c := &b.components[i]
			v := policy.Violation{Rule: "signature", Expected: "the files its model signature lists (signed by " + strings.Join(names, ", ") + ")", Found: safetext.Line(err.Error())}
			if !slices.Contains(c.Problems, v) {
				c.Problems = append(c.Problems, v)
			}
			out.Error = err.Error()
			continue
		}
		b.countSignature(&out, i, verified.SignerID, names)
		// It also meets an attestations rule of its type (no predicate:
		// the files it lists were just compared).
		c := &b.components[i]
		c.Attestations = append(c.Attestations, policy.AttestationFacts{PredicateType: oms.PredicateType, Signers: names, Signatures: [][]string{names}})
	}
	if !named {
		out.Error = "a model signature that no model of the manifest names as its signature"
	}
	return out
}

// countSignature counts a signature verified under names (by the signer
// id) toward component i's signer rules, and reports it.
func (b *binder) countSignature(out *EvidenceResult, i int, id string, names []string) {
	if len(names) == 0 {
		return
	}
	m := b.d.Components[i]
	b.compSigs[i].add(id, names)
	out.Verified, out.Error = true, ""
	out.Subjects = append(out.Subjects, m.Kind+"/"+m.Name)
	for _, n := range names {
		if !slices.Contains(out.Signers, n) {
			out.Signers = append(out.Signers, n)
		}
	}
}

// aboutDeployment reports whether a vouching attestation that names the
// manifest's digest is a statement about this deployment, not about some
// other artifact that happens to have the same bytes (a "model" file that
// is a copy of a manifest, attested by a model publisher): an SBOM whose
// metadata.component is the deployment (trustgate:kind deployment, and
// this manifest's digest), as trustgate sbom --attest writes, or a PASSED
// verification summary under this policy, which names the manifest only
// when the whole deployment passed. A provenance names build outputs, not
// deployments.
func (b *binder) aboutDeployment(r *bundle.Result, doc *sbomDoc) bool {
	switch r.PredicateType {
	case attest.PredicateVSA:
		return true // endorses checked PASSED and the policy digest
	case attest.PredicateCycloneDX:
		if doc == nil || doc.bom.Metadata == nil || doc.bom.Metadata.Component == nil {
			return false
		}
		c := doc.bom.Metadata.Component
		return sbomprop.Get(c.Properties, sbomprop.Kind) == "deployment" && sbomprop.Get(c.Properties, sbomprop.Digest) == b.d.Manifest.Digest.String()
	}
	return false
}

// inventories reports whether an SBOM signed under these names may supply
// the component's packages: when the policy's cyclonedx attestation rules
// for the component name signers, only theirs does; otherwise any policy
// signer's.
func (b *binder) inventories(m Measured, signedBy []string) bool {
	pc := b.d.Policy.Component(m.Kind, m.Name)
	if pc == nil {
		return true
	}
	named := false
	for _, a := range pc.Attestations {
		if a.PredicateType() != attest.PredicateCycloneDX || a.Signers == nil {
			continue
		}
		named = true
		for _, n := range signedBy {
			if slices.Contains(a.Signers.AnyOf, n) {
				return true
			}
		}
	}
	return !named
}

// inventory reads, from a verified SBOM, the component of this kind and
// name whose recorded digest is the measured one: its packages at any
// depth, and the start command it records, which must be the manifest's.
func (b *binder) inventory(c *policy.ComponentFacts, m Measured, bom *cdx.BOM) {
	if bom.Components == nil {
		return
	}
	for _, sc := range *bom.Components {
		if sc.Name != m.Name || sbomprop.Get(sc.Properties, sbomprop.Kind) != m.Kind || sbomprop.Get(sc.Properties, sbomprop.Digest) != m.Digest.String() {
			continue
		}
		c.SBOM = true
		pkgs, unidentified, systems := policy.PackagesOf(sc)
		c.Packages = append(c.Packages, pkgs...)
		c.Unidentified = append(c.Unidentified, unidentified...)
		c.Systems = append(c.Systems, systems...)
		if !runs(m.Kind) {
			continue
		}
		want, got := sbomprop.Get(sc.Properties, sbomprop.Command), sbomprop.CommandValue(m.Argv)
		v := policy.Violation{Rule: "command", Expected: orNone(want) + " (what the signed SBOM records)", Found: got}
		if want != got && !slices.Contains(c.Problems, v) {
			c.Problems = append(c.Problems, v)
		}
	}
}

func runs(kind string) bool {
	return kind == "gateway" || kind == "plugin" || kind == "agent"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// endorses reports whether a verified statement of this type vouches for
// its subjects, so that its signature counts as the signer's signature over
// them: an SBOM or a provenance does; a verification summary only when it
// says PASSED under this very policy (its policy digest is the digest of
// the policy being applied: a summary made under a laxer policy, a
// staging one with audit modes say, vouches for nothing here); other
// predicates (a policy, a custom type) do not.
func (b *binder) endorses(predicateType string, pred map[string]any) bool {
	switch predicateType {
	case attest.PredicateCycloneDX, attest.PredicateSLSAProvenance:
		return true
	case attest.PredicateVSA:
		return bundle.SummaryPassed(pred) && summaryPolicy(pred) == b.d.Policy.Source().Digest.Hex()
	}
	return false
}

// summaryPolicy is the sha256 (hex) of the policy a summary names.
func summaryPolicy(pred map[string]any) string {
	p, _ := pred["policy"].(map[string]any)
	d, _ := p["digest"].(map[string]any)
	h, _ := d["sha256"].(string)
	return h
}

func policySigner(s policy.Signer) (bundle.Signer, error) {
	if k := s.PublicKey(); k != nil {
		return bundle.Signer{Key: k}, nil
	}
	if s.Keyless == nil {
		return bundle.Signer{}, fmt.Errorf("signer %q has no key or identity", s.Name)
	}
	return bundle.Signer{Identity: s.Keyless}, nil
}

// names reports whether the statement names the digest d among its
// subjects (sha256, or dirHash for an h1 tree digest).
func names(st *attest.Statement, d digest.Digest) bool {
	if d.IsZero() {
		return false // nothing measured (an image check has no manifest)
	}
	art := artifactOf(d)
	return bundle.Bind(st, art) == nil
}

func artifactOf(d digest.Digest) bundle.Artifact {
	switch d.Algorithm() {
	case digest.SHA256:
		return bundle.Artifact{SHA256: d.Hex()}
	case digest.H1:
		return bundle.Artifact{DirHash: d.Hex()}
	case digest.SHA512:
		return bundle.Artifact{SHA512: d.Hex()}
	}
	return bundle.Artifact{}
}

func statementMap(st *attest.Statement) (map[string]any, error) {
	raw, err := st.Bytes()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}
