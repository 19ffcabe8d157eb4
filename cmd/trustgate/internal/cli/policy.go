package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verifier"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/internal/safetext"
)

// NewPolicyCmd builds "trustgate policy" and its subcommands.
func NewPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Write, check, test and sign the policy a deployment is verified against",
	}
	cmd.AddCommand(newPolicyInitCmd(), newPolicyLintCmd(), newPolicyTestCmd(), newPolicySignCmd())
	return cmd
}

func newPolicyInitCmd() *cobra.Command {
	var stackFile, out string
	var signerFlags []string
	var force bool
	cmd := &cobra.Command{
		Use:   "init --stack FILE [-o policy.yaml]",
		Short: "Write a starting policy that pins today's digest of every component",
		Long: `Write a starting policy for the deployment a stack manifest describes: every
component pinned to the digest it has today, every model named and bound to
the provider (and fallbacks) that serve it today, a local model's file or
folder pinned too, no signer, no capability granted, each provider credential
bound to the host the stack sends it to today, and the compromised litellm
releases denied. Comments mark what to review before signing it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := stack.Load(stackFile)
			if err != nil {
				return err
			}
			bom, err := sbom.Generate(cmd.Context(), s, sbom.Options{})
			if err != nil {
				return err
			}
			facts, err := policy.FactsFromSBOM(bom, time.Now())
			if err != nil {
				return err
			}
			signers, err := initSigners(signerFlags)
			if err != nil {
				return err
			}
			data, err := policy.Init(s.Metadata.Name, facts, signers...)
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			write := atomicfile.WriteNew
			if force {
				write = atomicfile.Write
			}
			if err := write(out, data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d components pinned, nothing granted; review it, then trustgate policy lint and sign\n", out, len(facts.Components))
			return nil
		},
	}
	cmd.Flags().StringVar(&stackFile, "stack", "", "stack manifest (required)")
	cmd.Flags().StringVarP(&out, "output", "o", "policy.yaml", "file to write; - for standard output")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	cmd.Flags().StringArrayVar(&signerFlags, "signer", nil, "NAME=KEY.pub: a trusted signer, written inline; every component then needs a CycloneDX attestation signed by one (repeatable)")
	_ = cmd.MarkFlagRequired("stack")
	return cmd
}

// initSigners reads --signer NAME=KEY.pub flags.
func initSigners(flags []string) ([]policy.InitSigner, error) {
	var out []policy.InitSigner
	for _, f := range flags {
		name, path, ok := strings.Cut(f, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("--signer %q: want NAME=KEY.pub", f)
		}
		if _, err := verifier.PublicKeys([]string{path}); err != nil {
			return nil, fmt.Errorf("--signer %q: %w", f, err)
		}
		pem, err := readfile.Read(path, 64<<10)
		if err != nil {
			return nil, err
		}
		out = append(out, policy.InitSigner{Name: name, PEM: string(pem)})
	}
	return out, nil
}

func newPolicyLintCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE",
		Short: "Explain every problem in a policy, with its line",
		Long: `Check a policy and print every problem, one per line, as FILE:LINE: FIELD:
KIND: REASON: unknown fields, unanchored identity patterns, CEL rules that do
not compile or do not return a bool, credentials bound to no host, an expired
date, and the rest. Exit 0 when there is none, 1 when there are problems, 2
when the file cannot be read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := policy.Load(args[0], time.Now())
			var ps policy.Problems
			switch {
			case errors.As(err, &ps):
				for _, p := range ps {
					fmt.Fprintln(cmd.OutOrStdout(), safetext.Line(p.Error()))
				}
				return &exitError{code: ExitDenied, err: fmt.Errorf("%s: %d problem(s)", args[0], len(ps))}
			case err != nil:
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: no problems\n", args[0])
			return nil
		},
	}
}

