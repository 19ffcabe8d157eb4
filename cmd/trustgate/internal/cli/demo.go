package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/internal/example"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/stack"
)

// NewDemoCmd builds "trustgate demo".
func NewDemoCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Run trustgate on the built-in example deployment",
		Long: `Build the example AI gateway deployment (a gateway, a Go and a Python
guardrail plugin, a compliance agent, a local model and the gateway's image)
and inventory it as a CycloneDX SBOM.

Run it from a trustgate checkout: it builds the example's Go programs from
source. With --dir the example and its SBOM are kept there; otherwise they
live in a temporary folder that is removed at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder to build the example in and keep (default: a temporary folder)")
	return cmd
}

func runDemo(cmd *cobra.Command, dir string) error {
	out := cmd.OutOrStdout()
	if dir == "" {
		tmp, err := os.MkdirTemp("", "trustgate-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx := cmd.Context()

	fmt.Fprintf(out, "trustgate demo: the example AI gateway deployment\n\n")
	fmt.Fprintf(out, "1. Building the example in %s\n", dir)
	manifest, err := example.Build(ctx, dir)
	if err != nil {
		return err
	}
	s, err := stack.Load(manifest)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "2. Inventorying it from %s\n", filepath.Base(manifest))
	opts := sbom.Options{}
	if isTerminal(cmd.ErrOrStderr()) {
		opts.Progress = progressPrinter(cmd.ErrOrStderr())
	}
	bom, err := sbom.Generate(ctx, s, opts)
	if err != nil {
		return err
	}
	data, err := sbom.Marshal(bom, sbom.DefaultSpecVersion)
	if err != nil {
		return err
	}
	sbomPath := filepath.Join(dir, "sbom.cdx.json")
	if err := writeFileAtomic(sbomPath, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "   wrote %s: CycloneDX %s, %d bytes, serial %s\n\n", sbomPath, sbom.DefaultSpecVersion, len(data), bom.SerialNumber)
	printSummary(out, bom)
	return nil
}

// printSummary prints what the SBOM says, read back from the BOM itself.
func printSummary(out io.Writer, bom *cdx.BOM) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   KIND\tNAME\tDIGEST\tPACKAGES\tFOR EXAMPLE")
	for _, c := range *bom.Components {
		n, sample := packages(c)
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%d\t%s\n", prop(c.Properties, sbom.PropKind), c.Name,
			short(prop(c.Properties, sbom.PropDigest)), n, sample)
	}
	tw.Flush()
	if bom.Services != nil {
		fmt.Fprintln(out, "\n   Providers (credentials by reference only):")
		for _, s := range *bom.Services {
			fmt.Fprintf(out, "   - %s at %s, credential %s\n", s.Name, strings.Join(*s.Endpoints, ", "), prop(s.Properties, sbom.PropCredential))
		}
	}
}

func packages(c cdx.Component) (int, string) {
	if c.Components == nil {
		return 0, ""
	}
	var names []string
	for _, p := range *c.Components {
		if len(names) < 3 && p.Type != cdx.ComponentTypeOS {
			names = append(names, p.Name+"@"+p.Version)
		}
	}
	return len(*c.Components), strings.Join(names, " ")
}

func prop(ps *[]cdx.Property, name string) string {
	if ps == nil {
		return ""
	}
	for _, p := range *ps {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// short abbreviates a digest for a table: algorithm and 12 characters.
func short(d string) string {
	alg, v, ok := strings.Cut(d, ":")
	if !ok || len(v) <= 12 {
		return d
	}
	return alg + ":" + v[:12] + "…"
}
