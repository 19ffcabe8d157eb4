package cli_test

import (
	"context"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/gather"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verify"
)

// BenchmarkVerifyExample: the example deployment verified end to end, as
// trustgate verify does after loading the signed policy: every component
// measured from its bytes (files hashed, the Python folder tree-hashed, the
// image pinned from its OCI layout), the SBOM attestation verified and bound,
// the policy evaluated.
func BenchmarkVerifyExample(b *testing.B) {
	ctx := context.Background()
	s, err := stack.Load(testutil.Example(b))
	if err != nil {
		b.Fatal(err)
	}
	bom, err := sbom.Generate(ctx, s, sbom.Options{})
	if err != nil {
		b.Fatal(err)
	}
	data, err := sbom.Marshal(bom, sbom.DefaultSpecVersion)
	if err != nil {
		b.Fatal(err)
	}
	key, _ := attest.GenerateKey(attest.ECDSAP256)
	st, err := sbom.Statement(bom, data)
	if err != nil {
		b.Fatal(err)
	}
	bnd, err := attest.Sign(ctx, st, key, attest.Services{})
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := attest.MarshalBundle(bnd)
	pub, _ := key.MarshalPublic()
	facts, err := policy.FactsFromSBOM(bom, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	text, err := policy.Init(s.Metadata.Name, facts, policy.InitSigner{Name: "release", PEM: string(pub)})
	if err != nil {
		b.Fatal(err)
	}
	p, err := policy.Parse("policy.yaml", text, policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.ReportAllocs()
	for b.Loop() {
		m, err := gather.Stack(ctx, s, pin.Registry{})
		if err != nil {
			b.Fatal(err)
		}
		r := verify.Check(verify.Deployment{Policy: p, Manifest: m.Manifest, Components: m.Components, Providers: m.Providers,
			Evidence: []verify.Evidence{{Source: "sbom", Raw: raw}}, Now: time.Now()})
		if !r.Allowed {
			b.Fatalf("denied: %+v", r.Decisions)
		}
	}
}
