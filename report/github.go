package report

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/verify"
)

// GitHub Actions renderings. Everything here treats the strings of a
// report (component names, file names, identities, predicate fields) as an
// adversary's: a workflow command is recognised on any line of a step's
// output that starts with "::", an output file's entries are split by
// name=value lines and heredoc delimiters, and the step summary is
// Markdown with HTML. Each rendering escapes what its reader would
// interpret.

// Annotation is one `::error` or `::warning` workflow command.
type Annotation struct {
	Level   string // "error" or "warning"
	File    string
	Line    int
	Title   string
	Message string
}

// String is the workflow command, on one line, its properties and message
// escaped as the runner unescapes them.
func (a Annotation) String() string {
	level := "error"
	if a.Level == "warning" {
		level = "warning"
	}
	var props []string
	if a.File != "" {
		props = append(props, "file="+escapeProperty(a.File))
		if a.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", a.Line))
		}
	}
	if a.Title != "" {
		props = append(props, "title="+escapeProperty(a.Title))
	}
	cmd := "::" + level
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	return cmd + "::" + escapeData(a.Message)
}

// escapeData escapes a workflow command's message: %, CR and LF, so that
// the command stays one line and a value cannot end it.
func escapeData(s string) string {
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}

// escapeProperty escapes a workflow command's property value: the data
// escapes, and the : and , that end a property.
func escapeProperty(s string) string {
	s = escapeData(s)
	s = strings.ReplaceAll(s, ":", "%3A")
	return strings.ReplaceAll(s, ",", "%2C")
}

// Annotations are the report's violations as workflow commands located at
// the stack manifest (file, relative to the repository): errors for
// enforced ones, warnings for audited ones.
func Annotations(r verify.Report, file string) []Annotation {
	var out []Annotation
	for _, d := range r.Decisions {
		if d.Allowed && d.Mode != policy.ModeAudit {
			continue
		}
		level := "error"
		if d.Mode == policy.ModeAudit {
			level = "warning"
		}
		for _, v := range d.Violations {
			out = append(out, Annotation{Level: level, File: file, Line: 1, Title: "trustgate: " + d.Subject,
				Message: fmt.Sprintf("%s: expected %s, found %s", v.Rule, v.Expected, v.Found)})
		}
	}
	return out
}

// Summary is the report as the Markdown of a job's step summary: the
// verdict, a table of every decision, and the evidence. Every string from
// the report is escaped for Markdown and HTML.
func Summary(r verify.Report, title string) string {
	var b strings.Builder
	verdict := "✅ allowed"
	if !r.Allowed {
		verdict = "❌ denied"
	}
	fmt.Fprintf(&b, "### %s: %s\n\n", md(title), verdict)
	b.WriteString("| | subject | rule | expected | found |\n|---|---|---|---|---|\n")
	for _, d := range r.Decisions {
		mark := d.Outcome()
		if mark == policy.OutcomeFail {
			mark = "**fail**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mark, md(d.Subject), md(d.Rule), md(d.Expected), md(d.Found))
	}
	if len(r.Evidence) > 0 {
		b.WriteString("\n| evidence | verified | signed by | predicate | about |\n|---|---|---|---|---|\n")
		for _, e := range r.Evidence {
			ok := "yes"
			if !e.Verified {
				ok = "no: " + e.Error
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", md(e.Source), md(ok), md(strings.Join(e.Signers, ", ")), md(e.PredicateType), md(strings.Join(e.Subjects, ", ")))
		}
	}
	return b.String()
}

// mdSpecial is what Markdown or HTML could read as markup in a table cell.
var mdSpecial = regexp.MustCompile(`[\\` + "`" + `*_{}\[\]()#+\-.!|<>&~"'@:]`)

// md escapes s for a Markdown table cell: one line, no markup, no HTML,
// no autolink, at most 1000 characters.
func md(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 1000 {
		s = string(r[:1000]) + "…"
	}
	if s == "" {
		return " "
	}
	return mdSpecial.ReplaceAllStringFunc(s, func(c string) string { return fmt.Sprintf("&#%d;", c[0]) })
}

// TextSummary is the step summary of a command that makes no report (an
// SBOM, a signature): its verdict, and its own words in a code block.
func TextSummary(title, verdict, detail string) string {
	mark := "✅ " + verdict
	if verdict != "pass" {
		mark = "❌ " + verdict
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s: %s\n", md(title), mark)
	if detail = strings.TrimSpace(detail); detail != "" {
		// A fence longer than any run of backticks in the text, so that
		// nothing in it can close the block.
		fence := "```"
		for strings.Contains(detail, fence) {
			fence += "`"
		}
		if r := []rune(detail); len(r) > 20000 {
			detail = string(r[:20000]) + "\n…"
		}
		fmt.Fprintf(&b, "\n%stext\n%s\n%s\n", fence, detail, fence)
	}
	return b.String()
}

var outputName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// Output is one entry of $GITHUB_OUTPUT (or $GITHUB_ENV): name, then the
// value between heredoc delimiters chosen at random and checked not to
// occur in it, so that no value can end its entry and start another.
func Output(name, value string) (string, error) {
	if !outputName.MatchString(name) {
		return "", fmt.Errorf("output name %q", name)
	}
	for range 4 {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		delim := "ghadelimiter_" + hex.EncodeToString(b[:])
		if !strings.Contains(value, delim) && !strings.Contains(name, delim) {
			return name + "<<" + delim + "\n" + value + "\n" + delim + "\n", nil
		}
	}
	return "", errors.New("no delimiter found that the value does not contain")
}

// StopCommands returns the workflow commands that stop and resume the
// runner's reading of workflow commands around output that is not to be
// read as commands (a tool's log naming attacker-chosen files), with a
// random token.
func StopCommands() (stop, resume string, err error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token := hex.EncodeToString(b[:])
	return "::stop-commands::" + token, "::" + token + "::", nil
}
