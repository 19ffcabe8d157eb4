package verifier_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/sigstoretest"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/verifier"
)

// Keyless cosign signatures made against the local Fulcio with
// --tlog-upload=false and an RFC 3161 timestamp from the local TSA, in
// cosign's tag scheme (.sig and .att layers with the certificate, its
// chain and the timestamp in annotations, and no Rekor bundle).
//
// By default trustgate refuses every one of them for the missing log entry
// (bundle.ErrLog): a keyless signature needs one, as cosign's does unless
// --insecure-ignore-tlog (cosign then refuses them too: "offline
// verification failed"). With the explicit opt-in
// bundle.Identity.IgnoreTlog (verify image --insecure-ignore-tlog, a
// policy signer's keyless ignoreTlog),
// the TSA's timestamp must vouch for the time instead:
//
//   - .sig: accepted for the signer, refused for another identity and for
//     another issuer, refused with another layer's timestamp, refused with
//     no timestamp (no verified time at all).
//   - .att: refused even for the signer, because cosign v2.6.5's attest
//     asks the TSA to timestamp the whole DSSE envelope's JSON (the layer's
//     bytes; cmd/cosign/cli/attest/attest.go: tsaPayload = signedPayload
//     unless --new-bundle-format), while a Sigstore bundle's timestamp, as
//     sigstore-go verifies it, is over the DSSE signature; no bundle can
//     carry cosign's. cosign verifies it over the envelope and accepts.
//     The test checks the timestamp's imprint both ways, and that
//     sigstore-go accepts the .att bundle at the current time (so only the
//     timestamp stands in the way).
//
// cosign, with --insecure-ignore-tlog --use-signed-timestamps, accepts
// both as written, refuses another identity, another issuer and swapped
// timestamps, and ACCEPTS both with the timestamp annotation removed: it
// then checks the certificate against the current time (pkg/cosign/
// verify.go verifyInternal), which for a certificate issued minutes ago
// passes. trustgate refuses them (no verified time).
//
// Both registries give the same verdicts.
func TestImageCosignKeylessWithoutLog(t *testing.T) {
	interop.Cosign(t)
	env := sigstoretest.Start(t)
	got := map[string]map[string]string{}
	for _, r := range registries {
		t.Run(r.name, func(t *testing.T) {
			got[r.name] = cosignKeylessWithoutLog(t, env, r.image(t))
		})
	}
	if len(got) == len(registries) && !maps.Equal(got[registries[0].name], got[registries[1].name]) {
		t.Fatalf("the registries disagree:\n%v\n%v", got[registries[0].name], got[registries[1].name])
	}
	for _, r := range registries {
		for _, k := range slices.Sorted(maps.Keys(got[r.name])) {
			t.Logf("%s: %s: %s", r.name, k, got[r.name][k])
		}
	}
}

// Annotations of cosign's tag-scheme layers.
const (
	klCertAnn      = "dev.sigstore.cosign/certificate"
	klChainAnn     = "dev.sigstore.cosign/chain"
	klRekorAnn     = "dev.sigstore.cosign/bundle"
	klTimestampAnn = "dev.sigstore.cosign/rfc3161timestamp"
)

