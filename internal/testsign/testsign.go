// Package testsign signs statements for tests. It is apart from testutil,
// which attest's own tests import.
package testsign

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/sigstoretest"
)

// Bundle signs st with k (no log, no timestamp) and returns the
// Sigstore bundle JSON, failing the test on any error.
func Bundle(t testing.TB, st *attest.Statement, k *attest.Key) []byte {
	t.Helper()
	b, err := attest.Sign(context.Background(), st, k, attest.Services{})
	return marshal(t, b, err)
}

// BOMPredicate is a minimal CycloneDX predicate.
const BOMPredicate = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`

// Sum is the SHA-256 of s in hex.
func Sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// StatementJSON is a statement about artifact "A" with the given
// statement type, sha256 and predicate type.
func StatementJSON(typ, sha, predType string) string {
	return `{"_type":"` + typ + `","subject":[{"name":"A","digest":{"sha256":"` + sha + `"}}],"predicateType":"` + predType + `","predicate":` + BOMPredicate + `}`
}

// Payload signs any payload as DSSE with k: adversarial fixtures are
// validly signed, so only the one broken thing can make them fail.
func Payload(t testing.TB, k *attest.Key, payload, payloadType string) []byte {
	t.Helper()
	pb, err := sign.Bundle(&sign.DSSEData{Data: []byte(payload), PayloadType: payloadType}, k, sign.BundleOptions{Context: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.ParseBundleProto(pb)
	return marshal(t, b, err)
}

// Message signs content as a message signature with k (no log, no
// timestamp), as cosign sign-blob --bundle does, and returns the bundle
// JSON.
func Message(t testing.TB, k *attest.Key, content []byte) []byte {
	t.Helper()
	pb, err := sign.Bundle(&sign.PlainData{Data: content}, k, sign.BundleOptions{Context: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.ParseBundleProto(pb)
	return marshal(t, b, err)
}

// ImagePayload is the simple signing payload cosign sign writes for the
// image ref (repository) at digest ("sha256:<hex>"), byte for byte.
func ImagePayload(ref, digest string) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"` + ref + `"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`)
}

// ImageSignature signs payload with k as cosign sign --key does (the
// signature that goes in a .sig layer's annotation) and returns the
// signature and the bundle attest builds from it (attest.SignatureBundle).
func ImageSignature(t testing.TB, k *attest.Key, payload []byte) (sig, raw []byte) {
	t.Helper()
	sig, _, err := k.SignData(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err = attest.SignatureBundle(payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	return sig, raw
}

// Edit decodes a bundle, lets f change it, and encodes it again.
func Edit(t testing.TB, raw []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Envelope is a decoded bundle's DSSE envelope.
func Envelope(m map[string]any) map[string]any { return m["dsseEnvelope"].(map[string]any) }

// Keyless signs a CycloneDX attestation about "artifact A"'s content
// keyless against the local Sigstore services of env.
func Keyless(t testing.TB, env *sigstoretest.Env, content string) []byte {
	t.Helper()
	st, err := attest.NewStatement(attest.PredicateCycloneDX, []byte(BOMPredicate),
		attest.Subject{Name: "A", Digest: map[string]string{"sha256": Sum(content)}})
	if err != nil {
		t.Fatal(err)
	}
	return KeylessStatement(t, env, st, sigstoretest.DefaultIdentity)
}

// KeylessStatement signs st keyless as identity against env's services.
func KeylessStatement(t testing.TB, env *sigstoretest.Env, st *attest.Statement, identity string) []byte {
	t.Helper()
	svc := attest.Services{Fulcio: env.FulcioURL, Rekor: []attest.Log{{URL: env.RekorURL, Version: 2}}, TSA: []string{env.TSAURL}}
	b, err := attest.SignKeyless(context.Background(), st, env.Token(t, identity), svc)
	return marshal(t, b, err)
}

// marshal is the bundle b as JSON, failing the test on err or any error.
func marshal(t testing.TB, b *sgbundle.Bundle, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := attest.MarshalBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TrustedRoot is env's trusted root with f (if any) applied to its JSON.
func TrustedRoot(t testing.TB, env *sigstoretest.Env, f func(m map[string]any)) root.TrustedMaterial {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(env.TrustedRootJSON, &m); err != nil {
		t.Fatal(err)
	}
	if f != nil {
		f(m)
	}
	data, _ := json.Marshal(m)
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// Virtual is an in-process Sigstore (sigstore-go's virtual Fulcio, Rekor
// and timestamp authority): keyless bundles for unit tests that need no
// peer program. Its TrustedMaterial is what such bundles verify against.
type Virtual struct {
	vs *ca.VirtualSigstore
}

// NewVirtual starts an in-process Sigstore.
func NewVirtual(t testing.TB) *Virtual {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return &Virtual{vs: vs}
}

// TrustedMaterial is the virtual instance's trusted root, without CT logs:
// its certificates carry no SCTs, as a private Fulcio without a CT log
// issues them.
func (v *Virtual) TrustedMaterial() root.TrustedMaterial { return noCTLogs{v.vs} }

// WithCTLogs is the trusted root with the virtual CT log, which every
// certificate must then carry an SCT from (and these do not).
func (v *Virtual) WithCTLogs() root.TrustedMaterial { return v.vs }

type noCTLogs struct{ root.TrustedMaterial }

func (noCTLogs) CTLogs() map[string]*root.TransparencyLog { return nil }

// Issuer is the OIDC issuer the virtual instance's certificates name.
const Issuer = "https://issuer.virtual.example"

// complete adds to a virtual log entry what a bundle carries and the
// virtual instance leaves out: the entry's kind and version, and its
// inclusion promise (the log's signed entry timestamp).
func (v *Virtual) complete(t testing.TB, tle *protorekor.TransparencyLogEntry) *protorekor.TransparencyLogEntry {
	t.Helper()
	var body struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(tle.CanonicalizedBody, &body); err != nil {
		t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: body.Kind, Version: body.APIVersion}
	set, err := v.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex,
		LogID: hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		t.Fatal(err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle
}

// Keyless signs statement (JSON) as identity, keyless: a Fulcio
// certificate, a Rekor entry with its inclusion proof and promise, and an
// RFC 3161 timestamp, as a Sigstore bundle v0.3.
func (v *Virtual) Keyless(t testing.TB, identity string, statement []byte) []byte {
	t.Helper()
	e, err := v.vs.AttestAtTime(identity, Issuer, statement, time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := e.VerificationContent()
	sc, _ := e.SignatureContent()
	env := sc.(*sgbundle.Envelope).Envelope
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := e.TlogEntries()
	stamps, _ := e.Timestamps()
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	for _, entry := range entries {
		pb.VerificationMaterial.TlogEntries = append(pb.VerificationMaterial.TlogEntries, v.complete(t, entry.TransparencyLogEntry()))
	}
	tvd := &protobundle.TimestampVerificationData{}
	for _, s := range stamps {
		tvd.Rfc3161Timestamps = append(tvd.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: s})
	}
	pb.VerificationMaterial.TimestampVerificationData = tvd
	b, err := attest.ParseBundleProto(pb)
	return marshal(t, b, err)
}

// PublicKeyFile generates an ECDSA P-256 key and writes its public half,
// PEM, to path: a trust root for a test that needs one and signs nothing.
func PublicKeyFile(t testing.TB, path string) (*attest.Key, string) {
	t.Helper()
	k, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return k, path
}
