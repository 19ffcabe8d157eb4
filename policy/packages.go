package policy

import (
	"errors"
	"fmt"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/anchore/packageurl-go"
)

// MaxPackageDepth bounds how deep PackagesOf walks nested components. An
// SBOM nests packages a level or two (a wheel inside a site-packages
// tree); anything deeper is listed as unidentified rather than skipped.
const MaxPackageDepth = 16

// PackagesOf walks every component nested below c, at any depth, and
// sorts what it finds for the deny list and rules: purls (as written; the
// policy parses them strictly when it evaluates), packages with no purl
// (unidentified: a deny list cannot clear them, whatever their type), and
// operating-system records (a distribution: matched by name).
func PackagesOf(c cdx.Component) (purls, unidentified, systems []string) {
	var walk func(cs *[]cdx.Component, depth int)
	walk = func(cs *[]cdx.Component, depth int) {
		if cs == nil {
			return
		}
		for _, p := range *cs {
			switch {
			case depth > MaxPackageDepth:
				unidentified = append(unidentified, p.Name+"@"+p.Version+" (nested deeper than the limit)")
				continue
			case p.PackageURL != "":
				purls = append(purls, p.PackageURL)
			case p.Type == cdx.ComponentTypeOS:
				systems = append(systems, p.Name+"@"+p.Version)
			default:
				unidentified = append(unidentified, p.Name+"@"+p.Version)
			}
			walk(p.Components, depth+1)
		}
	}
	walk(c.Components, 1)
	return purls, unidentified, systems
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
