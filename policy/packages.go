package policy

import (
	"errors"
	"fmt"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/anchore/packageurl-go"

	"github.com/trustgate/trustgate/sbomprop"
)

// MaxPackageDepth bounds how deep PackagesOf walks nested components. An
// SBOM nests packages a level or two (a wheel inside a site-packages
// tree); anything deeper is listed as unidentified rather than skipped.
const MaxPackageDepth = 16

// PackagesOf sorts, for the deny list and rules, the component c's own
// package URL (when it has one) and every component nested below c, at any
// depth: purls (as written; the policy parses them strictly when it
// evaluates), packages with no purl (unidentified: a deny list cannot clear
// them, whatever their type), and operating-system records (a
// distribution: matched by name).
func PackagesOf(c cdx.Component) (purls, unidentified, systems []string) {
	var s sorter
	if c.PackageURL != "" {
		s.purls = append(s.purls, c.PackageURL)
	}
	s.walk(c.Components, 1)
	return s.purls, s.unidentified, s.systems
}

// Packages are packages an SBOM lists, sorted as PackagesOf sorts them.
type Packages struct {
	Packages     []string `json:"packages,omitempty" yaml:"packages,omitempty"`
	Unidentified []string `json:"unidentified,omitempty" yaml:"unidentified,omitempty"`
	Systems      []string `json:"systems,omitempty" yaml:"systems,omitempty"`
}

// Empty reports whether there are no packages.
func (p *Packages) Empty() bool {
	return p == nil || len(p.Packages)+len(p.Unidentified)+len(p.Systems) == 0
}

// TopLevelPackages sorts what an SBOM lists outside trustgate's own
// components: each top-level component that is none of them (it has no
// trustgate:kind property: a package listed at the top, as syft and most
// tools list packages), the SBOM's metadata component's own purl, and
// everything nested in either, at any depth. The deny list applies to them
// as to a component's packages.
func TopLevelPackages(bom *cdx.BOM) Packages {
	var s sorter
	if bom == nil {
		return Packages{}
	}
	if md := bom.Metadata; md != nil && md.Component != nil {
		if md.Component.PackageURL != "" {
			s.purls = append(s.purls, md.Component.PackageURL)
		}
		s.walk(md.Component.Components, 1)
	}
	if bom.Components != nil {
		var loose []cdx.Component
		for _, c := range *bom.Components {
			if sbomprop.Get(c.Properties, sbomprop.Kind) == "" {
				loose = append(loose, c)
			}
		}
		s.walk(&loose, 0)
	}
	return Packages{Packages: s.purls, Unidentified: s.unidentified, Systems: s.systems}
}

// sorter collects packages by kind.
type sorter struct{ purls, unidentified, systems []string }

// walk sorts the components cs, depth levels below the top, and all they
// nest; past MaxPackageDepth each is unidentified rather than skipped.
func (s *sorter) walk(cs *[]cdx.Component, depth int) {
	if cs == nil {
		return
	}
	for _, p := range *cs {
		switch {
		case depth > MaxPackageDepth:
			s.unidentified = append(s.unidentified, p.Name+"@"+p.Version+" (nested deeper than the limit)")
			continue
		case p.PackageURL != "":
			s.purls = append(s.purls, p.PackageURL)
		case p.Type == cdx.ComponentTypeOS:
			s.systems = append(s.systems, p.Name+"@"+p.Version)
		default:
			s.unidentified = append(s.unidentified, p.Name+"@"+p.Version)
		}
		s.walk(p.Components, depth+1)
	}
}

// typesWithoutNamespace are the purl types whose spec has no namespace: a
// purl such as pkg:pypi/ns/litellm names no real package, and must not
// slip past a deny rule for pkg:pypi/litellm.
var typesWithoutNamespace = map[string]bool{
	"pypi": true, "cargo": true, "gem": true, "nuget": true, "pub": true,
	"hackage": true, "cran": true, "conda": true,
}

// ParsePurl reads a package URL strictly, so that one package has one
// reading: the parser must accept it, and beyond that it must have a type
// and a name, no empty path segment (a trailing or doubled /), qualifiers
// each with a key and a value and no key twice, and no namespace where its
// type has none. The type is compared in lower case.
func ParsePurl(s string) (packageurl.PackageURL, error) {
	p, err := packageurl.FromString(s)
	if err != nil {
		return p, errors.New("not a package URL")
	}
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return p, errors.New("not a package URL")
	}
	rest, _, _ = strings.Cut(rest, "#")
	path, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		seen := map[string]bool{}
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			k = strings.ToLower(k)
			switch {
			case k == "" || v == "":
				return p, errors.New("a qualifier without a key or a value")
			case seen[k]:
				return p, fmt.Errorf("qualifier %q given twice", k)
			}
			seen[k] = true
		}
	}
	if i := strings.LastIndexByte(path, '@'); i >= 0 && i > strings.LastIndexByte(path, '/') {
		path = path[:i]
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" {
			return p, errors.New("an empty path segment")
		}
	}
	p.Type = strings.ToLower(p.Type)
	switch {
	case p.Type == "" || p.Name == "":
		return p, errors.New("no type or name")
	case p.Namespace != "" && typesWithoutNamespace[p.Type]:
		return p, fmt.Errorf("%s packages have no namespace", p.Type)
	}
	return p, nil
}
