package report

import (
	"strings"
	"testing"

	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/verify"
)

// hostile is what an adversary would put in a file name, an identity or a
// predicate field to break out of where it is written.
const hostile = "evil%0A\n::set-output name=verdict::pass\r\n::add-mask::x,file=y:z|<script>alert(1)</script>[x](javascript:1)`&amp;"

func TestAnnotationStaysOneCommand(t *testing.T) {
	a := Annotation{Level: "error", File: hostile, Line: 3, Title: hostile, Message: hostile}.String()
	if strings.ContainsAny(a, "\r\n") {
		t.Fatalf("annotation spans lines: %q", a)
	}
	if !strings.HasPrefix(a, "::error file=evil%250A%0A%3A%3Aset-output") {
		t.Fatalf("file property not escaped: %q", a)
	}
	// After the properties, exactly one "::" separates them from the
	// message: no property value ends early.
	head := a[:strings.Index(a, "::"+escapeData(hostile))]
	if strings.Count(head, "::") != 1 || strings.Count(head, ",") != 2 {
		t.Fatalf("properties leak: %q", head)
	}
	if a := (Annotation{Level: "notice; rm -rf"}).String(); a[:8] != "::error:" {
		t.Fatal("an unknown level is not an error annotation")
	}
}

// parseOutputs reads a $GITHUB_OUTPUT file as the runner does.
func parseOutputs(t *testing.T, file string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(file, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "" {
			continue
		}
		if name, delim, ok := strings.Cut(l, "<<"); ok {
			var v []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				v = append(v, lines[i])
			}
			if i == len(lines) {
				t.Fatalf("unterminated %s", name)
			}
			out[name] = strings.Join(v, "\n")
			continue
		}
		name, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("bad line %q", l)
		}
		out[name] = v
	}
	return out
}

func TestOutputCannotInjectAnother(t *testing.T) {
	var file strings.Builder
	for _, kv := range [][2]string{{"report", hostile + "\nverdict<<EOF\npass\nEOF\nverdict=pass"}, {"verdict", "deny"}} {
		e, err := Output(kv[0], kv[1])
		if err != nil {
			t.Fatal(err)
		}
		file.WriteString(e)
	}
	got := parseOutputs(t, file.String())
	if len(got) != 2 || got["verdict"] != "deny" || !strings.HasPrefix(got["report"], "evil") {
		t.Fatalf("outputs: %q", got)
	}
	for _, bad := range []string{"", "a b", "x\ny", "a<<b", "a=b"} {
		if _, err := Output(bad, "v"); err == nil {
			t.Errorf("output name %q accepted", bad)
		}
	}
}

func TestSummaryEscapes(t *testing.T) {
	r := verify.Report{Decisions: []policy.Decision{{Subject: "plugin/" + hostile, Mode: "enforce", Rule: "components[0].digests", Expected: hostile, Found: hostile}},
		Evidence: []verify.EvidenceResult{{Source: "file " + hostile, Error: hostile}}}
	s := Summary(r, "trustgate verify "+hostile)
	for _, bad := range []string{"<script>", "](", "\n::", "|<", "`"} {
		if strings.Contains(s, bad) {
			t.Errorf("the summary carries %q:\n%s", bad, s)
		}
	}
	// Each table row keeps its five cells.
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "| **fail**") && strings.Count(l, "|") != 6 {
			t.Errorf("row split by a value: %q", l)
		}
	}
	ts := TextSummary("t", "error", "x\n```\n<script>\n````")
	if !strings.Contains(ts, "`````text\n") {
		t.Errorf("a fence inside the detail closes the block:\n%s", ts)
	}
}

func TestStopCommandsTokens(t *testing.T) {
	stop1, resume1, err := StopCommands()
	if err != nil {
		t.Fatal(err)
	}
	stop2, _, _ := StopCommands()
	if stop1 == stop2 || !strings.HasPrefix(stop1, "::stop-commands::") || resume1 != "::"+strings.TrimPrefix(stop1, "::stop-commands::")+"::" {
		t.Fatalf("%q %q %q", stop1, resume1, stop2)
	}
}
