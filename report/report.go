// Package report renders a verification report for machines: JSON (its
// schema is schema/verify-report.schema.json) and SARIF 2.1.0 for GitHub
// code scanning. The gateway does not link it.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/verify"
)

// JSON is the report as indented JSON.
func JSON(r verify.Report) ([]byte, error) {
	if r.Decisions == nil {
		r.Decisions = []policy.Decision{}
	}
	if r.Evidence == nil {
		r.Evidence = []verify.EvidenceResult{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var indexes = regexp.MustCompile(`\[[^\]]*\]| \(.*\)$`)

// RuleID is a violation's rule without its indexes and names, such as
// "components.digests" for "components[3].digests": one SARIF rule per
// kind of check.
func RuleID(rule string) string {
	return "trustgate/" + indexes.ReplaceAllString(rule, "")
}

// SARIF renders the report as a SARIF 2.1.0 log: one rule per kind of
// check, one result per violation (level error when enforced, warning when
// audited), each located at the stack manifest (manifest, a path relative
// to the repository root) and naming the component, the expected and the
// found value. A report that allows everything has no results.
func SARIF(r verify.Report, manifest, version string) ([]byte, error) {
	run := sarif.NewRunWithInformationURI("trustgate", "https://trustgate.dev")
	run.Tool.Driver.Version = &version
	var results []*sarif.Result
	ruleIDs := map[string]bool{}
	for _, d := range r.Decisions {
		if d.Allowed && d.Mode != policy.ModeAudit {
			continue
		}
		for _, v := range d.Violations {
			id := RuleID(v.Rule)
			ruleIDs[id] = true
			level := "error"
			if d.Mode == policy.ModeAudit {
				level = "warning"
			}
			msg := fmt.Sprintf("%s: %s: expected %s, found %s", d.Subject, v.Rule, v.Expected, v.Found)
			loc := sarif.NewLocationWithPhysicalLocation(sarif.NewPhysicalLocation().
				WithArtifactLocation(sarif.NewArtifactLocation().WithURI(manifest)).
				WithRegion(sarif.NewSimpleRegion(1, 1)))
			res := sarif.NewRuleResult(id).WithLevel(level).WithMessage(sarif.NewTextMessage(msg)).AddLocation(loc)
			res.WithPartialFingerprints(map[string]string{"trustgate/violation": d.Subject + " " + v.Rule + " " + v.Found})
			results = append(results, res)
		}
	}
	ids := make([]string, 0, len(ruleIDs))
	for id := range ruleIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		run.AddRule(id).WithDescription("trustgate policy check " + id[len("trustgate/"):])
	}
	for _, res := range results {
		res.WithRuleIndex(run.GetRuleIndex(*res.RuleID))
		run.AddResult(res)
	}
	log := sarif.NewReport().AddRun(run)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(log); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
