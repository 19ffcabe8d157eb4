// Package admissiontest sets up what the admission webhook's tests and its
// benchmark program verify against: a real OCI registry on 127.0.0.1
// (go-containerregistry's), images pushed to it, attestations signed with
// real keys and attached beside them, and a signed policy naming the
// images by repository.
package admissiontest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/testcert"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
)

// TB is the part of testing.TB the kit needs, so that the benchmark
// program can use it outside a test.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// Deployment is the name the kit's policies govern.
const Deployment = "cluster-images"

// Kit is one registry, two signing keys and a policy folder.
type Kit struct {
	t TB
	// Host is the registry's host:port on 127.0.0.1.
	Host string
	// Release signs for the policy (its signer "release"); Other is a key
	// the policy does not trust.
	Release, Other *attest.Key
	// Dir holds the policy, its bundle and the state file.
	Dir string
	// hold, while set, makes the registry wait that long before each
	// answer (a slow registry).
	hold  atomic.Int64
	srv   *httptest.Server
	count func(*http.Request)
}

// New starts a registry (with the OCI referrers API) and makes the keys.
// wrap, when not nil, sees every request first (to count or refuse them).
func New(t TB, wrap func(*http.Request)) *Kit {
	t.Helper()
	k := &Kit{t: t, Dir: t.TempDir(), count: wrap}
	var err error
	if k.Release, err = attest.GenerateKey(attest.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	if k.Other, err = attest.GenerateKey(attest.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k.count != nil {
			k.count(r)
		}
		if d := time.Duration(k.hold.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(k.srv.Close)
	k.Host = strings.TrimPrefix(k.srv.URL, "http://")
	return k
}

// Slow makes every registry answer wait d (0: none).
func (k *Kit) Slow(d time.Duration) { k.hold.Store(int64(d)) }

// Stop shuts the registry down: every later request is refused.
func (k *Kit) Stop() { k.srv.Close() }

// Push pushes a new random image as repo:tag (repo under the kit's host)
// and returns its reference by digest.
func (k *Kit) Push(repoTag string) name.Digest {
	k.t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		k.t.Fatal(err)
	}
	return k.PushImage(repoTag, img)
}

// PushImage pushes img as repo:tag and returns its reference by digest.
func (k *Kit) PushImage(repoTag string, img v1.Image) name.Digest {
	k.t.Helper()
	tag, err := name.NewTag(k.Host + "/" + repoTag)
	if err != nil {
		k.t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		k.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		k.t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

// Statement is a CycloneDX attestation about img, the kind that vouches
// for its subject.
func Statement(img name.Digest) *attest.Statement {
	sub := attest.Subject{Name: img.Context().Name(), Digest: map[string]string{"sha256": strings.TrimPrefix(img.DigestStr(), "sha256:")}}
	st, err := attest.NewStatement(attest.PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`), sub)
	if err != nil {
		panic(err) // a constant statement
	}
	return st
}

// Sign signs an SBOM attestation about img with key and attaches it
// beside the image (as an OCI referrer).
func (k *Kit) Sign(img name.Digest, key *attest.Key) {
	k.t.Helper()
	b, err := attest.Sign(context.Background(), Statement(img), key, attest.Services{})
	if err != nil {
		k.t.Fatal(err)
	}
	if _, err := attest.Attach(context.Background(), img, b, pin.Registry{}); err != nil {
		k.t.Fatal(err)
	}
}

// AttachTampered attaches an attestation signed by the release key whose
// statement was changed after signing: it names img, but its signature
// is over another statement.
func (k *Kit) AttachTampered(img name.Digest) {
	k.t.Helper()
	st := Statement(img)
	st.Subject[0].Digest["sha256"] = strings.Repeat("0", 64)
	b, err := attest.Sign(context.Background(), st, k.Release, attest.Services{})
	if err != nil {
		k.t.Fatal(err)
	}
	raw, err := b.MarshalJSON()
	if err != nil {
		k.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		k.t.Fatal(err)
	}
	good, err := Statement(img).Bytes()
	if err != nil {
		k.t.Fatal(err)
	}
	env := m["dsseEnvelope"].(map[string]any)
	env["payload"] = good // encoding/json writes []byte as base64, as DSSE wants
	raw, err = json.Marshal(m)
	if err != nil {
		k.t.Fatal(err)
	}
	tampered, err := attest.ParseBundle(raw)
	if err != nil {
		k.t.Fatal(err)
	}
	if _, err := attest.Attach(context.Background(), img, tampered, pin.Registry{}); err != nil {
		k.t.Fatal(err)
	}
}

// Components is the image part of a policy: YAML list items.
type Components string

// DefaultComponents names three images: the gateway and the plugins
// (enforced, signed by release) and an agent in audit mode.
func (k *Kit) DefaultComponents() Components {
	return Components(fmt.Sprintf(`  - name: gateway
    kind: image
    repositories: [%[1]s/trustgate/gateway]
    signers:
      anyOf: [release]
  - name: plugins
    kind: image
    repositories: [%[1]s/trustgate/plugins/**]
    signers:
      anyOf: [release]
  - name: audit-agent
    kind: image
    mode: audit
    repositories: [%[1]s/trustgate/agent]
    signers:
      anyOf: [release]
`, k.Host))
}

// PolicyText is a policy of this version naming comps, expiring at expires
// (zero: in a year).
func (k *Kit) PolicyText(version int, comps Components, expires time.Time) []byte {
	k.t.Helper()
	if expires.IsZero() {
		expires = time.Now().Add(365 * 24 * time.Hour)
	}
	pub, err := k.Release.MarshalPublic()
	if err != nil {
		k.t.Fatal(err)
	}
	indented := "      " + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")
	return fmt.Appendf(nil, `apiVersion: trustgate.dev/v1
kind: Policy
metadata:
  name: %s
version: %d
expires: %q
signers:
  - name: release
    key: |
%s
components:
%s`, Deployment, version, expires.UTC().Format(time.RFC3339), indented, comps)
}

// PolicyPath is where WritePolicy writes.
func (k *Kit) PolicyPath() string { return filepath.Join(k.Dir, "policy.yaml") }

// StatePath is the policy state file of the kit's policy.
func (k *Kit) StatePath() string { return filepath.Join(k.Dir, "state.json") }

// WritePolicy signs text with key and writes the policy and its bundle,
// the bundle first, each by rename, as a ConfigMap update would swap
// them.
func (k *Kit) WritePolicy(text []byte, key *attest.Key) {
	k.t.Helper()
	k.WriteFiles(text, k.PolicyBundle(text, key))
}

// PolicyBundle signs the policy text with key.
func (k *Kit) PolicyBundle(text []byte, key *attest.Key) []byte {
	k.t.Helper()
	p, err := policy.Parse(k.PolicyPath(), text, policy.Options{})
	if err != nil {
		k.t.Fatal(err)
	}
	st, err := policy.Statement(k.PolicyPath(), text, p)
	if err != nil {
		k.t.Fatal(err)
	}
	b, err := attest.Sign(context.Background(), st, key, attest.Services{})
	if err != nil {
		k.t.Fatal(err)
	}
	raw, err := b.MarshalJSON()
	if err != nil {
		k.t.Fatal(err)
	}
	return raw
}

// WriteFiles writes a policy and a bundle as they are.
func (k *Kit) WriteFiles(text, bundleJSON []byte) {
	k.t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{k.PolicyPath() + ".bundle.json", bundleJSON}, {k.PolicyPath(), text}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o644); err != nil {
			k.t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			k.t.Fatal(err)
		}
	}
}

// Trust is the trust root that accepts policies signed by Release.
func (k *Kit) Trust() policy.TrustRoot {
	return policy.TrustRoot{Keys: []crypto.PublicKey{k.Release.Public()}}
}

// Sum is sha256:<hex> of data.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(h[:])
}

// ServingCert makes a CA and a serving certificate for 127.0.0.1 and
// localhost (and the DNS names given), writes the certificate and key as
// PEM files in dir, and returns their paths and the CA's PEM (for a
// webhook configuration's caBundle, or a client's root pool).
func ServingCert(t TB, dir string, dnsNames ...string) (certFile, keyFile string, caPEM []byte) {
	t.Helper()
	ca := testcert.NewCA(t)
	certFile, keyFile = ca.Issue(t, dir, "tls", dnsNames...)
	return certFile, keyFile, ca.PEM()
}

// Review is an AdmissionReview request (admission.k8s.io/v1) to create
// the object obj (JSON) of the kind given as group/version/Kind, in
// namespace apps.
func Review(uid, gvk string, obj []byte, dryRun bool) []byte {
	parts := strings.SplitN(gvk, "/", 3)
	req := map[string]any{
		"uid":       uid,
		"kind":      map[string]string{"group": parts[0], "version": parts[1], "kind": parts[2]},
		"operation": "CREATE", "namespace": "apps", "name": "w", "dryRun": dryRun,
		"object": json.RawMessage(obj),
	}
	out, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	if err != nil {
		panic(err)
	}
	return out
}

// Pod is a Pod's JSON with one container of this image.
func Pod(image string) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w","namespace":"apps"},"spec":{"containers":[{"name":"app","image":%q}]}}`, image)
}

// ExampleImage is a small image whose bytes depend on nothing but name:
// one uncompressed layer holding the file /trustgate-example with name in
// it, so that its digest is the same on every machine and can be written
// in examples/kubernetes.
func ExampleImage(name string) v1.Image {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("trustgate example image: " + name + "\n")
	if err := tw.WriteHeader(&tar.Header{Name: "trustgate-example", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		panic(err)
	}
	if _, err := tw.Write(body); err != nil {
		panic(err)
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		panic(err)
	}
	return mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1)
}
