package policy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files of the verdict cases")

// verdictCase is one file of testdata/cases: a policy, facts, and the
// verdict written by hand (expect). The full report is compared with the
// golden file NAME.golden.yaml, which -update rewrites.
type verdictCase struct {
	Policy string `yaml:"policy"`
	Facts  Facts  `yaml:"facts"`
	Expect struct {
		Allowed bool     `yaml:"allowed"`
		Deny    []string `yaml:"deny"`    // "subject rule" of each decision that denies in enforce mode
		Audited []string `yaml:"audited"` // the same, for decisions denied in audit mode
	} `yaml:"expect"`
}

func TestVerdictCases(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.yaml") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var c verdictCase
			if err := yaml.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			abs, _ := filepath.Abs("testdata/cases")
			p, err := Parse(name+".policy", []byte(c.Policy), Options{Dir: abs})
			if err != nil {
				t.Fatalf("policy does not load:\n%v", err)
			}
			if c.Facts.Now.IsZero() {
				c.Facts.Now = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
			}
			r := Evaluate(p, c.Facts)
			var deny, audited []string
			for _, d := range r.Decisions {
				if d.Allowed {
					continue
				}
				for _, v := range d.Violations {
					if d.Mode == ModeAudit {
						audited = append(audited, d.Subject+" "+v.Rule)
					} else {
						deny = append(deny, d.Subject+" "+v.Rule)
					}
				}
			}
			if r.Allowed != c.Expect.Allowed || !sameSet(deny, c.Expect.Deny) || !sameSet(audited, c.Expect.Audited) {
				t.Errorf("got allowed=%v deny=%q audited=%q\nwant allowed=%v deny=%q audited=%q",
					r.Allowed, deny, audited, c.Expect.Allowed, c.Expect.Deny, c.Expect.Audited)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden.yaml", r)
		})
	}
	if n < 30 {
		t.Errorf("%d verdict cases; the suite promises at least 30", n)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func golden(t *testing.T, path string, r Report) {
	t.Helper()
	got, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./policy -run TestVerdictCases -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("report differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// A rule that would run for a long time over a large SBOM is cut off by the
// cost limit and denies.
func TestCELRuleIsBounded(t *testing.T) {
	pkgs := make([]string, 3000)
	for i := range pkgs {
		pkgs[i] = fmt.Sprintf("pkg:pypi/p%d@1.0", i)
	}
	prg, err := compileCEL(`component.packages.all(p, component.packages.all(q, p.name != ""))`)
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		SBOM:       SBOMRules{Rules: []CELRule{{Name: "slow", Expression: "x", program: prg}}},
		Components: []Component{{Kind: "plugin", Name: "big", digests: nil}}}
	r := Evaluate(p, Facts{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Components: []ComponentFacts{{Kind: "plugin", Name: "big", Packages: pkgs, SBOM: true}}})
	if r.Allowed || len(r.Decisions) != 1 || !strings.Contains(r.Decisions[0].Found, "evaluation error") {
		t.Fatalf("slow rule: %+v", r.Decisions)
	}
}

// Evaluating without a clock denies: a zero time is never "before expiry".
func TestEvaluateNeedsNow(t *testing.T) {
	p := &Policy{expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	if r := Evaluate(p, Facts{}); r.Allowed || r.Decisions[0].Subject != "policy" {
		t.Fatalf("zero now: %+v", r)
	}
}
