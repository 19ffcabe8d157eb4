package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/report"
	"github.com/trustgate/trustgate/verify"
)

// The inputs of action/action.yml, as the composite step hands them over:
// in environment variables, never interpolated into a script.
type actionInputs struct {
	command, stack, policy, trustRoot, key, bundle, sarif, failOn string
	artifact, predicateType, predicate, output                    string
	keyless                                                       bool
}

func readActionInputs(getenv func(string) string) (actionInputs, error) {
	in := actionInputs{
		command: getenv("INPUT_COMMAND"), stack: getenv("INPUT_STACK"), policy: getenv("INPUT_POLICY"),
		trustRoot: getenv("INPUT_TRUST_ROOT"), key: getenv("INPUT_KEY"), bundle: getenv("INPUT_BUNDLE"),
		sarif: getenv("INPUT_SARIF"), failOn: getenv("INPUT_FAIL_ON"), artifact: getenv("INPUT_ARTIFACT"),
		predicateType: getenv("INPUT_TYPE"), predicate: getenv("INPUT_PREDICATE"), output: getenv("INPUT_OUTPUT"),
	}
	switch getenv("INPUT_KEYLESS") {
	case "", "false":
	case "true":
		in.keyless = true
	default:
		return in, errors.New("input keyless: want true or false")
	}
	if in.failOn == "" {
		in.failOn = "deny"
	}
	if in.failOn != "deny" && in.failOn != "never" {
		return in, fmt.Errorf("input fail-on %q: want deny or never", in.failOn)
	}
	return in, nil
}

