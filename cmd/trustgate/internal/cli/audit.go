package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/audit"
	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/verifier"
)

// NewAuditCmd builds "trustgate audit".
func NewAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the gateway's audit log",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAuditVerifyCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "verify LOG --key PUB",
		Short: "Verify an audit log's hash chain and signed checkpoints",
		Long: `Verify an audit log: every line chained to the one before it by its hash,
seq numbers without gap or repeat, and every checkpoint signed by --key over
the count and head of the entries before it. The first problem is named by
line and seq: an entry changed, missing or reordered, a forged checkpoint, a
malformed line, or a log no checkpoint signs.

Entries after the last checkpoint are chained but not signed: they are
counted in a warning, since they could have been rewritten or removed. Nor
can the file alone show that it was cut back to an earlier checkpoint:
compare the last checkpoint with a copy kept elsewhere.

Exit 0 when the log verifies, 1 when it does not, 2 for bad input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAuditVerify(cmd, args[0], key)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "public key (PEM) that signs the checkpoints (required)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func runAuditVerify(cmd *cobra.Command, path, keyPath string) error {
	keys, err := verifier.PublicKeys([]string{keyPath})
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	f, err := readfile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := audit.Verify(f, keys[0])
	out := cmd.OutOrStdout()
	var p *audit.Problem
	if errors.As(err, &p) {
		fmt.Fprintf(out, "FAIL line %d (seq %d): %s: %s\n", p.Line, p.Seq, p.Kind, safetext.Line(p.Detail))
		return &exitError{code: ExitDenied, err: fmt.Errorf("%s: not verified", safetext.Quote(path))}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", safetext.Quote(path), err)
	}
	fmt.Fprintf(out, "OK: %d entries, %d checkpoints, last checkpoint at seq %d\n", rep.Entries, rep.Checkpoints, rep.LastCheckpointSeq)
	if rep.UnsignedTail > 0 {
		fmt.Fprintf(out, "WARNING: the last %d entries (seq %d to %d) follow the last checkpoint: no signature covers them\n",
			rep.UnsignedTail, rep.LastCheckpointSeq+1, rep.LastSeq)
	}
	return nil
}
