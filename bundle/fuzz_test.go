package bundle

import (
	"testing"

	"github.com/trustgate/trustgate/attest"
)

// FuzzBundle: bundles come from registries and pull requests. Verifying any
// bytes never panics, and whatever verifies (the fixture, or a respelling of
// it) carries a statement that names the artifact.
func FuzzBundle(f *testing.F) {
	k, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	good := signPayload(f, k, statementJSON(attest.StatementType, sum("artifact A"), attest.PredicateCycloneDX), attest.PayloadType)
	f.Add(good)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`))
	f.Add([]byte(`{"verificationMaterial":{"tlogEntries":[{},{},{}]}}`))
	art := Artifact{SHA256: sum("artifact A")}
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := Verify(raw, art, Signer{Key: k.Public()}, Options{})
		if err != nil {
			return
		}
		if res.Statement == nil || Bind(res.Statement, art) != nil {
			t.Fatal("verified without a statement naming the artifact")
		}
	})
}

// FuzzStatement: the statement parser (strict JSON, duplicate keys, depth,
// limits) on any payload.
func FuzzStatement(f *testing.F) {
	f.Add([]byte(statementJSON(attest.StatementType, sum("a"), attest.PredicateCycloneDX)))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","_type":"x"}`))
	f.Add([]byte(`[[[[[[[[[[[[]]]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		st, err := parseStatement(payload)
		if err == nil && (len(st.Subject) == 0 || st.PredicateType == "") {
			t.Fatal("accepted a statement without subject or predicate type")
		}
	})
}
