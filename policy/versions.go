package policy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/anchore/packageurl-go"
	pep440 "github.com/aquasecurity/go-pep440-version"
)

// versionMatcher says whether a version is in a rule's range. A version
// the scheme cannot read is reported as an error, and the caller counts it
// as in range: a denied package is not let through because its version is
// odd.
type versionMatcher func(version string) (bool, error)

// Version schemes by purl type.
var semverTypes = map[string]bool{"golang": true, "npm": true, "cargo": true}

func anyVersion(string) (bool, error) { return true, nil }

func (r *PackageRule) compile() error {
	p, err := ParsePurl(r.Purl)
	if err != nil {
		return fmt.Errorf("%w: want a package URL such as pkg:pypi/litellm", ErrInvalid)
	}
	if p.Version != "" {
		return fmt.Errorf("%w: give the purl without a version; put versions in versions", ErrInvalid)
	}
	r.purlType, r.purlName = p.Type, packageName(p.Type, p.Namespace, p.Name)
	v := strings.TrimSpace(r.Versions)
	if v == "" || v == "*" {
		r.match = anyVersion
		return nil
	}
	alternatives := strings.Split(v, "||")
	for _, alt := range alternatives {
		if err := conflictingExacts(alt); err != nil {
			return err
		}
	}
	switch {
	case p.Type == "pypi":
		// Alternatives are ORed with ||, as for the other schemes; each is
		// a PEP 440 specifier set (its commas AND).
		var specs []pep440.Specifiers
		for _, alt := range alternatives {
			spec, err := pep440.NewSpecifiers(strings.TrimSpace(alt), pep440.WithPreRelease(true))
			if err != nil {
				return fmt.Errorf("%w: not a PEP 440 version specifier (such as >=1.82.7,<=1.82.8)", ErrVersionRange)
			}
			specs = append(specs, spec)
		}
		r.match = func(version string) (bool, error) {
			pv, err := pep440.Parse(version)
			if err != nil {
				return true, fmt.Errorf("version %q is not PEP 440", version)
			}
			for _, spec := range specs {
				if spec.Check(pv) {
					return true, nil
				}
			}
			return false, nil
		}
	case semverTypes[p.Type]:
		c, err := semver.NewConstraint(v)
		if err != nil {
			return fmt.Errorf("%w: not a semver constraint (such as >=1.2.0, <1.2.5)", ErrVersionRange)
		}
		// Constraints leave pre-releases out unless they name one; a
		// denied range must not be dodged by a pre-release tag or a Go
		// pseudo-version.
		c.IncludePrerelease = true
		r.match = func(version string) (bool, error) {
			sv, err := semver.NewVersion(version)
			if err != nil {
				return true, fmt.Errorf("version %q is not semver", version)
			}
			return c.Check(sv), nil
		}
	default:
		exact, err := exactVersions(v)
		if err != nil {
			return err
		}
		r.match = func(version string) (bool, error) { return exact[version], nil }
	}
	return nil
}

// conflictingExacts refuses an AND of exact versions that differ, such as
// "==1.82.7, ==1.82.8": it can match nothing, so a deny rule written that
// way would deny nothing. Alternatives are written with ||.
func conflictingExacts(alt string) error {
	var exact string
	for _, clause := range strings.Split(alt, ",") {
		c := strings.TrimSpace(clause)
		op := strings.TrimRight(c[:len(c)-len(strings.TrimLeft(c, "=<>!~^ "))], " ")
		if op != "" && op != "==" && op != "=" && op != "===" {
			continue
		}
		ver := strings.TrimSpace(strings.TrimLeft(c, "= "))
		if ver == "" {
			continue
		}
		if exact != "" && ver != exact {
			return fmt.Errorf("%w: %s and %s are ANDed by the comma, so nothing matches; write alternatives as ==A || ==B", ErrVersionRange, exact, ver)
		}
		exact = ver
	}
	return nil
}

var exactPattern = regexp.MustCompile(`^==\s*[^\s,|]+$`)

// exactVersions reads "==1.0 || ==1.1", the one form for ecosystems without
// a range syntax here.
func exactVersions(v string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, part := range strings.Split(v, "||") {
		part = strings.TrimSpace(part)
		if !exactPattern.MatchString(part) {
			return nil, fmt.Errorf("%w: this package type has no range scheme here; list exact versions as ==1.0 || ==1.1, or * for all", ErrVersionRange)
		}
		out[strings.TrimSpace(strings.TrimPrefix(part, "=="))] = true
	}
	return out, nil
}

// packageName is a package's comparable name: namespace/name, with PyPI's
// normalization (case, and runs of -_. as one -).
func packageName(typ, ns, name string) string {
	n := name
	if ns != "" {
		n = ns + "/" + name
	}
	if typ == "pypi" {
		n = strings.ToLower(pypiSeparators.ReplaceAllString(n, "-"))
	}
	return n
}

var pypiSeparators = regexp.MustCompile(`[-_.]+`)

// matches reports whether the package p is denied by r, and the note to
// report when its version could not be compared.
func (r *PackageRule) matches(p packageurl.PackageURL) (bool, string) {
	if p.Type != r.purlType || packageName(p.Type, p.Namespace, p.Name) != r.purlName {
		return false, ""
	}
	return r.inRange(p.Version)
}

// inRange reports whether version is in the rule's range. An empty or
// unreadable version counts as in range, with a note saying why.
func (r *PackageRule) inRange(version string) (bool, string) {
	if version == "" {
		return true, "no version given, so it cannot be shown to be outside the range"
	}
	in, err := r.match(version)
	if err != nil {
		return true, err.Error()
	}
	return in, ""
}
