package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/policy"
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
// (https://slsa.dev/verification_summary/v1) of one deployment check. It
// vouches only for what passed: its subjects are the components whose
// decision passed in enforce mode (never one that failed, and never one
// that was only audited), and the manifest when the whole deployment
// passed. Its policy field is the policy's digest, which a consumer must
// check (verify counts a summary only under the very policy it names), its
// input attestations the bundles that verified, its result PASSED or
// FAILED, and componentResults records the result for every component.
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
	if inputs == nil {
		inputs = []map[string]any{}
	}
	var subjects []attest.Subject
	if r.Allowed {
		subjects = append(subjects, attest.Subject{Name: in.Manifest, Digest: map[string]string{"sha256": in.ManifestDigest.Hex()}})
	}
	results := []componentResult{}
	for _, m := range d.Components {
		cr := componentResult{Component: m.Kind + "/" + m.Name, Digest: m.Digest.String(), Result: "FAILED"}
		if dec, ok := decisionFor(r, cr.Component); ok {
			cr.Mode = dec.Mode
			if dec.Allowed {
				cr.Result = "PASSED"
			}
		}
		results = append(results, cr)
		// A model served by a provider has no digest here: it is in the
		// results, and no subject can name it.
		if cr.Result == "PASSED" && cr.Mode == policy.ModeEnforce && !m.Digest.IsZero() {
			subjects = append(subjects, attest.Subject{Name: cr.Component, Digest: map[string]string{subjectAlgorithm(m.Digest): m.Digest.Hex()}})
		}
	}
	if len(subjects) == 0 {
		// A statement needs a subject: a summary that vouches for nothing
		// names the manifest, and says FAILED.
		subjects = append(subjects, attest.Subject{Name: in.Manifest, Digest: map[string]string{"sha256": in.ManifestDigest.Hex()}})
	}
	raw, err := json.Marshal(map[string]any{
		"verifier":           map[string]any{"id": VerifierID, "version": map[string]string{"trustgate": in.Version}},
		"timeVerified":       in.Time.UTC().Format(time.RFC3339),
		"resourceUri":        in.Manifest,
		"policy":             map[string]any{"uri": in.Policy, "digest": map[string]string{"sha256": in.PolicyDigest.Hex()}},
		"inputAttestations":  inputs,
		"verificationResult": result,
		"verifiedLevels":     []string{},
		"componentResults":   results,
	})
	if err != nil {
		return nil, err
	}
	return attest.NewStatement(attest.PredicateVSA, raw, subjects...)
}

// componentResult is one component's line in a summary's componentResults.
type componentResult struct {
	Component string `json:"component"`
	Digest    string `json:"digest,omitempty"` // none for a model served by a provider
	Mode      string `json:"mode,omitempty"`
	Result    string `json:"result"`
}

func decisionFor(r Report, subject string) (policy.Decision, bool) {
	for _, d := range r.Decisions {
		if d.Subject == subject {
			return d, true
		}
	}
	return policy.Decision{}, false
}

func subjectAlgorithm(d digest.Digest) string {
	switch d.Algorithm() {
	case digest.H1:
		return "dirHash"
	case digest.SHA512:
		return "sha512"
	}
	return "sha256"
}
