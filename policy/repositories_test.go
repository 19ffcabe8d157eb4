package policy

import (
	"github.com/trustgate/trustgate/digest"

	"testing"
	"time"
)

func TestRepositoryMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, repo string
		want          bool
	}{
		{"ghcr.io/acme/gateway", "ghcr.io/acme/gateway", true},
		{"ghcr.io/acme/gateway", "ghcr.io/acme/gateway2", false},
		{"ghcr.io/acme/gateway", "ghcr.io/acme/gateway/sub", false},
		{"ghcr.io/acme/gateway", "evil.io/ghcr.io/acme/gateway", false},
		{"ghcr.io/acme/*", "ghcr.io/acme/gateway", true},
		{"ghcr.io/acme/*", "ghcr.io/acme/plugins/guard", false},
		{"ghcr.io/acme/plugin-*", "ghcr.io/acme/plugin-guard", true},
		{"ghcr.io/acme/plugin-*", "ghcr.io/acme/gateway", false},
		{"ghcr.io/acme/**", "ghcr.io/acme/plugins/guard", true},
		{"ghcr.io/acme/**", "ghcr.io/acme/gateway", true},
		{"ghcr.io/acme/**", "ghcr.io/acme", false},
		{"ghcr.io/acme/**", "ghcr.io/acmecorp/gateway", false},
		{"ghcr.io/acme/**", "ghcr.io.evil/acme/gateway", false},
		{"docker.io/library/nginx", "index.docker.io/library/nginx", true},
		{"localhost:5000/trustgate/*", "localhost:5000/trustgate/gateway", true},
	} {
		if got := repositoryMatch(c.pattern, c.repo); got != c.want {
			t.Errorf("repositoryMatch(%q, %q) = %v, want %v", c.pattern, c.repo, got, c.want)
		}
	}
}

func TestImageComponentFirstMatch(t *testing.T) {
	p := &Policy{Components: []Component{
		{Name: "gw", Kind: "plugin"},
		{Name: "gateway", Kind: "image", Repositories: []string{"ghcr.io/acme/gateway"}},
		{Name: "rest", Kind: "image", Repositories: []string{"ghcr.io/acme/**"}},
	}}
	if c := p.ImageComponent("ghcr.io/acme/gateway"); c == nil || c.Name != "gateway" {
		t.Fatalf("got %+v, want gateway", c)
	}
	if c := p.ImageComponent("ghcr.io/acme/x/y"); c == nil || c.Name != "rest" {
		t.Fatalf("got %+v, want rest", c)
	}
	if c := p.ImageComponent("ghcr.io/other/gateway"); c != nil {
		t.Fatalf("got %+v, want none", c)
	}
}

func TestEvaluateComponentJudgesOnlyIt(t *testing.T) {
	p := &Policy{
		Components: []Component{
			{Name: "gateway", Kind: "image", Digests: []string{"sha256:" + hex64('a')}},
			{Name: "absent-plugin", Kind: "plugin", Digests: []string{"sha256:" + hex64('b')}},
		},
		expires: time.Now().Add(time.Hour),
	}
	p.Components[0].digests = mustDigests(t, p.Components[0].Digests)
	ok := EvaluateComponent(p, ComponentFacts{Kind: "image", Name: "gateway", Digest: "sha256:" + hex64('a')}, time.Now())
	if !ok.Allowed || len(ok.Decisions) != 1 {
		t.Fatalf("pinned image: %+v", ok)
	}
	bad := EvaluateComponent(p, ComponentFacts{Kind: "image", Name: "gateway", Digest: "sha256:" + hex64('c')}, time.Now())
	if bad.Allowed || bad.Decisions[0].Rule != "components[0].digests" {
		t.Fatalf("other digest: %+v", bad)
	}
	unnamed := EvaluateComponent(p, ComponentFacts{Kind: "image", Digest: "sha256:" + hex64('a')}, time.Now())
	if unnamed.Allowed || unnamed.Decisions[0].Rule != "repositories" {
		t.Fatalf("unnamed image: %+v", unnamed)
	}
	expired := EvaluateComponent(p, ComponentFacts{Kind: "image", Name: "gateway", Digest: "sha256:" + hex64('a')}, time.Now().Add(2*time.Hour))
	if expired.Allowed || expired.Decisions[0].Rule != "expires" {
		t.Fatalf("expired policy: %+v", expired)
	}
}

func hex64(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func mustDigests(t *testing.T, ds []string) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	for _, d := range ds {
		p, err := digest.Parse(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
