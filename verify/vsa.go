package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
)

// VerifierID names trustgate as the verifier in verification summaries.
const VerifierID = "https://trustgate.dev/verify"

// SummaryInput is what a verification summary names besides the report:
// the stack manifest and the policy (by name and digest), and the version
// of trustgate that verified.
type SummaryInput struct {
	Manifest       string
	ManifestDigest digest.Digest
	Policy         string
	PolicyDigest   digest.Digest
	Version        string
	Time           time.Time
}

// Summary is an in-toto statement of a SLSA verification summary
// (https://slsa.dev/verification_summary/v1) of one deployment check: its
// subjects are the manifest and every measured component, its policy field
// the policy's digest, its input attestations the bundles that verified, and
// its result PASSED or FAILED. Later stages may accept a valid summary plus
// matching digests instead of redoing the whole check.
func Summary(d Deployment, r Report, in SummaryInput) (*attest.Statement, error) {
	result := "FAILED"
	if r.Allowed {
		result = "PASSED"
	}
	var inputs []map[string]any
	for i, ev := range d.Evidence {
		if i < len(r.Evidence) && r.Evidence[i].Verified {
			sum := sha256.Sum256(ev.Raw)
			inputs = append(inputs, map[string]any{"uri": ev.Source, "digest": map[string]string{"sha256": hex.EncodeToString(sum[:])}})
		}
	}
	sort.Slice(inputs, func(i, j int) bool { return inputs[i]["uri"].(string) < inputs[j]["uri"].(string) })
	pred := map[string]any{
		"verifier":           map[string]any{"id": VerifierID, "version": map[string]string{"trustgate": in.Version}},
		"timeVerified":       in.Time.UTC().Format(time.RFC3339),
		"resourceUri":        in.Manifest,
		"policy":             map[string]any{"uri": in.Policy, "digest": map[string]string{"sha256": in.PolicyDigest.Hex()}},
		"inputAttestations":  inputs,
		"verificationResult": result,
		"verifiedLevels":     []string{},
	}
	if inputs == nil {
		pred["inputAttestations"] = []any{}
	}
	raw, err := json.Marshal(pred)
	if err != nil {
		return nil, err
	}
	subjects := []attest.Subject{{Name: in.Manifest, Digest: map[string]string{"sha256": in.ManifestDigest.Hex()}}}
	for _, m := range d.Components {
		alg := "sha256"
		switch m.Digest.Algorithm() {
		case digest.H1:
			alg = "dirHash"
		case digest.SHA512:
			alg = "sha512"
		}
		subjects = append(subjects, attest.Subject{Name: m.Kind + "/" + m.Name, Digest: map[string]string{alg: m.Digest.Hex()}})
	}
	return attest.NewStatement(attest.PredicateVSA, raw, subjects...)
}
