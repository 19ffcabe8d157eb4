package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/stack"
)

type sbomFlags struct {
	stack       string
	output      string
	specVersion string
	timestamp   string
	quiet       bool
	attest      bool
	bundle      string
	sign        signFlags
}

// NewSBOMCmd builds "trustgate sbom".
func NewSBOMCmd() *cobra.Command {
	var f sbomFlags
	cmd := &cobra.Command{
		Use:   "sbom --stack FILE [-o FILE]",
		Short: "Write a CycloneDX SBOM of a gateway deployment",
		Long: `Inventory the deployment a stack manifest describes as one CycloneDX JSON SBOM.

The same manifest and files give the same bytes. The BOM has a timestamp only
when --timestamp or SOURCE_DATE_EPOCH gives one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSBOM(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stack, "stack", "", "stack manifest (required)")
	fl.StringVarP(&f.output, "output", "o", "-", "file to write the SBOM to; - for standard output")
	fl.StringVar(&f.specVersion, "spec-version", "1.6", "CycloneDX version: 1.5, 1.6 or 1.7")
	fl.StringVar(&f.timestamp, "timestamp", "", "BOM timestamp (RFC 3339); default SOURCE_DATE_EPOCH, else none")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress on standard error")
	fl.BoolVar(&f.attest, "attest", false, "also sign the SBOM as an in-toto attestation about the manifest and every component (needs --key or --keyless)")
	fl.StringVar(&f.bundle, "bundle", "", "with --attest: file to write the bundle to (default: the -o file + .bundle.json)")
	f.sign.register(fl)
	_ = cmd.MarkFlagRequired("stack")
	return cmd
}

func runSBOM(cmd *cobra.Command, f sbomFlags) error {
	spec, ok := sbom.SpecVersions[f.specVersion]
	if !ok {
		return fmt.Errorf("--spec-version %q: want 1.5, 1.6 or 1.7", f.specVersion)
	}
	bundlePath := f.bundle
	if f.attest {
		if err := f.sign.check(); err != nil {
			return fmt.Errorf("--attest: %w", err)
		}
		if bundlePath == "" {
			if f.output == "-" {
				return fmt.Errorf("--attest with the SBOM on standard output needs --bundle FILE")
			}
			bundlePath = f.output + ".bundle.json"
		}
	} else if f.bundle != "" || f.sign.key != "" || f.sign.keyless {
		return fmt.Errorf("--bundle, --key and --keyless need --attest")
	}
	ts, err := timestamp(f.timestamp)
	if err != nil {
		return err
	}
	s, err := stack.Load(f.stack)
	if err != nil {
		return err
	}
	opts := sbom.Options{Timestamp: ts}
	if !f.quiet && isTerminal(cmd.ErrOrStderr()) {
		opts.Progress = progressPrinter(cmd.ErrOrStderr())
	}
	bom, err := sbom.Generate(cmd.Context(), s, opts)
	if err != nil {
		return err
	}
	data, err := sbom.Marshal(bom, spec)
	if err != nil {
		return err
	}
	// Sign before writing anything, so that a failed signing leaves no SBOM
	// that looks attested.
	var signed *bundle.Bundle
	if f.attest {
		if signed, err = attestSBOM(cmd, &f.sign, bom, data); err != nil {
			return err
		}
	}
	if f.output == "-" {
		if _, err := cmd.OutOrStdout().Write(data); err != nil {
			return err
		}
	} else if err := atomicfile.Write(f.output, data, 0o644); err != nil {
		return err
	}
	if signed != nil {
		return deliver(cmd, signed, bundlePath, false, nil)
	}
	return nil
}

// attestSBOM signs the SBOM bytes as a CycloneDX predicate about the
// manifest and every component the BOM lists.
func attestSBOM(cmd *cobra.Command, sf *signFlags, bom *cdx.BOM, data []byte) (*bundle.Bundle, error) {
	st, err := sbom.Statement(bom, data)
	if err != nil {
		return nil, err
	}
	return sf.sign(cmd, st)
}

// timestamp reads --timestamp, else SOURCE_DATE_EPOCH, else none.
func timestamp(flag string) (time.Time, error) {
	if flag != "" {
		t, err := time.Parse(time.RFC3339, flag)
		if err != nil {
			return time.Time{}, fmt.Errorf("--timestamp: want RFC 3339, such as 2026-01-02T15:04:05Z")
		}
		return t, nil
	}
	if env := os.Getenv("SOURCE_DATE_EPOCH"); env != "" {
		sec, err := strconv.ParseInt(env, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: want a non-negative integer of seconds")
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Time{}, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func progressPrinter(w io.Writer) func(sbom.Event) {
	return func(e sbom.Event) {
		if e.Done {
			fmt.Fprintf(w, "  %s %s: %d packages (%s)\n", e.Kind, e.Name, e.Packages, e.Elapsed.Round(time.Millisecond))
			return
		}
		fmt.Fprintf(w, "scanning %s %s ...\n", e.Kind, e.Name)
	}
}
