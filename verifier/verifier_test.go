package verifier_test

import (
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verifier"

	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// deployment is the example deployment in a folder of its own, SBOM-attested
// with key, and a policy for it (policy init) signed with key.
type deployment struct {
	dir string
	key *attest.Key
	cfg verifier.Config
}

func newDeployment(t *testing.T) deployment {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "deploy")
	testutil.CopyDir(t, filepath.Dir(testutil.Example(t)), dir)
	manifest := filepath.Join(dir, "stack.yaml")
	key, _ := attest.GenerateKey(attest.ECDSAP256)
	s, err := stack.Load(manifest)
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbom.Generate(context.Background(), s, sbom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := sbom.Marshal(bom, sbom.DefaultSpecVersion)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sbom.Statement(bom, data)
	if err != nil {
		t.Fatal(err)
	}
	sbomBundle := filepath.Join(dir, "sbom.bundle.json")
	write(t, sbomBundle, testsign.Bundle(t, st, key))
	pub, _ := key.MarshalPublic()
	facts, err := policy.FactsFromSBOM(bom, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	text, err := policy.Init(s.Metadata.Name, facts, policy.InitSigner{Name: "release", PEM: string(pub)})
	if err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.yaml")
	signPolicy(t, key, pol, text)
	return deployment{dir: dir, key: key, cfg: verifier.Config{
		Stack: manifest, Policy: pol, Bundles: []string{sbomBundle},
		Trust:     policy.TrustRoot{Keys: []crypto.PublicKey{key.Public()}},
		StatePath: filepath.Join(t.TempDir(), "state.json"),
	}}
}

func signPolicy(t *testing.T, key *attest.Key, path string, text []byte) {
	t.Helper()
	p, err := policy.Parse(path, text, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := policy.Statement(path, text, p)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, text)
	write(t, path+".bundle.json", testsign.Bundle(t, st, key))
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDeployment(t *testing.T) {
	d := newDeployment(t)
	ctx := context.Background()
	res, err := verifier.Deployment(ctx, d.cfg)
	if err != nil || !res.Allowed {
		t.Fatalf("the example: %v %+v", err, res)
	}
	if res.Stack.Metadata.Name != "example-gateway-deployment" || res.Policy.Metadata.Name != res.Stack.Metadata.Name || len(res.Deployment.Components) < 6 {
		t.Fatalf("result %+v", res)
	}

	// The default state file is under $XDG_STATE_HOME.
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg := d.cfg
	cfg.StatePath = ""
	if _, err := verifier.Deployment(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	def, _ := verifier.DefaultStatePath()
	if _, err := os.Stat(def); err != nil || !strings.HasPrefix(def, os.Getenv("XDG_STATE_HOME")) {
		t.Fatalf("default state %s: %v", def, err)
	}

	// A denial is a report, not an error.
	victim := filepath.Join(d.dir, "plugins", "pii-redactor", "pii_redactor", "__init__.py")
	orig, _ := os.ReadFile(victim)
	write(t, victim, append(orig, '#'))
	res, err = verifier.Deployment(ctx, d.cfg)
	if err != nil || res.Allowed {
		t.Fatalf("a tampered plugin: %v allowed=%v", err, res != nil && res.Allowed)
	}
	write(t, victim, orig)
}

// What refuses the deployment before a report can be made wraps
// ErrDenied and says why; bad input does not.
func TestDeploymentRefusals(t *testing.T) {
	d := newDeployment(t)
	ctx := context.Background()
	other, _ := attest.GenerateKey(attest.ECDSAP256)
	layoutIndex := filepath.Join(d.dir, "images", "gateway", "index.json")
	for _, c := range []struct {
		name   string
		change func(cfg *verifier.Config)
		want   []error
	}{
		{"policy bundle missing", func(cfg *verifier.Config) { cfg.PolicyBundle = filepath.Join(d.dir, "nope.json") }, []error{verifier.ErrDenied, policy.ErrUnsigned}},
		{"policy signed by another key", func(cfg *verifier.Config) {
			cfg.Trust = policy.TrustRoot{Keys: []crypto.PublicKey{other.Public()}}
		}, []error{verifier.ErrDenied, policy.ErrUntrustedSigner}},
		{"a policy for another deployment", func(cfg *verifier.Config) {
			text, _ := os.ReadFile(cfg.Policy)
			p := filepath.Join(d.dir, "other.yaml")
			signPolicy(t, d.key, p, []byte(strings.Replace(string(text), `name: "example-gateway-deployment"`, `name: "staging"`, 1)))
			cfg.Policy = p
		}, []error{verifier.ErrDenied, policy.ErrWrongDeployment}},
		{"the image layout's index is a FIFO", func(*verifier.Config) {
			os.Remove(layoutIndex)
			if err := mkfifo(layoutIndex); err != nil {
				t.Fatal(err)
			}
		}, []error{verifier.ErrDenied, pin.ErrImage}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := d.cfg
			c.change(&cfg)
			_, err := verifier.Deployment(ctx, cfg)
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Fatalf("got %v, want %v", err, w)
				}
			}
		})
	}
	for name, cfg := range map[string]verifier.Config{
		"no trust root": {Stack: d.cfg.Stack, Policy: d.cfg.Policy},
		"no stack":      {Policy: d.cfg.Policy, Trust: d.cfg.Trust},
		"missing stack": {Stack: filepath.Join(d.dir, "nope.yaml"), Policy: d.cfg.Policy, Trust: d.cfg.Trust},
	} {
		if _, err := verifier.Deployment(ctx, cfg); err == nil || errors.Is(err, verifier.ErrDenied) {
			t.Errorf("%s: got %v, want a bad-input error", name, err)
		}
	}
}

func TestImage(t *testing.T) {
	ctx := context.Background()
	ref, _ := testutil.Registry(t, true, nil, "ai/gateway:1.0")
	key, _ := attest.GenerateKey(attest.ECDSAP256)
	other, _ := attest.GenerateKey(attest.ECDSAP256)
	res, err := verifier.Image(ctx, ref, verifier.ImageConfig{Signer: bundle.Signer{Key: key.Public()}})
	if err != nil || res.Passed() || len(res.Attestations) != 0 {
		t.Fatalf("no attestation: %v %+v", err, res)
	}
	d, sub, err := attest.ImageSubject(ctx, ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := attest.NewStatement(attest.PredicateCycloneDX, []byte(testsign.BOMPredicate), sub)
	b, _ := attest.Sign(ctx, st, key, attest.Services{})
	if _, err := attest.Attach(ctx, d, b, pin.Registry{}); err != nil {
		t.Fatal(err)
	}
	res, err = verifier.Image(ctx, ref, verifier.ImageConfig{Signer: bundle.Signer{Key: key.Public()}, Options: bundle.Options{PredicateType: attest.PredicateCycloneDX}})
	if err != nil || !res.Passed() || res.Image.String() != d.String() {
		t.Fatalf("attested image: %v %+v", err, res)
	}
	res, err = verifier.Image(ctx, ref, verifier.ImageConfig{Signer: bundle.Signer{Key: other.Public()}})
	if err != nil || res.Passed() || !errors.Is(res.Attestations[0].Err, bundle.ErrSignature) {
		t.Fatalf("another key: %v %+v", err, res)
	}
}

func TestAttestation(t *testing.T) {
	dir := t.TempDir()
	key, _ := attest.GenerateKey(attest.ECDSAP256)
	file := filepath.Join(dir, "agent.bin")
	write(t, file, []byte("agent v1"))
	st, _ := attest.NewStatement(attest.PredicateCycloneDX, []byte(testsign.BOMPredicate), attest.Subject{Name: "agent.bin", Digest: map[string]string{"sha256": testsign.Sum("agent v1")}})
	bundlePath := filepath.Join(dir, "agent.bundle.json")
	write(t, bundlePath, testsign.Bundle(t, st, key))
	signer := bundle.Signer{Key: key.Public()}
	for _, target := range []string{file, "sha256:" + testsign.Sum("agent v1")} {
		if res, err := verifier.Attestation(bundlePath, target, signer, bundle.Options{}); err != nil || res.PredicateType != attest.PredicateCycloneDX {
			t.Fatalf("%s: %v", target, err)
		}
	}
	other := filepath.Join(dir, "other.bin")
	write(t, other, []byte("agent v2"))
	if _, err := verifier.Attestation(bundlePath, other, signer, bundle.Options{}); !errors.Is(err, verifier.ErrDenied) || !errors.Is(err, bundle.ErrSubject) {
		t.Fatalf("another file: %v", err)
	}
	for _, bad := range []string{"sha256:abc", filepath.Join(dir, "missing")} {
		if _, err := verifier.Attestation(bundlePath, bad, signer, bundle.Options{}); err == nil || errors.Is(err, verifier.ErrDenied) {
			t.Fatalf("%s: got %v, want a bad-input error", bad, err)
		}
	}
}

// The trust material for keyless signatures is loaded only when the policy
// or its trust root names a keyless signer: a deployment with keys alone
// never reaches a TUF repository.
func TestDeploymentLoadsTrustedRootWhenNeeded(t *testing.T) {
	d := newDeployment(t)
	ctx := context.Background()
	empty, err := root.NewTrustedRootFromJSON([]byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	cfg := d.cfg
	cfg.TrustedRoot = func(context.Context) (root.TrustedMaterial, error) { calls++; return empty, nil }
	if res, err := verifier.Deployment(ctx, cfg); err != nil || !res.Allowed || calls != 0 {
		t.Fatalf("keys alone: %v, %d loads", err, calls)
	}

	// A keyless signer in the policy: loaded once, and used.
	text, err := os.ReadFile(cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	keyless := "signers:\n  - name: ci\n    keyless:\n      issuer: https://token.actions.githubusercontent.com\n      subject: https://github.com/example/gateway/.github/workflows/release.yml@refs/heads/main\n"
	text = []byte(strings.Replace(strings.Replace(string(text), "signers:\n", keyless, 1), "version: 1\n", "version: 2\n", 1))
	signPolicy(t, d.key, cfg.Policy, text)
	res, err := verifier.Deployment(ctx, cfg)
	if err != nil || !res.Allowed || calls != 1 || res.Deployment.Material != empty {
		t.Fatalf("a keyless policy signer: %v, %d loads", err, calls)
	}

	// A material that cannot be had is an error that says why.
	cfg.TrustedRoot = func(context.Context) (root.TrustedMaterial, error) { return nil, errors.New("TUF cache expired") }
	if _, err := verifier.Deployment(ctx, cfg); err == nil || !strings.Contains(err.Error(), "TUF cache expired") {
		t.Fatalf("no material: %v", err)
	}

	// A keyless identity that may sign the policy needs it before the
	// policy is read.
	calls = 0
	cfg = d.cfg
	cfg.Trust.Identities = []policy.Identity{{Issuer: "https://token.actions.githubusercontent.com", Subject: "https://github.com/example/policy/.github/workflows/p.yml@refs/heads/main"}}
	cfg.TrustedRoot = func(context.Context) (root.TrustedMaterial, error) { calls++; return empty, nil }
	if _, err := verifier.Deployment(ctx, cfg); calls != 1 {
		t.Fatalf("a keyless policy trust root: %v, %d loads", err, calls)
	}
}
