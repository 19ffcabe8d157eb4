package bundle

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/testsign"
)

// keyFixture is a valid key-signed attestation about artifact "A" (content
// "artifact A"), and the key.
type keyFixture struct {
	key *attest.Key
	raw []byte
}

func newKeyFixture(t *testing.T) keyFixture {
	t.Helper()
	k, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return keyFixture{key: k, raw: signPayload(t, k, statementJSON(attest.StatementType, sum("artifact A"), attest.PredicateCycloneDX), attest.PayloadType)}
}

// The shared test helpers, by their short names here.
var (
	sum           = testsign.Sum
	statementJSON = testsign.StatementJSON
	signPayload   = testsign.Payload
	edit          = testsign.Edit
	envelope      = testsign.Envelope
)

func TestKeyBundleVerifies(t *testing.T) {
	fx := newKeyFixture(t)
	res, err := Verify(fx.raw, Artifact{Name: "A", SHA256: sum("artifact A")}, Signer{Key: fx.key.Public()}, Options{PredicateType: attest.PredicateCycloneDX})
	if err != nil {
		t.Fatal(err)
	}
	if res.PredicateType != attest.PredicateCycloneDX || res.Signer != "key "+fx.key.Hint() {
		t.Fatalf("result %+v", res)
	}
}

// TestAdversarialKey: each case starts from the valid key-signed fixture
// and breaks one thing.
func TestAdversarialKey(t *testing.T) {
	fx := newKeyFixture(t)
	other, _ := attest.GenerateKey(attest.ECDSAP256)
	a := Artifact{Name: "A", SHA256: sum("artifact A")}
	key := Signer{Key: fx.key.Public()}
	opts := Options{PredicateType: attest.PredicateCycloneDX}
	resign := func(payload string) []byte { return signPayload(t, fx.key, payload, attest.PayloadType) }
	idty, err := NewIdentity("https://token.actions.githubusercontent.com", "", "https://github.com/acme/gw/.github/workflows/release.yml@refs/heads/main", "")
	if err != nil {
		t.Fatal(err)
	}
	many := func(field string, n int) []byte {
		return edit(t, fx.raw, func(m map[string]any) {
			vm := m["verificationMaterial"].(map[string]any)
			var list []any
			for range n {
				if field == "tlogEntries" {
					list = append(list, map[string]any{"logIndex": "1", "logId": map[string]any{"keyId": "AA=="}, "kindVersion": map[string]any{"kind": "dsse", "version": "0.0.1"}, "canonicalizedBody": "e30="})
				} else {
					list = append(list, map[string]any{"signedTimestamp": "MAA="})
				}
			}
			if field == "tlogEntries" {
				vm["tlogEntries"] = list
			} else {
				vm["timestampVerificationData"] = map[string]any{"rfc3161Timestamps": list}
			}
		})
	}
	cases := []struct {
		name   string
		raw    []byte
		art    Artifact
		signer Signer
		opts   Options
		want   error
	}{
		{"bit-flipped signature", edit(t, fx.raw, func(m map[string]any) {
			sig := envelope(m)["signatures"].([]any)[0].(map[string]any)
			b, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
			b[len(b)/2] ^= 0x01
			sig["sig"] = base64.StdEncoding.EncodeToString(b)
		}), a, key, opts, ErrSignature},
		{"payload changed after signing", edit(t, fx.raw, func(m map[string]any) {
			envelope(m)["payload"] = base64.StdEncoding.EncodeToString([]byte(statementJSON(attest.StatementType, sum("artifact B"), attest.PredicateCycloneDX)))
		}), Artifact{SHA256: sum("artifact B")}, key, opts, ErrSignature},
		{"DSSE payload type changed", edit(t, fx.raw, func(m map[string]any) { envelope(m)["payloadType"] = "application/json" }), a, key, opts, ErrPayloadType},
		{"signed with another payload type", signPayload(t, fx.key, statementJSON(attest.StatementType, sum("artifact A"), attest.PredicateCycloneDX), "text/plain"), a, key, opts, ErrPayloadType},
		{"statement type changed", resign(statementJSON("https://in-toto.io/Statement/v9", sum("artifact A"), attest.PredicateCycloneDX)), a, key, opts, ErrStatement},
		{"attestation for A offered for B", fx.raw, Artifact{Name: "B", SHA256: sum("artifact B")}, key, opts, ErrSubject},
		{"subject digest only sha1", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A","digest":{"sha1":"` + strings.Repeat("a", 40) + `"}}],"predicateType":"https://cyclonedx.org/bom","predicate":{}}`), a, key, opts, ErrSubject},
		{"subject digest only in an unknown algorithm", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A","digest":{"blake9":"` + sum("artifact A") + `"}}],"predicateType":"https://cyclonedx.org/bom","predicate":{}}`), a, key, opts, ErrSubject},
		{"required predicate type missing, another present", resign(statementJSON(attest.StatementType, sum("artifact A"), attest.PredicateSLSAProvenance)), a, key, opts, ErrPredicateType},
		{"wrong key", fx.raw, a, Signer{Key: other.Public()}, opts, ErrSignature},
		{"key-signed bundle, identity required", fx.raw, a, Signer{Identity: idty}, Options{Material: emptyRoot(t)}, ErrUntrustedSigner},
		{"no key or identity given", fx.raw, a, Signer{}, opts, ErrNoSigner},
		{"both key and identity given", fx.raw, a, Signer{Key: fx.key.Public(), Identity: idty}, opts, ErrNoSigner},
		{"too many log entries", many("tlogEntries", MaxTlogEntries+1), a, key, opts, ErrTooLarge},
		{"too many timestamps", many("timestamps", MaxTimestamps+1), a, key, opts, ErrTooLarge},
		{"duplicate JSON keys in the statement", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A","digest":{"sha256":"` + sum("artifact A") + `"}}],"predicateType":"https://cyclonedx.org/bom","predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`), a, key, opts, ErrStatement},
		{"keys that differ only in case", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A","digest":{"sha256":"` + sum("artifact A") + `"}}],"predicateType":"https://slsa.dev/provenance/v1","PredicateType":"https://cyclonedx.org/bom","predicate":{}}`), a, key, opts, ErrStatement},
		{"non-ASCII key (encoding/json folds \u017f onto s)", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A","digest":{"sha256":"` + sum("artifact A") + `"}}],"predicateType":"https://cyclonedx.org/bom","predicate":{"components":[],"component\u017f":[]}}`), a, key, opts, ErrStatement},
		{"duplicate digest keys in a subject", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A","digest":{"sha256":"` + sum("artifact B") + `","sha256":"` + sum("artifact A") + `"}}],"predicateType":"https://cyclonedx.org/bom","predicate":{}}`), a, key, opts, ErrStatement},
		{"statement with no subject", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://cyclonedx.org/bom","predicate":{}}`), a, key, opts, ErrStatement},
		{"statement not JSON", resign(`not json`), a, key, opts, ErrStatement},
		{"too many subjects", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[` + strings.TrimSuffix(strings.Repeat(`{"name":"x","digest":{"sha256":"`+sum("x")+`"}},`, MaxSubjects+1), ",") + `],"predicateType":"https://cyclonedx.org/bom","predicate":{}}`), a, key, opts, ErrTooLarge},
		{"too many digests in a subject", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A","digest":{"sha256":"` + sum("artifact A") + `","a1":"1","a2":"2","a3":"3","a4":"4","a5":"5","a6":"6","a7":"7","a8":"8"}}],"predicateType":"https://cyclonedx.org/bom","predicate":{}}`), a, key, opts, ErrTooLarge},
		{"empty artifact", fx.raw, Artifact{Name: "A"}, key, opts, ErrSubject},
		{"empty digest in the subject matches nothing", resign(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A","digest":{"sha256":""}}],"predicateType":"https://cyclonedx.org/bom","predicate":{}}`), Artifact{Name: "A", SHA256: sum("artifact A")}, key, opts, ErrSubject},
		{"not JSON", []byte("{"), a, key, opts, ErrMalformed},
		{"not a bundle", []byte(`{"mediaType":"application/json"}`), a, key, opts, ErrMalformed},
		{"two signatures", edit(t, fx.raw, func(m map[string]any) {
			sigs := envelope(m)["signatures"].([]any)
			envelope(m)["signatures"] = append(sigs, sigs[0])
		}), a, key, opts, ErrSignature},
		{"log entry required, none present", fx.raw, a, key, Options{Material: emptyRoot(t), RequireLog: true}, ErrLog},
		{"timestamp required, none present", fx.raw, a, key, Options{Material: emptyRoot(t), RequireTimestamp: true}, ErrTimestamp},
		{"log required without a trusted root", fx.raw, a, key, Options{RequireLog: true}, ErrNoSigner},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(c.raw, c.art, c.signer, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// A bundle larger than the limit is refused before parsing.
	big := make([]byte, attest.MaxBundleSize+1)
	if _, err := Verify(big, a, key, opts); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge bundle: %v", err)
	}
	// An unanchored identity pattern is refused when the identity is made.
	if _, err := NewIdentity("https://token.actions.githubusercontent.com", "", "", "https://github.com/acme/"); !errors.Is(err, ErrUnanchored) {
		t.Fatalf("unanchored identity: %v", err)
	}
}

func emptyRoot(t *testing.T) root.TrustedMaterial {
	t.Helper()
	tr, err := root.NewTrustedRootFromJSON([]byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// A real bundle from the public Sigstore instance verifies offline with the
// trusted root it was made under, and is refused for another identity.
func TestPublicGoodBundleOffline(t *testing.T) {
	raw, err := os.ReadFile("testdata/public-good/sigstore.js@2.0.0-provenance.sigstore.json")
	if err != nil {
		t.Fatal(err)
	}
	trJSON, err := os.ReadFile("testdata/public-good/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRootFromJSON(trJSON)
	if err != nil {
		t.Fatal(err)
	}
	art := Artifact{Name: "pkg:npm/sigstore@2.0.0", SHA512: "46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c"}
	id, err := NewIdentity("https://token.actions.githubusercontent.com", "", "", `^https://github\.com/sigstore/sigstore-js/\.github/workflows/release\.yml@refs/heads/main$`)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(raw, art, Signer{Identity: id}, Options{Material: tr, PredicateType: attest.PredicateSLSAProvenance})
	if err != nil {
		t.Fatalf("public-good bundle does not verify offline: %v", err)
	}
	if len(res.Times) == 0 || !strings.Contains(res.Signer, "sigstore-js") {
		t.Fatalf("result %+v", res)
	}
	fork, _ := NewIdentity("https://token.actions.githubusercontent.com", "", "", `^https://github\.com/attacker/sigstore-js/\.github/workflows/release\.yml@refs/heads/main$`)
	if _, err := Verify(raw, art, Signer{Identity: fork}, Options{Material: tr}); !errors.Is(err, ErrUntrustedSigner) {
		t.Fatalf("fork identity: got %v, want ErrUntrustedSigner", err)
	}
	otherIssuer, _ := NewIdentity("https://accounts.google.com", "", "", `^https://github\.com/sigstore/sigstore-js/\.github/workflows/release\.yml@refs/heads/main$`)
	if _, err := Verify(raw, art, Signer{Identity: otherIssuer}, Options{Material: tr}); !errors.Is(err, ErrUntrustedSigner) {
		t.Fatalf("other issuer: got %v, want ErrUntrustedSigner", err)
	}
	if _, err := Verify(raw, art, Signer{Identity: id}, Options{}); !errors.Is(err, ErrNoSigner) {
		t.Fatalf("no trusted root: got %v, want ErrNoSigner", err)
	}
	if _, err := Verify(raw, art, Signer{Identity: id}, Options{Material: emptyRoot(t)}); err == nil {
		t.Fatal("verified against a trusted root that trusts nothing")
	}
	if _, err := Verify(raw, Artifact{SHA256: sum("x")}, Signer{Identity: id}, Options{Material: tr}); !errors.Is(err, ErrSubject) {
		t.Fatalf("another artifact: got %v, want ErrSubject", err)
	}
}
