package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/common/types"

	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/sbomprop"
)

// requiredFields are the SBOM fields a policy can require:
//
//	serialNumber          the BOM has a serial number
//	metadata.component    the BOM names what it describes
//	metadata.timestamp    the BOM says when it was made
//	components.hashes     every top-level component carries a hash (a
//	                      folder: its h1 tree digest, which CycloneDX has
//	                      no hash algorithm for, as trustgate:digest; a
//	                      signed model: its signature's digest, likewise;
//	                      a model served by a provider has no bytes to hash)
//	components.purl       every package nested in a component has a purl
//	components.licenses   every package nested in a component names a license
//	dependencies          the BOM has a dependency graph
var requiredFields = []string{
	"serialNumber", "metadata.component", "metadata.timestamp",
	"components.hashes", "components.purl", "components.licenses", "dependencies",
}

// requiredFields checks the SBOM document for every required field.
func (p *Policy) requiredFields(bom map[string]any) []Violation {
	var out []Violation
	for i, field := range p.SBOM.Require {
		if bom == nil {
			out = append(out, Violation{fmt.Sprintf("sbom.require[%d]", i), field, "no SBOM"})
			continue
		}
		if missing := missingField(bom, field); missing != "" {
			out = append(out, Violation{fmt.Sprintf("sbom.require[%d]", i), field, missing})
		}
	}
	return out
}

// missingField returns "" when bom has field, else what lacks it.
func missingField(bom map[string]any, field string) string {
	comps, _ := bom["components"].([]any)
	switch field {
	case "serialNumber", "dependencies":
		if isEmpty(bom[field]) {
			return "missing"
		}
	case "metadata.component", "metadata.timestamp":
		if isEmpty(lookupAny(bom, "metadata", field[len("metadata."):])) {
			return "missing"
		}
	case "components.hashes":
		for _, c := range comps {
			m, _ := c.(map[string]any)
			if isEmpty(m["hashes"]) && !hashExempt(m) {
				return fmt.Sprintf("component %q has none", m["bom-ref"])
			}
		}
	case "components.purl", "components.licenses":
		key := field[len("components."):]
		for _, c := range comps {
			m, _ := c.(map[string]any)
			nested, _ := m["components"].([]any)
			for _, n := range nested {
				nm, _ := n.(map[string]any)
				if isEmpty(nm[key]) {
					return fmt.Sprintf("package %q in %q has none", nm["name"], m["name"])
				}
			}
		}
	}
	return ""
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// celViolations runs the CEL rules that apply to c. An evaluation error
// (a missing key, the cost limit) is a violation: a rule that cannot say
// yes says no.
//
// A rule sees the packages that have a purl that parses; a component with
// a package it cannot see (no purl, or one that does not parse, such as
// pkg:pypi/ns/litellm) is a violation of the first rule that applies, so
// that a package cannot pass a rule by being unreadable.
func (p *Policy) celViolations(c ComponentFacts, f Facts) []Violation {
	var out []Violation
	unseen := unreadablePackages(c)
	for i := range p.SBOM.Rules {
		r := &p.SBOM.Rules[i]
		if r.program == nil || (len(r.Kinds) > 0 && !slices.Contains(r.Kinds, c.Kind)) {
			continue
		}
		if len(unseen) > 0 {
			out = append(out, Violation{fmt.Sprintf("sbom.rules[%d] (%s)", i, r.Name), "every package identified by a purl that parses, so the rule can judge it", strings.Join(unseen, ", ")})
			unseen = nil
		}
		want := r.Message
		if want == "" {
			want = r.Expression
		}
		at := fmt.Sprintf("sbom.rules[%d] (%s)", i, r.Name)
		ctx, cancel := context.WithTimeout(context.Background(), celTimeout)
		val, _, err := r.program.ContextEval(ctx, map[string]any{
			"component": componentValue(c),
			"sbom":      orEmpty(f.SBOM),
			"statement": orEmpty(f.Statement),
			"now":       f.Now,
		})
		cancel()
		switch {
		case err != nil:
			out = append(out, Violation{at, want, "evaluation error: " + safetext.Line(err.Error())})
		case val != types.True:
			out = append(out, Violation{at, want, "false"})
		}
	}
	return out
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// unreadablePackages lists the component's packages a CEL rule could not
// see: those without a purl, and those whose purl does not parse.
func unreadablePackages(c ComponentFacts) []string {
	out := slices.Clone(c.Unidentified)
	for _, raw := range c.Packages {
		if _, err := ParsePurl(raw); err != nil {
			out = append(out, raw)
		}
	}
	return out
}

// componentValue is the "component" variable CEL rules see.
func componentValue(c ComponentFacts) map[string]any {
	pkgs := make([]any, 0, len(c.Packages))
	for _, purl := range c.Packages {
		m := map[string]any{"purl": purl, "type": "", "name": "", "version": ""}
		if p, err := ParsePurl(purl); err == nil {
			m["type"], m["version"] = p.Type, p.Version
			m["name"] = p.Name
			if p.Namespace != "" {
				m["name"] = p.Namespace + "/" + p.Name
			}
		}
		pkgs = append(pkgs, m)
	}
	signers := make([]any, len(c.Signers))
	for i, s := range c.Signers {
		signers[i] = s
	}
	fallbacks := make([]any, len(c.Fallbacks))
	for i, f := range c.Fallbacks {
		fallbacks[i] = f
	}
	return map[string]any{
		"name": c.Name, "kind": c.Kind, "role": c.Role, "digest": c.Digest,
		"packages": pkgs, "signers": signers, "provider": c.Provider, "fallbacks": fallbacks,
	}
}

// hashExempt reports whether a component without hashes is still pinned
// (a folder, by its h1 tree digest property; a model with an OMS
// signature, by the digest of the serialization it signs) or has nothing
// to pin (a model with no digest: one a provider serves).
func hashExempt(m map[string]any) bool {
	props := map[string]string{}
	list, _ := m["properties"].([]any)
	for _, p := range list {
		pm, _ := p.(map[string]any)
		name, _ := pm["name"].(string)
		value, _ := pm["value"].(string)
		props[name] = value
	}
	d := props[sbomprop.Digest]
	model := props[sbomprop.Kind] == "model"
	return strings.HasPrefix(d, "h1:") || (model && (d == "" || props[sbomprop.Signature] != ""))
}
