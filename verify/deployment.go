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
	for _, ev := range d.Evidence {
		results = append(results, attach(d, ev, &facts))
	}
	r := policy.Evaluate(d.Policy, facts)
	return Report{Allowed: r.Allowed, Decisions: r.Decisions, Evidence: results}
}

// attach verifies one bundle and adds what it proves to the facts.
func attach(d Deployment, ev Evidence, facts *policy.Facts) EvidenceResult {
	out := EvidenceResult{Source: ev.Source}
	var verified *Result
	for _, s := range d.Policy.Signers {
		signer, err := policySigner(s)
		if err != nil {
			out.Error = err.Error()
			continue
		}
		res, err := bundleAbout(ev.Raw, signer, d.Material)
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
		return out
	}
	out.Verified, out.Error, out.PredicateType = true, "", verified.PredicateType
	var pred map[string]any
	_ = json.Unmarshal(verified.Statement.Predicate, &pred)
	var bom *cdx.BOM
	if verified.PredicateType == attest.PredicateCycloneDX {
		var b cdx.BOM
		if json.Unmarshal(verified.Statement.Predicate, &b) == nil {
			bom = &b
			facts.SBOM = pred
			facts.Statement = statementMap(verified.Statement)
		}
	}
	for i := range facts.Components {
		c := &facts.Components[i]
		if !names(verified.Statement, d.Components[i].Digest) {
			continue
		}
		out.Subjects = append(out.Subjects, c.Kind+"/"+c.Name)
		for _, n := range out.Signers {
			if !slices.Contains(c.Signers, n) {
				c.Signers = append(c.Signers, n)
			}
		}
		c.Attestations = append(c.Attestations, policy.AttestationFacts{PredicateType: verified.PredicateType, Signers: out.Signers, Predicate: pred})
		if bom != nil {
			pkgs, listed := packagesOf(bom, c.Kind, c.Name, d.Components[i].Digest)
			c.Packages = append(c.Packages, pkgs...)
			c.SBOM = c.SBOM || listed
		}
	}
	return out
}

// bundleAbout verifies a bundle's signature for a signer, not yet bound to
// an artifact: the binding is names(), per component.
func bundleAbout(raw []byte, s Signer, material root.TrustedMaterial) (*Result, error) {
	return verifyUnbound(raw, s, Options{Material: material})
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
// of this kind and name whose recorded digest is the measured one; listed
// says whether the SBOM has that component at all.
func packagesOf(bom *cdx.BOM, kind, name string, d digest.Digest) (out []string, listed bool) {
	if bom.Components == nil {
		return nil, false
	}
	for _, c := range *bom.Components {
		if c.Name != name || sbomprop.Get(c.Properties, sbomprop.Kind) != kind || sbomprop.Get(c.Properties, sbomprop.Digest) != d.String() {
			continue
		}
		listed = true
		if c.Components != nil {
			for _, p := range *c.Components {
				if p.PackageURL != "" {
					out = append(out, p.PackageURL)
				}
			}
		}
	}
	return out, listed
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
