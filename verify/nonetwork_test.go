package verify

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/testsign"
)

// failingTransport fails the test on any request, and counts them.
type failingTransport struct {
	t     *testing.T
	calls atomic.Int32
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	f.t.Errorf("verification made a network request: %s %s", r.Method, r.URL)
	return nil, http.ErrUseLastResponse
}

// Verification of bundles and of a deployment against local trust material
// makes no network call: every HTTP transport and the default dialer are
// replaced by ones that fail the test, then key, keyless and deployment
// checks run (the fixtures are made before, with the network allowed).
func TestNoNetwork(t *testing.T) {
	v := testsign.NewVirtual(t)
	keylessRaw := v.Keyless(t, "signer@example.com", []byte(testsign.StatementJSON(attest.StatementType, testsign.Sum("artifact A"), attest.PredicateCycloneDX)))
	material := v.TrustedMaterial()
	id, err := bundle.NewIdentity(testsign.Issuer, "", "signer@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	keyRaw := testsign.Payload(t, k, testsign.StatementJSON(attest.StatementType, testsign.Sum("artifact A"), attest.PredicateCycloneDX), attest.PayloadType)
	fx := newDeployFixture(t, "1.82.6")
	deploy := fx.deployment(t, Evidence{Source: "b", Raw: fx.bundle(t, fx.key)})

	ft := &failingTransport{t: t}
	savedTransport, savedClient := http.DefaultTransport, http.DefaultClient.Transport
	http.DefaultTransport, http.DefaultClient.Transport = ft, ft
	savedDial := net.DefaultResolver.Dial
	net.DefaultResolver.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		ft.calls.Add(1)
		t.Errorf("verification resolved a name through %s", address)
		return nil, net.ErrClosed
	}
	defer func() {
		http.DefaultTransport, http.DefaultClient.Transport = savedTransport, savedClient
		net.DefaultResolver.Dial = savedDial
	}()

	art := bundle.Artifact{SHA256: testsign.Sum("artifact A")}
	if _, err := bundle.Verify(keyRaw, art, bundle.Signer{Key: k.Public()}, bundle.Options{}); err != nil {
		t.Errorf("key: %v", err)
	}
	if _, err := bundle.Verify(keylessRaw, art, bundle.Signer{Identity: id}, bundle.Options{Material: material}); err != nil {
		t.Errorf("keyless: %v", err)
	}
	if r := Check(deploy); !r.Allowed {
		t.Errorf("deployment denied: %+v", r.Decisions)
	}
	if n := ft.calls.Load(); n != 0 {
		t.Fatalf("%d network calls", n)
	}
}