// NewActionCmd builds "trustgate action", the entry point of the GitHub
// Action in action/: it runs one trustgate command from the action's
// inputs (INPUT_* variables) and reports to the job: a step summary,
// annotations, outputs and, for verify, SARIF.
func NewActionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "action",
		Short: "Run one command as the GitHub Action does (reads INPUT_* variables)",
		Long: `The GitHub Action's entry point (action/action.yml): it reads the action's
inputs from INPUT_COMMAND, INPUT_STACK, INPUT_POLICY, INPUT_TRUST_ROOT,
INPUT_KEY (a private key's PEM, from a secret), INPUT_KEYLESS, INPUT_BUNDLE,
INPUT_ARTIFACT, INPUT_TYPE, INPUT_PREDICATE, INPUT_OUTPUT, INPUT_SARIF and
INPUT_FAIL_ON, runs
the command (sbom, attest, verify, verify-attestation or policy-sign), and
writes a Markdown summary to $GITHUB_STEP_SUMMARY, error annotations, the
outputs verdict, report, bundle and sbom to $GITHUB_OUTPUT, and for verify a
SARIF file.

Exit 1 when something is denied (unless fail-on is never), 2 for any other
failure: a missing bundle, a bad input, a crash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := readActionInputs(os.Getenv)
			if err != nil {
				return err
			}
			return runAction(cmd.Context(), in, githubEnv{
				stdout: cmd.OutOrStdout(), summary: os.Getenv("GITHUB_STEP_SUMMARY"),
				output: os.Getenv("GITHUB_OUTPUT"), temp: os.Getenv("RUNNER_TEMP"),
			})
		},
	}
}

// githubEnv is where the action reports.
type githubEnv struct {
	stdout                io.Writer
	summary, output, temp string
}

// actionResult is what one command did, for the job.
type actionResult struct {
	verdict  string // pass, deny or error
	title    string
	report   *verify.Report
	detail   string // the command's own output, for the summary
	outputs  map[string]string
	failures []report.Annotation
}

func runAction(ctx context.Context, in actionInputs, env githubEnv) error {
	keyFile, cleanup, err := actionKey(in, env.temp)
	if err != nil {
		return err
	}
	defer cleanup()
	args, res, err := actionArgs(in, keyFile, env.temp)
	if err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	code := Execute(ctx, args, &stdout, &stderr)
	res.detail = strings.TrimSpace(stderr.String())
	switch code {
	case ExitOK:
		res.verdict = "pass"
	case ExitDenied:
		res.verdict = "deny"
	default:
		res.verdict = "error"
	}
	if in.command == "verify" || in.command == "verify-attestation" {
		if err := readActionReport(in, stdout.Bytes(), &res, env.temp); err != nil && res.verdict != "error" {
			res.verdict, res.detail = "error", err.Error()
		}
	} else if res.verdict == "pass" {
		res.detail = strings.TrimSpace(res.detail + "\n" + stdout.String())
	}
	if res.verdict == "error" || (res.verdict == "deny" && len(res.failures) == 0) {
		res.failures = append(res.failures, report.Annotation{Level: "error", File: in.stack, Title: "trustgate " + in.command,
			Message: safetext.Clip(firstLine(res.detail), 2000)})
	}
	if err := reportAction(in, res, env); err != nil {
		return err
	}
	switch {
	case res.verdict == "error":
		return fmt.Errorf("trustgate %s failed (exit %d): %s", in.command, code, safetext.Clip(firstLine(res.detail), 500))
	case res.verdict == "deny" && in.failOn == "deny":
		return &exitError{code: ExitDenied, err: fmt.Errorf("trustgate %s: denied", in.command)}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// actionKey writes the key input (a PEM from a secret) to a private file
// for the duration of the command.
func actionKey(in actionInputs, temp string) (string, func(), error) {
	nothing := func() {}
	if in.key == "" {
		return "", nothing, nil
	}
	if in.keyless {
		return "", nothing, errors.New("give the key input or keyless: true, not both")
	}
	f, err := os.CreateTemp(temp, "trustgate-key-*.pem")
	if err != nil {
		return "", nothing, err
	}
	cleanup := func() { _ = os.Remove(f.Name()) }
	if _, err := f.WriteString(in.key); err != nil {
		f.Close()
		cleanup()
		return "", nothing, err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nothing, err
	}
	return f.Name(), cleanup, nil
}

// signArgs are the signing flags of the key or keyless inputs.
func signArgs(in actionInputs, keyFile string) ([]string, error) {
	switch {
	case keyFile != "":
		return []string{"--key", keyFile}, nil
	case in.keyless:
		return []string{"--keyless"}, nil
	}
	return nil, errors.New("signing needs the key input (a secret) or keyless: true")
}

// actionArgs turns the inputs into one trustgate command line.
func actionArgs(in actionInputs, keyFile, temp string) ([]string, actionResult, error) {
	res := actionResult{title: "trustgate " + in.command, outputs: map[string]string{}}
	need := func(name, v string) error {
		if v == "" {
			return fmt.Errorf("the %s command needs the %s input", in.command, name)
		}
		return nil
	}
	switch in.command {
	case "sbom":
		if err := need("stack", in.stack); err != nil {
			return nil, res, err
		}
		out := in.output
		if out == "" {
			out = "sbom.cdx.json"
		}
		args := []string{"sbom", "--stack", in.stack, "-o", out, "--quiet"}
		res.outputs["sbom"] = out
		if keyFile != "" || in.keyless {
			sign, _ := signArgs(in, keyFile)
			args = append(append(args, "--attest"), sign...)
			b := in.bundle
			if b == "" {
				b = out + ".bundle.json"
			}
			args = append(args, "--bundle", b)
			res.outputs["bundle"] = b
		}
		return args, res, nil
	case "attest":
		if err := need("artifact", in.artifact); err != nil {
			return nil, res, err
		}
		if err := need("type", in.predicateType); err != nil {
			return nil, res, err
		}
		sign, err := signArgs(in, keyFile)
		if err != nil {
			return nil, res, err
		}
		if err := need("predicate", in.predicate); err != nil {
			return nil, res, err
		}
		b := in.bundle
		if b == "" {
			b = "attestation.bundle.json"
		}
		res.outputs["bundle"] = b
		args := []string{"attest", "--type", in.predicateType, "--predicate", in.predicate, "--bundle", b}
		for _, s := range lines(in.artifact) {
			args = append(args, "--subject", s)
		}
		return append(args, sign...), res, nil
	case "policy-sign":
		if err := need("policy", in.policy); err != nil {
			return nil, res, err
		}
		sign, err := signArgs(in, keyFile)
		if err != nil {
			return nil, res, err
		}
		b := in.bundle
		if b == "" {
			b = in.policy + ".bundle.json"
		}
		res.outputs["bundle"] = b
		return append([]string{"policy", "sign", in.policy, "--bundle", b}, sign...), res, nil
	case "verify":
		for _, n := range [][2]string{{"stack", in.stack}, {"policy", in.policy}, {"trust-root", in.trustRoot}} {
			if err := need(n[0], n[1]); err != nil {
				return nil, res, err
			}
		}
		args := []string{"verify", "--stack", in.stack, "--policy", in.policy, "-o", "json", "--state", filepath.Join(temp, "trustgate-policy-state.json")}
		for _, k := range lines(in.trustRoot) {
			args = append(args, "--trust-root", k)
		}
		for _, b := range lines(in.bundle) {
			args = append(args, "--bundle", b)
		}
		return args, res, nil
	case "verify-attestation":
		for _, n := range [][2]string{{"bundle", in.bundle}, {"trust-root", in.trustRoot}, {"artifact", in.artifact}} {
			if err := need(n[0], n[1]); err != nil {
				return nil, res, err
			}
		}
		args := []string{"verify-attestation", "--bundle", in.bundle, "--key", in.trustRoot, "-o", "json"}
		if in.predicateType != "" {
			args = append(args, "--type", in.predicateType)
		}
		return append(args, in.artifact), res, nil
	}
	return nil, res, fmt.Errorf("input command %q: want sbom, attest, verify, verify-attestation or policy-sign", in.command)
}

// lines splits a multi-line input into its non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// readActionReport reads a verify report (or a verify-attestation result)
// from the command's JSON output, writes it beside the SARIF, and turns it
// into annotations.
func readActionReport(in actionInputs, out []byte, res *actionResult, temp string) error {
	if len(bytes.TrimSpace(out)) == 0 {
		return errors.New("the command wrote no report")
	}
	path := filepath.Join(temp, "trustgate-report.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return err
	}
	res.outputs["report"] = path
	if in.command == "verify-attestation" {
		var r struct {
			Verified bool   `json:"verified"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("reading the result: %w", err)
		}
		if !r.Verified {
			res.failures = append(res.failures, report.Annotation{Level: "error", Title: "trustgate verify-attestation", Message: in.artifact + ": " + r.Error})
		}
		return nil
	}
	var r verify.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("reading the report: %w", err)
	}
	res.report = &r
	res.failures = append(res.failures, report.Annotations(r, in.stack)...)
	if in.sarif != "" {
		s, err := report.SARIF(r, filepath.ToSlash(in.stack), version())
		if err != nil {
			return err
		}
		if err := os.WriteFile(in.sarif, s, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// reportAction writes what the command did where GitHub reads it.
func reportAction(in actionInputs, res actionResult, env githubEnv) error {
	stop, resume, err := report.StopCommands()
	if err != nil {
		return err
	}
	// The command's own words (file names, identities) are shown with
	// workflow commands off, so that none of them is read as one.
	if res.detail != "" {
		fmt.Fprintf(env.stdout, "%s\n%s\n%s\n", stop, res.detail, resume)
	}
	for _, a := range res.failures {
		fmt.Fprintln(env.stdout, a.String())
	}
	if env.summary != "" {
		var s string
		if res.report != nil {
			s = report.Summary(*res.report, res.title)
		} else {
			s = report.TextSummary(res.title, res.verdict, res.detail)
		}
		if err := appendFile(env.summary, s+"\n"); err != nil {
			return err
		}
	}
	if env.output != "" {
		res.outputs["verdict"] = res.verdict
		var b strings.Builder
		for _, name := range []string{"verdict", "report", "bundle", "sbom"} {
			v, ok := res.outputs[name]
			if !ok {
				continue
			}
			entry, err := report.Output(name, v)
			if err != nil {
				return err
			}
			b.WriteString(entry)
		}
		if err := appendFile(env.output, b.String()); err != nil {
			return err
		}
	}
	return nil
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
