// Package cli wires trustgate's commands: flag parsing and printing over the
// library packages, nothing more.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/internal/buildinfo"
	"github.com/trustgate/trustgate/internal/safetext"
)

// Exit codes, the same for every command.
const (
	ExitOK     = 0
	ExitDenied = 1 // verification ran and something was denied
	ExitUsage  = 2 // bad flags, bad input, or an error before a verdict
)

// Execute runs the trustgate command line and returns its exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "trustgate: "+safetext.Line(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitUsage
}

// NewRootCmd builds the trustgate command tree.
func NewRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "trustgate",
		Short:         "Inventory, sign and verify AI gateway deployments",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Read().Short(),
	}
	root.AddCommand(NewKeygenCmd(), NewSBOMCmd(), NewAttestCmd(), NewAttestationsCmd(), NewPolicyCmd(), NewVerifyCmd(), NewVerifyAttestationCmd(), NewVerifyBlobCmd(), NewVerifyModelCmd(), NewAuditCmd(), NewDemoCmd())
	root.AddCommand(NewGatewayKeysCmd(), NewAdmissionCmd(), NewVersionCmd(), NewActionCmd(), NewTrustRootCmd())
	return root
}

// exitError carries an exit code other than ExitUsage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
