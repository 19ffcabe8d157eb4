package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/gateway/clientkeys"
	"github.com/trustgate/trustgate/internal/safetext"
)

// NewGatewayKeysCmd builds "trustgate gateway-keys" and its subcommands.
func NewGatewayKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway-keys",
		Short: "Add, list and revoke the keys clients present to trustgate-gateway",
		Long: `Manage the gateway keys clients present to trustgate-gateway (as
"Authorization: Bearer KEY" or "x-api-key: KEY") instead of provider keys.
The key file keeps a salted SHA-256 hash of each key, never the key itself;
a running gateway looks at it again at most once a second and reloads it
when it changed.`,
	}
	cmd.AddCommand(newGatewayKeysAddCmd(), newGatewayKeysListCmd(), newGatewayKeysRevokeCmd())
	return cmd
}

func newGatewayKeysAddCmd() *cobra.Command {
	var file, name string
	cmd := &cobra.Command{
		Use:   "add --file FILE --name NAME",
		Short: "Make a new gateway key and print it, once",
		Long: `Make a new gateway key named NAME, record its hash in FILE (created, mode
0600, if missing) and print the key on stdout. It is shown this once and
stored nowhere: hand it to the client now. Its id, for list and revoke,
goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, id, err := clientkeys.Add(file, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			fmt.Fprintf(cmd.ErrOrStderr(), "added gateway key %s (%s) to %s; the key above is shown once and stored nowhere\n", id, safetext.Quote(name), file)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "the gateway key file (required)")
	fl.StringVar(&name, "name", "", "a label for the key: who or what uses it (required)")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newGatewayKeysListCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "list --file FILE",
		Short: "List the gateway keys: id, name, created, revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := clientkeys.List(file)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
			for _, e := range entries {
				revoked := "-"
				if !e.Revoked.IsZero() {
					revoked = e.Revoked.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.ID, safetext.Quote(e.Name), e.Created.UTC().Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the gateway key file (required)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newGatewayKeysRevokeCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "revoke --file FILE ID",
		Short: "Revoke a gateway key by its id",
		Long: `Revoke the gateway key ID in FILE. The gateway refuses it from its next
look at the file (at most a second apart). The entry stays, with the time of
revocation, so that list still names it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := clientkeys.Revoke(file, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "revoked gateway key %s in %s\n", args[0], file)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the gateway key file (required)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
