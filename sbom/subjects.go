package sbom

import (
	"fmt"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/sbomprop"
)

// Subjects lists what an attestation of bom is about: the stack manifest
// (metadata.component) and every top-level component (gateway, plugins,
// agents, models, images), each by the digest trustgate recorded for it.
// A subject is named by its path relative to the manifest, or by its
// bom-ref when it has no path (an image pulled from a registry).
func Subjects(bom *cdx.BOM) ([]attest.Subject, error) {
	if bom == nil || bom.Metadata == nil || bom.Metadata.Component == nil {
		return nil, fmt.Errorf("sbom: BOM has no metadata component")
	}
	all := []cdx.Component{*bom.Metadata.Component}
	if bom.Components != nil {
		all = append(all, *bom.Components...)
	}
	seen := map[string]attest.Subject{}
	var out []attest.Subject
	for _, c := range all {
		d := sbomprop.Get(c.Properties, sbomprop.Digest)
		if d == "" {
			continue
		}
		parsed, err := digest.Parse(d)
		if err != nil {
			return nil, fmt.Errorf("sbom: component %q: %w", c.BOMRef, err)
		}
		alg := "sha256"
		switch parsed.Algorithm() {
		case digest.SHA256:
		case digest.H1:
			alg = "dirHash"
		default:
			return nil, fmt.Errorf("sbom: component %q: digest %s cannot be a subject", c.BOMRef, parsed.Algorithm())
		}
		s := attest.Subject{Name: sbomprop.Get(c.Properties, sbomprop.Path), Digest: map[string]string{alg: parsed.Hex()}}
		if s.Name == "" {
			s.Name = c.BOMRef
		}
		if prev, ok := seen[s.Name]; ok {
			if prev.Digest[alg] != s.Digest[alg] {
				return nil, fmt.Errorf("sbom: %q has two different digests", s.Name)
			}
			continue
		}
		seen[s.Name] = s
		out = append(out, s)
	}
	return out, nil
}

// Statement is the in-toto statement that attests an SBOM: predicate type
// CycloneDX, the SBOM's bytes (data, as Marshal wrote them) as predicate,
// and Subjects(bom) as subjects.
func Statement(bom *cdx.BOM, data []byte) (*attest.Statement, error) {
	subjects, err := Subjects(bom)
	if err != nil {
		return nil, err
	}
	return attest.NewStatement(attest.PredicateCycloneDX, data, subjects...)
}