func newPolicyTestCmd() *cobra.Command {
	var stackFile, sbomFile, output string
	cmd := &cobra.Command{
		Use:   "test FILE (--sbom SBOM | --stack FILE) [-o text|json]",
		Short: "Evaluate a policy against a deployment's SBOM, without signatures (dry run)",
		Long: `Evaluate a policy against what a trustgate SBOM says about a deployment (or
the SBOM made now from --stack), to develop the policy. Signer and attestation
rules are not checked: nothing is verified here, so a pass is not a permission
to run. Exit 0 when every decision allows, 1 when one denies.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			now := time.Now()
			p, err := policy.Load(args[0], now)
			if err != nil {
				return err
			}
			bom, err := loadOrMakeSBOM(cmd, sbomFile, stackFile)
			if err != nil {
				return err
			}
			facts, err := policy.FactsFromSBOM(bom, now)
			if err != nil {
				return err
			}
			facts.IgnoreSignaturesUnsafe = true
			r := policy.Evaluate(p, facts)
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				printReport(cmd, r)
			}
			if !r.Allowed {
				return &exitError{code: ExitDenied, err: errors.New("the policy denies the deployment (dry run: signatures not checked)")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sbomFile, "sbom", "", "the deployment's SBOM from trustgate sbom")
	cmd.Flags().StringVar(&stackFile, "stack", "", "stack manifest to inventory now, instead of --sbom")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.MarkFlagsOneRequired("sbom", "stack")
	cmd.MarkFlagsMutuallyExclusive("sbom", "stack")
	return cmd
}

// loadOrMakeSBOM reads a CycloneDX SBOM file, or inventories the stack.
func loadOrMakeSBOM(cmd *cobra.Command, sbomFile, stackFile string) (*cdx.BOM, error) {
	if stackFile != "" {
		s, err := stack.Load(stackFile)
		if err != nil {
			return nil, err
		}
		return sbom.Generate(cmd.Context(), s, sbom.Options{})
	}
	f, err := os.Open(sbomFile)
	if err != nil {
		return nil, fmt.Errorf("--sbom: %w", err)
	}
	defer f.Close()
	var bom cdx.BOM
	dec := json.NewDecoder(io.LimitReader(f, maxSBOMFile))
	if err := dec.Decode(&bom); err != nil {
		return nil, fmt.Errorf("--sbom %q: not a CycloneDX JSON document", sbomFile)
	}
	return &bom, nil
}

const maxSBOMFile = 128 << 20

func printReport(cmd *cobra.Command, r policy.Report) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	for _, d := range r.Decisions {
		verdict := strings.ToUpper(d.Outcome())
		line := fmt.Sprintf("%s\t%s", verdict, d.Subject)
		if !d.Allowed {
			line += fmt.Sprintf("\t%s: expected %s, found %s", d.Rule, d.Expected, d.Found)
			if n := len(d.Violations); n > 1 {
				line += fmt.Sprintf(" (and %d more)", n-1)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

type policySignFlags struct {
	sign   signFlags
	bundle string
}

func newPolicySignCmd() *cobra.Command {
	var f policySignFlags
	cmd := &cobra.Command{
		Use:   "sign FILE (--key KEY | --keyless) [--bundle OUT]",
		Short: "Sign a policy: a bundle whose statement names the policy's digest",
		Long: `Sign a policy after linting it: a Sigstore bundle whose in-toto statement has
predicate type https://trustgate.dev/policy/v1 and the policy file's sha256 as
its subject. A policy with problems, or one already expired, is not signed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.sign.check(); err != nil {
				return err
			}
			file := args[0]
			// One read: the bytes linted are the bytes signed.
			data, err := readfile.Read(file, policy.MaxPolicySize)
			if err != nil {
				return err
			}
			p, err := policy.Parse(file, data, policy.Options{Now: time.Now()})
			if err != nil {
				return fmt.Errorf("not signing: %w", err)
			}
			for _, s := range p.Signers {
				if s.KeyFile != "" {
					return fmt.Errorf("not signing: signer %q uses keyFile, which the signature would not cover; put the key inline with key: |", s.Name)
				}
			}
			st, err := policy.Statement(file, data, p)
			if err != nil {
				return err
			}
			b, err := f.sign.sign(cmd, st)
			if err != nil {
				return err
			}
			out := f.bundle
			if out == "" {
				out = file + ".bundle.json"
			}
			return deliver(cmd, b, out, false, nil)
		},
	}
	cmd.Flags().StringVar(&f.bundle, "bundle", "", "file to write the bundle to (default FILE.bundle.json)")
	f.sign.register(cmd.Flags())
	return cmd
}
