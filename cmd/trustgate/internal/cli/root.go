// Package cli wires trustgate's commands: flag parsing and printing over the
// library packages, nothing more.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
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
	fmt.Fprintln(stderr, "trustgate: "+oneLine(err))
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
	}
	root.AddCommand(NewKeygenCmd(), NewSBOMCmd(), NewAttestCmd(), NewAttestationsCmd(), NewPolicyCmd(), NewVerifyCmd(), NewVerifyAttestationCmd(), NewDemoCmd())
	return root
}

// exitError carries an exit code other than ExitUsage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// oneLine keeps an error to the one line the CLI promises, with control
// characters (which a registry or a file could put in an error) shown as
// '?' so that they cannot rewrite the terminal.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// writeFileExclusive writes data to path like writeFileAtomic, but fails if
// path exists, even if it appeared after the caller checked: the file is
// linked into place, which never replaces anything.
func writeFileExclusive(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, false)
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, so that a reader never sees half a file and a failure leaves the
// old file as it was.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, true)
}

func writeFile(path string, data []byte, perm os.FileMode, replace bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	place := os.Rename
	if !replace {
		place = os.Link
	}
	if err := place(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("writing %q: it exists (and is left as it was)", path)
		}
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