func cosignKeylessWithoutLog(t *testing.T, env *sigstoretest.Env, ref string) map[string]string {
	ctx := context.Background()
	img, _, err := attest.ImageSubject(ctx, ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	sbom := filepath.Join(t.TempDir(), "sbom.json")
	if err := os.WriteFile(sbom, []byte(cdxPredicate), 0o644); err != nil {
		t.Fatal(err)
	}
	k := interop.KeylessFor(t, env, sigstoretest.DefaultIdentity)
	interop.CosignSignKeyless(t, k, img.String())
	interop.CosignAttestKeyless(t, k, "cyclonedx", sbom, img.String())

	// What cosign wrote: one layer each, keyless, timestamped, not logged.
	sigLayers, attLayers := testutil.ReadSigTag(t, img), testutil.ReadTag(t, testutil.AttTag(t, img))
	if len(sigLayers) != 1 || len(attLayers) != 1 {
		t.Fatalf("cosign wrote %d .sig and %d .att layers, want 1 and 1", len(sigLayers), len(attLayers))
	}
	goodSig, goodAtt := sigLayers[0], attLayers[0]
	for what, l := range map[string]testutil.SigLayer{".sig": goodSig, ".att": goodAtt} {
		for _, a := range []string{klCertAnn, klChainAnn, klTimestampAnn} {
			if l.Annotations[a] == "" {
				t.Fatalf("cosign's %s layer has no %s annotation: %v", what, a, slices.Sorted(maps.Keys(l.Annotations)))
			}
		}
		if _, ok := l.Annotations[klRekorAnn]; ok {
			t.Fatalf("cosign's %s layer has a Rekor bundle with --tlog-upload=false", what)
		}
	}
	rawSig, err := base64.StdEncoding.DecodeString(goodSig.Annotations[testutil.CosignSignatureAnnotation])
	if err != nil || len(rawSig) == 0 {
		t.Fatalf("the .sig layer's signature annotation: %v", err)
	}

	material, err := verifier.TrustedRoot(env.TrustedRootPath)
	if err != nil {
		t.Fatal(err)
	}
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	signers := []struct{ name, issuer, san string }{
		{"the signer", issuer, san},
		{"another identity", issuer, "someone-else@sigstoretest.example.com"},
		{"another issuer", "https://token.actions.githubusercontent.com", san},
	}
	identity := func(issuer, san string) *bundle.Identity {
		id, err := bundle.NewIdentity(issuer, "", san, "")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	// The .att timestamp is over the envelope (the layer's bytes), and not
	// over the DSSE signature; the .sig timestamp is over the raw
	// signature.
	sigTS, attTS := klTimestamp(t, goodSig), klTimestamp(t, goodAtt)
	if err := klTimestampOver(sigTS, rawSig, material); err != nil {
		t.Errorf("the .sig timestamp is not over the signature: %v", err)
	}
	if err := klTimestampOver(attTS, goodAtt.Payload, material); err != nil {
		t.Errorf("the .att timestamp is not over the envelope: %v", err)
	}
	if err := klTimestampOver(attTS, klDSSESignature(t, goodAtt.Payload), material); err == nil {
		t.Error("the .att timestamp is over the DSSE signature: cosign changed, and trustgate's verdict on .att below should change with it")
	}

	verdicts := map[string]string{}
	record := func(name, got, want string) {
		t.Helper()
		verdicts[name] = got
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	tg := func(att, sig string) string { return "trustgate .att " + att + ", .sig " + sig }
	cs := func(att, sig string) string { return "cosign .att " + att + ", .sig " + sig }
	const (
		ok       = "ok"
		noLog    = "refused for the log"
		noID     = "refused for the identity"
		noTime   = "refused for the timestamp"
		offline  = "refused: offline verification failed"
		wrongID  = "refused: none of the expected identities matched"
		wrongTSA = "refused: unable to verify RFC3161 timestamp"
		crashed  = "crashed: VerifyRFC3161Timestamp, index out of range"
	)
	// check records every verdict on the image as its tags are now; want
	// gives, for each signer, the verdicts of cosign (no log required) and
	// sigstore-go (a timestamp required instead of a log), and wantLog
	// cosign's for the signer with the log required. trustgate's is always
	// noLog.
	check := func(state string, want map[string][2]string, wantLog string) {
		t.Helper()
		for _, s := range signers {
			name := state + ", " + s.name
			record(name+": trustgate", klTrustgate(t, img, identity(s.issuer, s.san), material, false), tg(noLog, noLog))
			c := interop.CosignKeylessCheck{Identity: s.san, Issuer: s.issuer, TrustedRoot: env.TrustedRootPath}
			record(name+": cosign", klCosign(t, c, img), want[s.name][0])
			record(name+": trustgate --insecure-ignore-tlog", klTrustgate(t, img, identity(s.issuer, s.san), material, true), want[s.name][1])
		}
		c := interop.CosignKeylessCheck{Identity: san, Issuer: issuer, TrustedRoot: env.TrustedRootPath, Log: true}
		record(state+", the signer, log required: cosign", klCosign(t, c, img), wantLog)
	}

	check("as written", map[string][2]string{
		"the signer":       {cs(ok, ok), tg(noTime, ok)},
		"another identity": {cs(wrongID, wrongID), tg(noTime, noID)},
		"another issuer":   {cs(wrongID, wrongID), tg(noTime, noID)},
	}, cs(offline, offline))
	// The .att envelope, its signature and the certificate are sound: at
	// the current time (no timestamp needed), sigstore-go accepts the
	// bundle trustgate built for the signer and refuses another identity.
	for _, s := range signers {
		want := ok
		if s.name != "the signer" {
			want = noID
		}
		record("as written, "+s.name+": sigstore-go at the current time, .att", klSigstoreGoNow(t, img, s.issuer, s.san, material), want)
	}

	restore := func() {
		testutil.WriteSigTag(t, img, goodSig)
		testutil.WriteTag(t, testutil.AttTag(t, img), testutil.DSSEMediaType, goodAtt)
	}
	// Each layer with the other's timestamp: a valid TSA signature over
	// something else. cosign refuses both, the .sig by crashing: with
	// --trusted-root, VerifyRFC3161Timestamp (pkg/cosign/verify.go) reads
	// the first verified timestamp of sigstore-go's answer without checking
	// that there is one, and panics (index out of range, exit status 2)
	// when the only timestamp does not verify. verify-attestation, given
	// the TSA chain instead, refuses it properly. The timestamp is checked
	// before the log, so the log requirement changes nothing here.
	testutil.WriteSigTag(t, img, klWithAnnotation(goodSig, klTimestampAnn, goodAtt.Annotations[klTimestampAnn]))
	testutil.WriteTag(t, testutil.AttTag(t, img), testutil.DSSEMediaType, klWithAnnotation(goodAtt, klTimestampAnn, goodSig.Annotations[klTimestampAnn]))
	check("timestamps swapped", map[string][2]string{
		"the signer":       {cs(wrongTSA, crashed), tg(noTime, noTime)},
		"another identity": {cs(wrongTSA, crashed), tg(noTime, noTime)},
		"another issuer":   {cs(wrongTSA, crashed), tg(noTime, noTime)},
	}, cs(wrongTSA, crashed))
	// No timestamp: no verified time exists. trustgate and sigstore-go
	// refuse; cosign accepts, checking the certificate at the current time.
	testutil.WriteSigTag(t, img, klWithAnnotation(goodSig, klTimestampAnn, ""))
	testutil.WriteTag(t, testutil.AttTag(t, img), testutil.DSSEMediaType, klWithAnnotation(goodAtt, klTimestampAnn, ""))
	check("timestamps removed", map[string][2]string{
		"the signer":       {cs(ok, ok), tg(noTime, noTime)},
		"another identity": {cs(wrongID, wrongID), tg(noTime, noTime)},
		"another issuer":   {cs(wrongID, wrongID), tg(noTime, noTime)},
	}, cs(offline, offline))
	restore()
	record("restored: trustgate", klTrustgate(t, img, identity(issuer, san), material, false), tg(noLog, noLog))
	record("restored: trustgate --insecure-ignore-tlog", klTrustgate(t, img, identity(issuer, san), material, true), tg(noTime, ok))
	return verdicts
}

// klTrustgate runs verifier.Image on img for the identity (with the log
// waived when withoutLog) and returns the
// verdict on its .att and .sig entries, each cosign's annotations made
// into a bundle.
func klTrustgate(t *testing.T, img name.Digest, id *bundle.Identity, material root.TrustedMaterial, withoutLog bool) string {
	t.Helper()
	waiving := *id
	waiving.IgnoreTlog = withoutLog
	res, err := verifier.Image(context.Background(), img.String(), verifier.ImageConfig{Signer: bundle.Signer{Identity: &waiving}, Options: bundle.Options{Material: material}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed() != slices.ContainsFunc(res.Attestations, func(a verifier.ImageAttestation) bool { return a.Err == nil }) {
		t.Fatalf("Passed() is %v: %+v", res.Passed(), res.Attestations)
	}
	byKind := map[string]string{}
	for _, a := range res.Attestations {
		var kind string
		switch {
		case a.Source == attest.SourceSigTag && a.Kind == attest.KindSignature:
			kind = ".sig"
		case a.Source == attest.SourceTag && a.Kind == attest.KindAttestation:
			kind = ".att"
		default:
			t.Fatalf("an entry from %s of kind %s", a.Source, a.Kind)
		}
		if a.Format != attest.FormatCosign || byKind[kind] != "" {
			t.Fatalf("%s entry: format %q, or listed twice", kind, a.Format)
		}
		byKind[kind] = klClass(a.Err)
	}
	return "trustgate .att " + byKind[".att"] + ", .sig " + byKind[".sig"]
}

// klClass names the kind of a trustgate refusal.
func klClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, bundle.ErrLog):
		return "refused for the log"
	case errors.Is(err, bundle.ErrUntrustedSigner):
		return "refused for the identity"
	case errors.Is(err, bundle.ErrTimestamp):
		return "refused for the timestamp"
	}
	return "refused: " + err.Error()
}

// klCosign runs cosign verify and verify-attestation --type cyclonedx on
// img as c requires.
func klCosign(t *testing.T, c interop.CosignKeylessCheck, img name.Digest) string {
	t.Helper()
	_, errSig := interop.CosignVerifyKeyless(t, c, img.String())
	_, errAtt := interop.CosignVerifyAttestationKeyless(t, c, "cyclonedx", img.String())
	return "cosign .att " + klCosignClass(errAtt) + ", .sig " + klCosignClass(errSig)
}

func klCosignClass(err error) string {
	if err == nil {
		return "ok"
	}
	if msg := err.Error(); strings.Contains(msg, "panic: runtime error: index out of range") && strings.Contains(msg, "cosign.VerifyRFC3161Timestamp(") {
		return "crashed: VerifyRFC3161Timestamp, index out of range"
	}
	for _, why := range []string{"offline verification failed", "none of the expected identities matched", "unable to verify RFC3161 timestamp"} {
		if strings.Contains(err.Error(), why) {
			return "refused: " + why
		}
	}
	return "refused: " + err.Error()
}

// klEntries lists img's entries (attest.Attachments) and returns the .att
// and the .sig entry (the bundles trustgate built from the layers, and the
// .sig payload), checking that each names the signer and that its bundle
// carries the certificate and no log entry.
func klEntries(t *testing.T, img name.Digest) (att, sig attest.Attachment) {
	t.Helper()
	as, err := attest.Attachments(context.Background(), img, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		switch a.Source {
		case attest.SourceTag:
			att = a
		case attest.SourceSigTag:
			sig = a
		}
	}
	if len(as) != 2 || att.Bundle == nil || sig.Bundle == nil || sig.Payload == nil {
		t.Fatalf("listed %+v", as)
	}
	for _, a := range []attest.Attachment{att, sig} {
		if !strings.HasPrefix(a.Signer, sigstoretest.DefaultIdentity+" (issuer ") {
			t.Errorf("%s: signer %q", a.Source, a.Signer)
		}
		b, err := bundle.Parse(a.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		vc, err := b.VerificationContent()
		if err != nil || vc.Certificate() == nil {
			t.Fatalf("%s: no certificate in the bundle (%v)", a.Source, err)
		}
		if entries, _ := b.TlogEntries(); len(entries) != 0 {
			t.Fatalf("%s: %d log entries", a.Source, len(entries))
		}
	}
	return att, sig
}

// klSigstoreGoNow verifies the .att bundle with sigstore-go at the current
// time, no timestamp needed.
func klSigstoreGoNow(t *testing.T, img name.Digest, issuer, san string, material root.TrustedMaterial) string {
	t.Helper()
	att, _ := klEntries(t, img)
	v, err := sgverify.NewVerifier(material, sgverify.WithCurrentTime())
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := hex.DecodeString(strings.TrimPrefix(img.DigestStr(), "sha256:"))
	return klSigstoreGoVerify(t, v, att.Bundle, sgverify.WithArtifactDigest("sha256", digest), issuer, san)
}

func klSigstoreGoVerify(t *testing.T, v *sgverify.Verifier, raw []byte, artifact sgverify.ArtifactPolicyOption, issuer, san string) string {
	t.Helper()
	b, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	cid, err := sgverify.NewShortCertificateIdentity(issuer, "", san, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithCertificateIdentity(cid)))
	var noID *sgverify.ErrNoMatchingCertificateIdentity
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &noID):
		return "refused for the identity"
	case strings.HasPrefix(err.Error(), "failed to verify timestamps"):
		return "refused for the timestamp"
	}
	return "refused: " + err.Error()
}

