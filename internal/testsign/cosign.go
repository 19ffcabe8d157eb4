package testsign

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"
)

// CosignBlobBundle signs artifact keyless as identity, with a Rekor v1
// entry and its signed entry timestamp (SET), and returns it as cosign v2's
// older blob bundle JSON (sign-blob --bundle without --new-bundle-format):
// base64Signature, cert (the base64 of the certificate's PEM) and
// rekorBundle. f, when not nil, may change the JSON object first.
func (v *Virtual) CosignBlobBundle(t testing.TB, identity string, artifact []byte, f func(m map[string]any)) []byte {
	t.Helper()
	sig, certPEM, rekor := v.cosignParts(t, identity, artifact)
	m := map[string]any{
		"base64Signature": base64.StdEncoding.EncodeToString(sig),
		"cert":            base64.StdEncoding.EncodeToString(certPEM),
		"rekorBundle":     rekor,
	}
	if f != nil {
		f(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CosignSigAnnotations signs payload (a .sig layer's simple signing
// document) keyless as identity, with a Rekor v1 entry and its SET, and
// returns the annotations cosign v2 writes beside the layer: the base64
// signature, the certificate's PEM and the Rekor bundle's JSON.
func (v *Virtual) CosignSigAnnotations(t testing.TB, identity string, payload []byte) map[string]string {
	t.Helper()
	sig, certPEM, rekor := v.cosignParts(t, identity, payload)
	rb, err := json.Marshal(rekor)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig),
		"dev.sigstore.cosign/certificate":    string(certPEM),
		"dev.sigstore.cosign/bundle":         string(rb),
	}
}

// cosignParts signs message keyless as identity and logs it: the
// signature, the certificate's PEM, and the Rekor bundle cosign records
// (the entry, its integrated time, index and log ID, and the SET).
func (v *Virtual) cosignParts(t testing.TB, identity string, message []byte) ([]byte, []byte, map[string]any) {
	t.Helper()
	e, err := v.vs.SignAtTime(identity, Issuer, message, time.Now().Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := e.VerificationContent()
	sc, _ := e.SignatureContent()
	entries, _ := e.TlogEntries()
	tle := v.complete(t, entries[0].TransparencyLogEntry())
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vc.Certificate().Raw})
	return sc.Signature(), certPEM, map[string]any{
		"SignedEntryTimestamp": base64.StdEncoding.EncodeToString(tle.InclusionPromise.SignedEntryTimestamp),
		"Payload": map[string]any{
			"body":           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
			"integratedTime": tle.IntegratedTime,
			"logIndex":       tle.LogIndex,
			"logID":          hex.EncodeToString(tle.LogId.KeyId),
		},
	}
}
