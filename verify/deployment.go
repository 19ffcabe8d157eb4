package verify

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/sbomprop"
)

// Measured is one component of a deployment as the caller measured it: its
// kind, name and role from the stack manifest, the digest of the bytes that
// will run (never a digest some document claims), and what the deployment's
// config would give it.
type Measured struct {
	Kind, Name, Role string
	Digest           digest.Digest
	Requested        policy.Capabilities
}

// Evidence is one bundle and where it was found (a file, a referrer, a
// tag), for the report.
type Evidence struct {
	Source string
	Raw    []byte
}

// Deployment is everything a deployment check needs, gathered by the
// caller: the policy (loaded with policy.LoadSigned), the trust material
// for keyless signers, what was measured, and the bundles found.
type Deployment struct {
	Policy     *policy.Policy
	Material   root.TrustedMaterial
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

// Check verifies every bundle against every signer the policy trusts,
// attaches each verified attestation to the components whose measured
// digest it names, reads the packages of each component from a verified
// CycloneDX attestation (never from an unsigned file), and evaluates the
// policy. It is pure.
func Check(d Deployment) Report {
	facts := policy.Facts{Now: d.Now, Providers: d.Providers}
	for _, m := range d.Components {
		facts.Components = append(facts.Components, policy.ComponentFacts{
			Kind: m.Kind, Name: m.Name, Role: m.Role, Digest: m.Digest.String(), Requested: m.Requested,
		})
	}
	var results []EvidenceResult
	var sboms []*Result // verified CycloneDX statements that name a measured component
	for _, ev := range d.Evidence {
		res, verified := attach(d, ev, &facts)
		results = append(results, res)
		if verified != nil && verified.PredicateType == attest.PredicateCycloneDX && len(res.Subjects) > 0 {
			sboms = append(sboms, verified)
		}
	}
	// The deployment-wide SBOM (for required fields and CEL rules) is the
	// one verified SBOM about this deployment. Two that differ leave none,
	// so that the rules fail rather than read whichever came last.
	switch distinctPredicates(sboms) {
	case 1:
		_ = json.Unmarshal(sboms[0].Statement.Predicate, &facts.SBOM)
		facts.Statement = statementMap(sboms[0].Statement)
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

func distinctPredicates(rs []*Result) int {
	seen := map[string]bool{}
	for _, r := range rs {
		seen[string(r.Statement.Predicate)] = true
	}
	return len(seen)
}

// attach verifies one bundle and adds what it proves to the facts: an
// attestation about each component it names, and, when it asserts
// something of the component (an SBOM, a provenance, a PASSED verification
// summary), the signature toward the component's signer rules.
func attach(d Deployment, ev Evidence, facts *policy.Facts) (EvidenceResult, *Result) {
	out := EvidenceResult{Source: ev.Source}
	b, err := parseRaw(ev.Raw)
	if err != nil {
		out.Error = err.Error()
		return out, nil
	}
	var verified *Result
	for _, s := range d.Policy.Signers {
		signer, err := policySigner(s)
		if err != nil {
			out.Error = err.Error()
			continue
		}
		res, err := parsedUnbound(b, signer, Options{Material: d.Material})
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
		if len(d.Policy.Signers) == 0 {
			out.Error = "the policy trusts no signer"
		}
		return out, nil
	}
	out.Verified, out.Error, out.PredicateType = true, "", verified.PredicateType
	var pred map[string]any
	_ = json.Unmarshal(verified.Statement.Predicate, &pred)
	var bom *cdx.BOM
	if verified.PredicateType == attest.PredicateCycloneDX {
		var b cdx.BOM
		if json.Unmarshal(verified.Statement.Predicate, &b) == nil {
			bom = &b
		}
	}
	// The names this one signature verified under count as one signature.
	group := slices.Clone(out.Signers)
	endorses := endorsement(verified.PredicateType, pred)
	for i := range facts.Components {
		c := &facts.Components[i]
		if !names(verified.Statement, d.Components[i].Digest) {
			continue
		}
		out.Subjects = append(out.Subjects, c.Kind+"/"+c.Name)
		if endorses {
			for _, n := range group {
				if !slices.Contains(c.Signers, n) {
					c.Signers = append(c.Signers, n)
				}
			}
			c.Signatures = append(c.Signatures, group)
		}
		c.Attestations = append(c.Attestations, policy.AttestationFacts{PredicateType: verified.PredicateType, Signers: group, Signatures: [][]string{group}, Predicate: pred})
		if bom != nil {
			pkgs, unidentified, listed := packagesOf(bom, c.Kind, c.Name, d.Components[i].Digest)
			c.Packages = append(c.Packages, pkgs...)
			c.Unidentified = append(c.Unidentified, unidentified...)
			c.SBOM = c.SBOM || listed
		}
	}
	return out, verified
}

// Endorses reports whether a verified attestation vouches for its subjects
// (see endorsement): a verification summary that did not pass does not.
func Endorses(r *Result) bool {
	var pred map[string]any
	_ = json.Unmarshal(r.Statement.Predicate, &pred)
	switch r.PredicateType {
	case attest.PredicateVSA:
		return endorsement(r.PredicateType, pred)
	}
	return true
}

// endorsement reports whether a statement of this type vouches for its
// subjects, so that its signature counts as the signer's signature over
// them: an SBOM or a provenance does, a verification summary only when it
// says PASSED, and other predicates (a policy, a custom type) do not.
func endorsement(predicateType string, pred map[string]any) bool {
	switch predicateType {
	case attest.PredicateCycloneDX, attest.PredicateSLSAProvenance:
		return true
	case attest.PredicateVSA:
		r, _ := pred["verificationResult"].(string)
		return r == "PASSED"
	}
	return false
}

func policySigner(s policy.Signer) (Signer, error) {
	if k := s.PublicKey(); k != nil {
		return Signer{Key: k}, nil
	}
	if s.Keyless == nil {
		return Signer{}, fmt.Errorf("signer %q has no key or identity", s.Name)
	}
	id, err := NewIdentity(s.Keyless.Issuer, s.Keyless.IssuerRegexp, s.Keyless.Subject, s.Keyless.SubjectRegexp)
	if err != nil {
		return Signer{}, err
	}
	return Signer{Identity: id}, nil
}

// names reports whether the statement names the digest d among its
// subjects (sha256, or dirHash for an h1 tree digest).
func names(st *attest.Statement, d digest.Digest) bool {
	art := artifactOf(d)
	return bind(st, art) == nil
}

func artifactOf(d digest.Digest) Artifact {
	switch d.Algorithm() {
	case digest.SHA256:
		return Artifact{SHA256: d.Hex()}
	case digest.H1:
		return Artifact{DirHash: d.Hex()}
	case digest.SHA512:
		return Artifact{SHA512: d.Hex()}
	}
	return Artifact{}
}

// packagesOf lists the purls a verified SBOM records inside the component
// of this kind and name whose recorded digest is the measured one, the
// packages it lists there without a purl, and whether it has that
// component at all.
func packagesOf(bom *cdx.BOM, kind, name string, d digest.Digest) (out, unidentified []string, listed bool) {
	if bom.Components == nil {
		return nil, nil, false
	}
	for _, c := range *bom.Components {
		if c.Name != name || sbomprop.Get(c.Properties, sbomprop.Kind) != kind || sbomprop.Get(c.Properties, sbomprop.Digest) != d.String() {
			continue
		}
		listed = true
		if c.Components != nil {
			for _, p := range *c.Components {
				switch {
				case p.PackageURL != "":
					out = append(out, p.PackageURL)
				case p.Type != cdx.ComponentTypeFile && p.Type != cdx.ComponentTypeOS:
					unidentified = append(unidentified, p.Name+"@"+p.Version)
				}
			}
		}
	}
	return out, unidentified, listed
}

func statementMap(st *attest.Statement) map[string]any {
	raw, err := st.Bytes()
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}
