package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/verifier"
)

// checkFlags are the flags of the commands that check a signature for a
// caller: who must have signed, what type, against what trust material.
type checkFlags struct {
	key, predType           string
	material                materialFlags
	id                      identityFlags
	requireLog, requireTime bool
}

func (f *checkFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "", "public key (PEM) that must have signed")
	fl.StringVar(&f.predType, "type", "", "required predicate type: cyclonedx, slsaprovenance, vsa, policy or a URI")
	f.material.register(cmd, true)
	fl.BoolVar(&f.requireLog, "require-tlog", false, "with --key: require a transparency log entry")
	fl.BoolVar(&f.requireTime, "require-timestamp", false, "with --key: require an RFC 3161 timestamp")
	f.id.register(cmd, "")
}

// build reads the flags into the signer and options verify takes.
func (f *checkFlags) build(ctx context.Context) (bundle.Signer, bundle.Options, error) {
	var s bundle.Signer
	var opts bundle.Options
	if (f.key != "") == f.id.set() {
		return s, opts, errors.New("give exactly one of --key and the --certificate-identity/--certificate-oidc-issuer flags")
	}
	var err error
	if f.predType != "" {
		if opts.PredicateType, err = attest.PredicateType(f.predType); err != nil {
			return s, opts, fmt.Errorf("--type: %w", err)
		}
	}
	// Keyless signatures, and log entries and timestamps, are checked
	// against the trust material; keys alone need none.
	if opts.Material, err = f.material.load(ctx, f.id.set() || f.requireLog || f.requireTime); err != nil {
		return s, opts, err
	}
	opts.RequireLog, opts.RequireTimestamp = f.requireLog, f.requireTime
	if f.key != "" {
		keys, err := verifier.PublicKeys([]string{f.key})
		if err != nil {
			return s, opts, fmt.Errorf("--key: %w", err)
		}
		s.Key = keys[0]
		return s, opts, nil
	}
	s.Identity, err = bundle.NewIdentity(f.id.issuer, f.id.issuerRegexp, f.id.identity, f.id.identityRegexp)
	return s, opts, err
}

// newVerifyImageCmd builds "trustgate verify image".
func newVerifyImageCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "image REF (--key PUB | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y) [--type T]",
		Short: "Verify the attestations stored beside an image",
		Long: `Resolve an image reference to the digest its registry serves now, find the
attestations stored beside it (OCI 1.1 referrers first, then the cosign tag
sha256-<hex>.att), and verify each for that digest, signed as the flags say.
It passes when at least one verifies (of --type, if given); every attestation
is listed with where it was found and what became of it.

Exit 0 when one verifies, 1 when none does, 2 for bad input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerifyImage(cmd, f, args[0])
		},
	}
	f.register(cmd)
	return cmd
}

func runVerifyImage(cmd *cobra.Command, f checkFlags, ref string) error {
	signer, opts, err := f.build(cmd.Context())
	if err != nil {
		return err
	}
	res, err := verifier.Image(cmd.Context(), ref, verifier.ImageConfig{Signer: signer, Options: opts, Registry: pin.Registry{Timeout: registryTimeout}})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for _, a := range res.Attestations {
		where := safetext.Quote(a.Source + " " + a.Digest)
		if a.Err != nil {
			fmt.Fprintf(out, "FAIL  %s  %s: %s\n", res.Image, where, safetext.Line(a.Err.Error()))
			continue
		}
		fmt.Fprintf(out, "PASS  %s  %s: %s signed by %s\n", res.Image, where, a.Result.PredicateType, signerName(signer))
	}
	if len(res.Attestations) == 0 {
		fmt.Fprintf(out, "FAIL  %s  no attestation stored beside it (referrers or cosign tag)\n", res.Image)
	}
	if !res.Passed() {
		return &exitError{code: ExitDenied, err: errors.New(res.Image.String() + ": no attestation verifies")}
	}
	return nil
}

// signerName names the signer the caller required (never the label a bundle
// gives itself).
func signerName(s bundle.Signer) string {
	if s.Key != nil {
		if h, err := attest.KeyHint(s.Key); err == nil {
			return "key " + h
		}
		return "the given key"
	}
	return s.Identity.String()
}
