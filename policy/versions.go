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
	p, err := packageurl.FromString(r.Purl)
	if err != nil || p.Type == "" || p.Name == "" {
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
	switch {
	case p.Type == "pypi":
		spec, err := pep440.NewSpecifiers(v, pep440.WithPreRelease(true))
		if err != nil {
			return fmt.Errorf("%w: not a PEP 440 version specifier (such as >=1.82.7,<=1.82.8)", ErrVersionRange)
		}
		r.match = func(version string) (bool, error) {
			pv, err := pep440.Parse(version)
			if err != nil {
				return true, fmt.Errorf("version %q is not PEP 440", version)
			}
			return spec.Check(pv), nil
		}
	case semverTypes[p.Type]:
		c, err := semver.NewConstraint(v)
		if err != nil {
			return fmt.Errorf("%w: not a semver constraint (such as >=1.2.0, <1.2.5)", ErrVersionRange)
		}
		r.match = func(version string) (bool, error) {
			sv, err := semver.NewVersion(version)
			if err != nil {
				return true, fmt.Errorf("version %q is not semver", version)
			}
			// Constraints leave pre-releases out unless they name one; a
			// denied range must not be dodged by a pre-release tag.
			return c.Check(sv) || c.Check(coreVersion(sv)), nil
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

func coreVersion(v *semver.Version) *semver.Version {
	core, _ := semver.NewVersion(fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch()))
	return core
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

// matches reports whether the package with this purl is denied by r, and
// the note to report when its version could not be compared.
func (r *PackageRule) matches(purl string) (bool, string) {
	p, err := packageurl.FromString(purl)
	if err != nil || p.Type != r.purlType || packageName(p.Type, p.Namespace, p.Name) != r.purlName {
		return false, ""
	}
	in, err := r.match(p.Version)
	if err != nil {
		return true, err.Error()
	}
	return in, ""
}
