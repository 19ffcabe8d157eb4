package policy

import (
	"errors"
	"path"
	"strings"
	"time"
)

// ImageComponent returns the first image component, in the policy's order,
// one of whose Repositories matches repo, a repository name as
// go-containerregistry writes it (name.Repository.Name(): registry host,
// then path; Docker Hub as index.docker.io). It returns nil when no entry
// names the repository: such an image is decided by the policy's default.
func (p *Policy) ImageComponent(repo string) *Component {
	if p == nil {
		return nil
	}
	for i := range p.Components {
		c := &p.Components[i]
		if c.Kind != "image" {
			continue
		}
		for _, pattern := range c.Repositories {
			if repositoryMatch(pattern, repo) {
				return c
			}
		}
	}
	return nil
}

// repositoryMatch reports whether a repository pattern matches repo: * is
// path.Match's (never across a /), and a final /** matches any path
// below what precedes it, at any depth (not the bare prefix itself).
func repositoryMatch(pattern, repo string) bool {
	pattern = canonicalHost(pattern)
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		n := strings.Count(prefix, "/") + 1
		parts := strings.SplitN(repo, "/", n+1)
		if len(parts) <= n {
			return false
		}
		ok, err := path.Match(prefix, strings.Join(parts[:n], "/"))
		return ok && err == nil
	}
	ok, err := path.Match(pattern, repo)
	return ok && err == nil
}

// canonicalHost writes Docker Hub's host as go-containerregistry does.
func canonicalHost(pattern string) string {
	if rest, ok := strings.CutPrefix(pattern, "docker.io/"); ok {
		return "index.docker.io/" + rest
	}
	return pattern
}

// checkRepositoryPattern refuses what could never match, or would match
// more than its author can have meant: no registry host, a tag or a
// digest, upper case, a ** anywhere but at the end.
func checkRepositoryPattern(p string) error {
	host, rest, ok := strings.Cut(p, "/")
	switch {
	case !ok || rest == "":
		return errors.New("want REGISTRY/PATH, such as ghcr.io/acme/gateway")
	case !strings.ContainsAny(host, ".:") && host != "localhost":
		return errors.New("the first part must be a registry host (ghcr.io, docker.io, localhost:5000)")
	case strings.ContainsAny(host, "*?["):
		return errors.New("the registry host must be written out, without wildcards")
	case strings.ContainsAny(p, "@") || strings.Contains(rest, ":"):
		return errors.New("a repository names no tag or digest")
	case strings.ToLower(p) != p:
		return errors.New("repositories are lower case")
	case strings.Contains(strings.TrimSuffix(p, "/**"), "**"):
		return errors.New("** is only allowed as the final /**")
	}
	if _, err := path.Match(strings.TrimSuffix(p, "/**"), ""); err != nil {
		return err
	}
	return nil
}

// EvaluateComponent decides on one component on its own, as the admission
// webhook sees an image: the policy's expiry, then the component's
// decision, as Evaluate gives it. Nothing else is judged: the components
// the policy names and c is not, the manifest, the providers. A c whose
// Name is "" is one no entry names (no repositories match): denied, or
// audited when the policy's default says so.
func EvaluateComponent(p *Policy, c ComponentFacts, now time.Time) Report {
	var r Report
	if p == nil {
		p = &Policy{}
	}
	if d := p.expired(now); d != nil {
		r.add(*d)
		return r.done()
	}
	if c.Name == "" {
		d := Decision{Subject: c.Kind, Mode: ModeEnforce, Violations: []Violation{{
			Rule: "repositories", Expected: "a policy " + c.Kind + " entry whose repositories name its repository", Found: "none"}}}
		if p.Default == ModeAudit {
			d.Mode = ModeAudit
		}
		r.add(d)
		return r.done()
	}
	r.add(p.component(c, Facts{Now: now, Components: []ComponentFacts{c}}))
	return r.done()
}