// klTimestamp is the DER timestamp of a layer's rfc3161timestamp
// annotation.
func klTimestamp(t *testing.T, l testutil.SigLayer) []byte {
	t.Helper()
	var doc struct {
		SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
	}
	if err := json.Unmarshal([]byte(l.Annotations[klTimestampAnn]), &doc); err != nil || len(doc.SignedRFC3161Timestamp) == 0 {
		t.Fatalf("the %s annotation: %v", klTimestampAnn, err)
	}
	return doc.SignedRFC3161Timestamp
}

// klTimestampOver verifies the RFC 3161 timestamp ts over signed against
// the trusted root's TSAs, as sigstore-go does for a bundle whose
// signature is signed.
func klTimestampOver(ts, signed []byte, material root.TrustedMaterial) error {
	_, err := sgverify.VerifySignedTimestampWithThreshold(&klTimestamped{ts: ts, signed: signed}, material, 1)
	return err
}

type klTimestamped struct {
	sgverify.BaseSignedEntity
	ts, signed []byte
}

func (e *klTimestamped) Timestamps() ([][]byte, error) { return [][]byte{e.ts}, nil }

func (e *klTimestamped) SignatureContent() (sgverify.SignatureContent, error) {
	return klSignature(e.signed), nil
}

type klSignature []byte

func (s klSignature) Signature() []byte                                         { return s }
func (s klSignature) EnvelopeContent() sgverify.EnvelopeContent                 { return nil }
func (s klSignature) MessageSignatureContent() sgverify.MessageSignatureContent { return nil }

// klDSSESignature is the first signature of a DSSE envelope, decoded.
func klDSSESignature(t *testing.T, envelope []byte) []byte {
	t.Helper()
	var env struct {
		Signatures []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil || len(env.Signatures) != 1 {
		t.Fatalf("the .att layer is not an envelope with one signature: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// klWithAnnotation is l with annotation k set to v, or removed when v is
// empty.
func klWithAnnotation(l testutil.SigLayer, k, v string) testutil.SigLayer {
	ann := maps.Clone(l.Annotations)
	if v == "" {
		delete(ann, k)
	} else {
		ann[k] = v
	}
	return testutil.SigLayer{Payload: l.Payload, Annotations: ann}
}
