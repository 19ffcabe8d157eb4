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
	// keylessWithoutLog is --insecure-ignore-tlog.
	keylessWithoutLog bool
}

func (f *checkFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "", "public key (PEM) that must have signed")
	fl.StringVar(&f.predType, "type", "", "required predicate type: cyclonedx, slsaprovenance, vsa, policy or a URI")
	f.material.register(cmd, true)
	fl.BoolVar(&f.requireLog, "require-tlog", false, "with --key: require a transparency log entry")
	fl.BoolVar(&f.requireTime, "require-timestamp", false, "with --key: require an RFC 3161 timestamp")
	fl.BoolVar(&f.keylessWithoutLog, "insecure-ignore-tlog", false, "keyless: accept a signature with no transparency log entry when an RFC 3161 timestamp from the trusted root's TSA vouches for its time (cosign --tlog-upload=false --timestamp-server-url); nothing public records such a signature")
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
	if f.keylessWithoutLog && (f.key != "" || f.requireLog) {
		return s, opts, errors.New("--insecure-ignore-tlog is for keyless signatures, without --require-tlog")
	}
	// Who must have signed, checked before anything is loaded or fetched.
	if f.key != "" {
		keys, err := verifier.PublicKeys([]string{f.key})
		if err != nil {
			return s, opts, fmt.Errorf("--key: %w", err)
		}
		s.Key = keys[0]
	} else {
		if s.Identity, err = bundle.NewIdentity(f.id.issuer, f.id.issuerRegexp, f.id.identity, f.id.identityRegexp); err != nil {
			return s, opts, err
		}
		s.Identity.IgnoreTlog = f.keylessWithoutLog
	}
	// Keyless signatures, and log entries and timestamps, are checked
	// against the trust material; keys alone need none.
	if opts.Material, err = f.material.load(ctx, f.id.set() || f.requireLog || f.requireTime); err != nil {
		return s, opts, err
	}
	opts.RequireLog, opts.RequireTimestamp = f.requireLog, f.requireTime
	return s, opts, nil
}

// newVerifyImageCmd builds "trustgate verify image".
func newVerifyImageCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "image REF (--key PUB | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y) [--type T]",
		Short: "Verify the attestations and signatures stored beside an image",
		Long: `Resolve an image reference to the digest its registry serves now, find the
attestations and signatures stored beside it (OCI 1.1 referrers first, then
the cosign tags sha256-<hex>.att and sha256-<hex>.sig), and verify each for
that digest, signed as the flags say. Every one is listed with where it was
found and what became of it.

A cosign signature (cosign sign: a layer of the .sig tag, or a Sigstore
bundle stored as a referrer with --new-bundle-format) verifies when its
signature over its payload verifies and the payload names this very
digest. It says the signer signed the image, and attests nothing: with
--type it is shown as not counting.

Entries cosign writes in its tag scheme keep their verification material
in annotations (the certificate and its chain, the Rekor signed entry
timestamp, an RFC 3161 timestamp): they are read strictly into a Sigstore
bundle and verified as one, offline, against --trusted-root (a Rekor SET
as a v0.1 bundle's inclusion promise). Each line says which format the
entry was in.

Without --type the image passes when at least one attestation or signature
verifies (as cosign verify does for signatures); with --type, when an
attestation of that type does.

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
		fmt.Fprintf(out, "%s  %s  %s (%s): %s\n", imageVerdict(a), res.Image, safetext.Quote(a.Source+" "+a.Digest), a.Format, imageEntryLine(a, signer, opts))
	}
	if len(res.Attestations) == 0 {
		fmt.Fprintf(out, "FAIL  %s  no attestation stored beside it, and no signature (referrers, cosign tags .att and .sig)\n", res.Image)
	}
	if !res.Passed() {
		what := "no attestation or signature verifies"
		if opts.PredicateType != "" {
			what = "no attestation of type " + opts.PredicateType + " verifies"
		}
		return &exitError{code: ExitDenied, err: errors.New(res.Image.String() + ": " + what)}
	}
	return nil
}

// imageVerdict is PASS, FAIL, or SKIP for a signature that verified and
// does not count, --type being given.
func imageVerdict(a verifier.ImageAttestation) string {
	switch {
	case a.Err == nil:
		return "PASS"
	case errors.Is(a.Err, bundle.ErrNotAttestation):
		return "SKIP"
	}
	return "FAIL"
}

// imageEntryLine says what became of one entry beside an image.
func imageEntryLine(a verifier.ImageAttestation, signer bundle.Signer, opts bundle.Options) string {
	switch {
	case errors.Is(a.Err, bundle.ErrNotAttestation):
		return fmt.Sprintf("cosign signature signed by %s, not counted: a signature attests no predicate type, and --type %s was given", signerName(signer), opts.PredicateType)
	case a.Err != nil && a.Kind == attest.KindSignature:
		return "cosign signature: " + safetext.Line(a.Err.Error())
	case a.Err != nil:
		return safetext.Line(a.Err.Error())
	case a.Signature != nil:
		return "cosign signature signed by " + signerName(signer)
	}
	return a.Result.PredicateType + " signed by " + signerName(signer)
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
