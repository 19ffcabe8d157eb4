package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/tufroot"
	"github.com/trustgate/trustgate/verifier"
)

// materialFlags say where the Sigstore trust material for keyless
// signatures comes from: --trusted-root, or else the TUF cache. A command
// that may fetch refreshes the cache from its repository first, unless
// --offline; one that never fetches (a server) reads the cache it is given
// with --tuf-cache, and nothing when it is given none.
type materialFlags struct {
	trustedRoot, tufCache string
	offline               bool
	fetches               bool
}

func (f *materialFlags) register(cmd *cobra.Command, fetches bool) {
	f.fetches = fetches
	fl := cmd.Flags()
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json for keyless signers (default: the public-good root through TUF)")
	if fetches {
		fl.StringVar(&f.tufCache, "tuf-cache", "", "TUF cache folder (default: trustgate/tuf in the user's cache folder)")
		fl.BoolVar(&f.offline, "offline", false, "use the TUF cache alone, never the network (fill it with trustgate trust-root update)")
		return
	}
	fl.StringVar(&f.tufCache, "tuf-cache", "", "TUF cache folder, filled beforehand by trustgate trust-root update, to read the trusted root from (never refreshed here)")
	cmd.Flags().Lookup("trusted-root").Usage = "Sigstore trusted_root.json for keyless signers"
}

// source is where the trust material comes from; ok is false when the
// flags name none (a server given neither flag: keys only).
func (f *materialFlags) source() (s verifier.TrustedRootSource, ok bool, err error) {
	if f.trustedRoot != "" && (f.tufCache != "" || f.offline) {
		return s, false, errors.New("--trusted-root is the trust material: give it, or --tuf-cache/--offline, not both")
	}
	if !f.fetches && f.trustedRoot == "" && f.tufCache == "" {
		return s, false, nil
	}
	return verifier.TrustedRootSource{File: f.trustedRoot, TUFCache: f.tufCache, Refresh: f.fetches && !f.offline}, true, nil
}

// load gives the trust material when needed says a check needs it, or
// when a flag names it explicitly; nil otherwise.
func (f *materialFlags) load(ctx context.Context, needed bool) (root.TrustedMaterial, error) {
	s, ok, err := f.source()
	if err != nil || !ok || (!needed && f.trustedRoot == "" && f.fetches) {
		return nil, err
	}
	return s.Load(ctx)
}

// lazy gives the trust material on first use, for a check that learns
// whether it needs any only once it has read its policy.
func (f *materialFlags) lazy() func(context.Context) (root.TrustedMaterial, error) {
	s, ok, err := f.source()
	if err != nil {
		return func(context.Context) (root.TrustedMaterial, error) { return nil, err }
	}
	if !ok {
		return nil
	}
	return s.Load
}

// NewTrustRootCmd builds "trustgate trust-root".
func NewTrustRootCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust-root",
		Short: "Keep the Sigstore trusted root, fetched through TUF, for keyless checks",
		Long: `Keyless signatures are checked against a Sigstore trusted root: the
certificate authorities, transparency logs and timestamp authorities of an
instance. Without --trusted-root, trustgate gets the public-good instance's
root through TUF, from sigstore-go's embedded root of trust, and keeps it in
a cache folder; checks refresh it first, or, with --offline, use it alone.
The gateway and the admission webhook never fetch: give them a cache filled
beforehand (--tuf-cache) or a --trusted-root file.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newTrustRootUpdateCmd(), newTrustRootStatusCmd())
	return cmd
}

type trustRootFlags struct {
	cache, mirror, root, output string
}

func (f *trustRootFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.cache, "tuf-cache", "", "TUF cache folder (default: trustgate/tuf in the user's cache folder)")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
}

func (f *trustRootFlags) dir() (string, error) {
	if f.output != "text" && f.output != "json" {
		return "", fmt.Errorf("--output %q: want text or json", f.output)
	}
	if f.cache != "" {
		return f.cache, nil
	}
	return tufroot.DefaultDir()
}

func newTrustRootUpdateCmd() *cobra.Command {
	var f trustRootFlags
	cmd := &cobra.Command{
		Use:   "update [--mirror URL --root root.json]",
		Short: "Refresh the cached trusted root from its TUF repository",
		Long: `Run the TUF client workflow against the repository the cache was last
updated from (the public-good instance, https://tuf-repo-cdn.sigstore.dev,
anchored in the root embedded in trustgate, when it has none), and keep the
verified trusted_root.json. Every root version from the anchor up, the
timestamp, snapshot and targets metadata are checked: signatures, versions
(no rollback below what the cache holds), expiry, and the target's length
and hashes. Nothing in the cache changes unless all of it verifies.

--mirror and --root name another instance's repository and its initial
root.json (a private Sigstore deployment): the cache then holds that
repository alone.

Exit 0 when the cache was updated, 2 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.dir()
			if err != nil {
				return err
			}
			var repo *tufroot.Repository
			switch {
			case f.mirror != "" && f.root != "":
				anchor, err := readfile.Read(f.root, tufroot.MaxRootSize)
				if err != nil {
					return fmt.Errorf("--root: %w", err)
				}
				repo = &tufroot.Repository{Mirror: f.mirror, Root: anchor}
			case f.mirror != "" || f.root != "":
				return errors.New("give --mirror and --root together (neither: the repository the cache holds, or the public good)")
			}
			_, st, err := tufroot.Update(cmd.Context(), dir, repo)
			if err != nil {
				return err
			}
			return printTrustRoot(cmd, f.output, dir, st)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.mirror, "mirror", "", "the TUF repository's URL, for an instance other than the public good")
	cmd.Flags().StringVar(&f.root, "root", "", "that repository's initial root.json, trusted as given")
	return cmd
}

func newTrustRootStatusCmd() *cobra.Command {
	var f trustRootFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Check the cached trusted root offline, as a server would use it",
		Long: `Verify the cache as trustgate --offline, the gateway and the admission
webhook do, with no network: the root chain from the anchor, every
signature, version and expiry, and the target's hashes. It prints the
repository, the versions, when the cache stops being usable, and the
trusted root's digest.

Exit 0 when the cache verifies now, 1 when it does not (expired, tampered,
empty).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.dir()
			if err != nil {
				return err
			}
			_, st, err := tufroot.Load(dir, time.Now())
			if err != nil {
				return &exitError{code: ExitDenied, err: err}
			}
			return printTrustRoot(cmd, f.output, dir, st)
		},
	}
	f.register(cmd)
	return cmd
}

func printTrustRoot(cmd *cobra.Command, output, dir string, st tufroot.Status) error {
	out := cmd.OutOrStdout()
	if output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Cache string `json:"cache"`
			tufroot.Status
		}{dir, st})
	}
	fmt.Fprintf(out, "trusted root  sha256:%s\nrepository    %s (root v%d, timestamp v%d)\ncache         %s\nvalid until   %s (%s from now)\n",
		st.SHA256, st.Mirror, st.RootVersion, st.TimestampVersion, dir,
		st.Expires.UTC().Format(time.RFC3339), time.Until(st.Expires).Round(time.Minute))
	return nil
}
