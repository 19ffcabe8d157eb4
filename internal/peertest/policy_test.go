package peertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/sigstoretest"
	"github.com/trustgate/trustgate/policy"
)

const keylessPolicy = `apiVersion: trustgate.dev/v1
kind: Policy
metadata: {name: example}
version: 5
expires: "2099-01-01T00:00:00Z"
components:
  - {name: gw, kind: gateway, digests: ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]}
`

// A keyless-signed policy loads under the identity that signed it, with
// the trusted root of the real Sigstore services on loopback, and is
// refused under another identity.
func TestLoadSignedKeylessRealServices(t *testing.T) {
	env := sigstoretest.Start(t)
	data := []byte(keylessPolicy)
	p, err := policy.Parse("policy.yaml", data, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := policy.Statement("policy.yaml", data, p)
	if err != nil {
		t.Fatal(err)
	}
	svc := attest.Services{Fulcio: env.FulcioURL, Rekor: []attest.Log{{URL: env.RekorURL, Version: 2}}, TSA: []string{env.TSAURL}}
	b, err := attest.SignKeyless(context.Background(), st, env.Token(t, sigstoretest.DefaultIdentity), svc)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := attest.MarshalBundle(b)
	material, err := root.NewTrustedRootFromJSON(env.TrustedRootJSON)
	if err != nil {
		t.Fatal(err)
	}
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	good := policy.TrustRoot{Material: material, Identities: []policy.Identity{{Issuer: issuer, Subject: san}}}
	if _, err := policy.LoadSigned("policy.yaml", data, raw, good, "example", nil, time.Now()); err != nil {
		t.Fatalf("keyless policy does not load: %v", err)
	}
	other := policy.TrustRoot{Material: material, Identities: []policy.Identity{{Issuer: issuer, SubjectRegexp: `^someone-else@.*$`}}}
	if _, err := policy.LoadSigned("policy.yaml", data, raw, other, "example", nil, time.Now()); !errors.Is(err, policy.ErrUntrustedSigner) {
		t.Fatalf("other identity: got %v, want policy.ErrUntrustedSigner", err)
	}
	if _, err := policy.LoadSigned("policy.yaml", data, raw, policy.TrustRoot{Identities: good.Identities}, "example", nil, time.Now()); !errors.Is(err, policy.ErrUntrustedSigner) {
		t.Fatalf("no trusted root: got %v, want policy.ErrUntrustedSigner", err)
	}
}
