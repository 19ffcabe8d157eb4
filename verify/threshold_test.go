package verify

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/policy"
)

// Finding 4: a k-of-n rule counts signers, not evidence. Two policy names
// whose keyless identities both match one certificate, threshold 2: one
// signer's bundle, given twice, re-encoded, or signed again with a fresh
// certificate, is still one signature. Two identities meet it.
func TestThresholdCountsSignersNotEvidence(t *testing.T) {
	v := testsign.NewVirtual(t)
	issuer, san, san2 := testsign.Issuer, "signer@example.com", "second@example.com"
	gw := digest.FromBytes([]byte("gateway v1"))
	manifest := digest.FromBytes([]byte("stack manifest v1"))
	policyText := `apiVersion: trustgate.dev/v1
kind: Policy
metadata: {name: deploy}
version: 1
expires: "2099-01-01T00:00:00Z"
signers:
  - name: exact
    keyless: {issuer: "` + issuer + `", subject: "` + san + `"}
  - name: pattern
    keyless: {issuer: "` + issuer + `", subjectRegexp: '^(?:` + regexp.QuoteMeta(san) + `|` + regexp.QuoteMeta(san2) + `)$'}
components:
  - name: gw
    kind: gateway
    signers: {anyOf: [exact, pattern], threshold: 2}
`
	p, err := policy.Parse("policy.yaml", []byte(policyText), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(identity string) []byte {
		st, err := attest.NewStatement(attest.PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"component":{"type":"application","name":"deploy","properties":[{"name":"trustgate:kind","value":"deployment"},{"name":"trustgate:digest","value":"`+manifest.String()+`"}]}}}`),
			attest.Subject{Name: "stack.yaml", Digest: map[string]string{"sha256": manifest.Hex()}},
			attest.Subject{Name: "gw", Digest: map[string]string{"sha256": gw.Hex()}})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := st.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return v.Keyless(t, identity, raw)
	}
	one := sign(san)
	respelled := testsign.Edit(t, one, func(m map[string]any) {
		sig := testsign.Envelope(m)["signatures"].([]any)[0].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
		sig["sig"] = base64.RawURLEncoding.EncodeToString(raw)
	})
	check := func(ev ...[]byte) Report {
		d := Deployment{Policy: p, Material: v.TrustedMaterial(), Now: time.Now(),
			Manifest:   Manifest{Name: "deploy", Digest: manifest},
			Components: []Measured{{Kind: "gateway", Name: "gw", Digest: gw}}}
		for i, raw := range ev {
			d.Evidence = append(d.Evidence, Evidence{Source: fmt.Sprint("bundle ", i), Raw: raw})
		}
		return Check(d)
	}
	for name, ev := range map[string][][]byte{
		"once":                            {one},
		"the same bundle twice":           {one, one},
		"a re-encoded copy":               {one, respelled},
		"signed again, a new certificate": {one, sign(san)},
	} {
		t.Run(name, func(t *testing.T) {
			r := check(ev...)
			for i := range ev {
				if !r.Evidence[i].Verified {
					t.Fatalf("evidence %d does not verify: %s", i, r.Evidence[i].Error)
				}
			}
			expectDenied(t, r, "gateway/gw components[0].signers")
		})
	}
	// Two identities, one per name: two signers.
	expectAllowed(t, check(one, sign(san2)))
}
