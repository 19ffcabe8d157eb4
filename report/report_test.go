package report_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/report"
	"github.com/trustgate/trustgate/verify"
)

// sample has a pass, a denial with two violations, an audited denial and
// a grant, and both a verified and an unverifiable bundle.
var sample = verify.Report{
	Allowed: false,
	Decisions: []policy.Decision{
		{Subject: "gateway/gw", Allowed: true, Mode: "enforce"},
		{Subject: "plugin/pii-redactor", Allowed: false, Mode: "enforce", Rule: "components[3].digests", Expected: "h1:AAA=", Found: "h1:BBB=",
			Violations: []policy.Violation{
				{Rule: "components[3].digests", Expected: "h1:AAA=", Found: "h1:BBB="},
				{Rule: "sbom.deny[0]", Expected: "no pkg:pypi/litellm in >=1.82.7,<=1.82.8", Found: "pkg:pypi/litellm@1.82.7"},
			},
			Grants: &policy.Capabilities{Env: []string{"LOG_LEVEL"}}},
		{Subject: "agent/audit", Allowed: false, Mode: "audit", Rule: "sbom.rules[0] (no-npm)", Expected: "no npm", Found: "false",
			Violations: []policy.Violation{{Rule: "sbom.rules[0] (no-npm)", Expected: "no npm", Found: "false"}}},
	},
	Evidence: []verify.EvidenceResult{
		{Source: "file sbom.cdx.json.bundle.json", Verified: true, Signers: []string{"release"}, PredicateType: "https://cyclonedx.org/bom", Subjects: []string{"gateway/gw"}},
		{Source: "tag r/x@sha256:00", Verified: false, Error: "malformed bundle: not JSON"},
	},
}

func TestJSONMatchesPublishedSchema(t *testing.T) {
	s := testutil.JSONSchema(t, filepath.Join(testutil.RepoRoot(t), "schema"), "https://trustgate.dev/schema/verify-report-v1.schema.json")
	for _, r := range []verify.Report{sample, {Allowed: true}} {
		out, err := report.JSON(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := testutil.ValidateJSON(s, out); err != nil {
			t.Errorf("JSON report does not match its schema: %v\n%s", err, out)
		}
	}
	// The schema is not a rubber stamp.
	if err := testutil.ValidateJSON(s, []byte(`{"allowed":"yes","decisions":[],"evidence":[]}`)); err == nil {
		t.Error("the schema accepted a string verdict")
	}
}

func TestSARIFValidates(t *testing.T) {
	out, err := report.SARIF(sample, "deploy/stack.yaml", "test")
	if err != nil {
		t.Fatal(err)
	}
	log, err := sarif.FromBytes(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Validate(); err != nil {
		t.Fatalf("not valid SARIF 2.1.0: %v", err)
	}
	results := log.Runs[0].Results
	if len(results) != 3 {
		t.Fatalf("%d results, want one per violation (3)", len(results))
	}
	var levels, rules []string
	for _, r := range results {
		levels = append(levels, r.Level)
		rules = append(rules, *r.RuleID)
		if uri := *r.Locations[0].PhysicalLocation.ArtifactLocation.URI; uri != "deploy/stack.yaml" {
			t.Errorf("location %q", uri)
		}
	}
	if strings.Join(levels, ",") != "error,error,warning" {
		t.Errorf("levels %v", levels)
	}
	if strings.Join(rules, ",") != "trustgate/components.digests,trustgate/sbom.deny,trustgate/sbom.rules" {
		t.Errorf("rules %v", rules)
	}
	if !strings.Contains(*results[0].Message.Text, "plugin/pii-redactor: components[3].digests: expected h1:AAA=, found h1:BBB=") {
		t.Errorf("message %q", *results[0].Message.Text)
	}
	// A passing report is valid SARIF with no results.
	out, _ = report.SARIF(verify.Report{Allowed: true}, "stack.yaml", "test")
	log, err = sarif.FromBytes(out)
	if err != nil || log.Validate() != nil || len(log.Runs[0].Results) != 0 {
		t.Fatalf("empty report: %v", err)
	}
}
