package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/internal/buildinfo"
)

// NewVersionCmd builds "trustgate version".
func NewVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o text|json]",
		Short: "Print what this binary was built from",
		Long: `Print trustgate's module version, the commit it was built from and whether
the tree had changes (for a build in a checkout), the Go version, and the
versions of the libraries its verdicts rest on (sigstore-go, in-toto-golang,
syft, cyclonedx-go, go-containerregistry).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Read()
			switch output {
			case "text":
				_, err := fmt.Fprint(cmd.OutOrStdout(), info.String())
				return err
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			return fmt.Errorf("--output %q: want text or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
