package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/report"
	"github.com/trustgate/trustgate/verifier"
	"github.com/trustgate/trustgate/verify"

	"github.com/trustgate/trustgate/internal/buildinfo"
	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/internal/safetext"
)

// identityFlags are cosign's flags for a keyless signer.
type identityFlags struct {
	identity, identityRegexp, issuer, issuerRegexp string
}

func (f *identityFlags) register(cmd *cobra.Command, prefix string) {
	fl := cmd.Flags()
	fl.StringVar(&f.identity, prefix+"certificate-identity", "", "keyless: the certificate's subject (SAN), exactly")
	fl.StringVar(&f.identityRegexp, prefix+"certificate-identity-regexp", "", "keyless: the certificate's subject, as an anchored regular expression ^...$")
	fl.StringVar(&f.issuer, prefix+"certificate-oidc-issuer", "", "keyless: the OIDC issuer, exactly")
	fl.StringVar(&f.issuerRegexp, prefix+"certificate-oidc-issuer-regexp", "", "keyless: the OIDC issuer, as an anchored regular expression")
}

func (f *identityFlags) set() bool {
	return f.identity != "" || f.identityRegexp != "" || f.issuer != "" || f.issuerRegexp != ""
}

type verifyAttestationFlags struct {
	check                         checkFlags
	bundle, output                string
	signature, certificate, chain string
}

// register adds the flags that say where the signature is: --bundle (a
// Sigstore bundle, or cosign v2's older blob bundle), or cosign's
// detached files.
func (f *verifyAttestationFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.bundle, "bundle", "", "the bundle: a Sigstore bundle, or cosign's older blob bundle (base64Signature, cert, rekorBundle)")
	fl.StringVar(&f.signature, "signature", "", "instead of --bundle: cosign's detached signature file (--output-signature)")
	fl.StringVar(&f.certificate, "certificate", "", "with --signature, keyless: the signing certificate (--output-certificate), PEM")
	fl.StringVar(&f.chain, "certificate-chain", "", "with --certificate: its issuers, PEM")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
	f.check.register(cmd)
}

// files is where the signature is, from the flags.
func (f *verifyAttestationFlags) files() (verifier.SignatureFiles, error) {
	if f.output != "text" && f.output != "json" {
		return verifier.SignatureFiles{}, fmt.Errorf("--output %q: want text or json", f.output)
	}
	if (f.bundle == "") == (f.signature == "") {
		return verifier.SignatureFiles{}, errors.New("give --bundle, or --signature (cosign's detached signature), not both")
	}
	if f.signature == "" && (f.certificate != "" || f.chain != "") {
		return verifier.SignatureFiles{}, errors.New("--certificate and --certificate-chain go with --signature")
	}
	return verifier.SignatureFiles{Bundle: f.bundle, Signature: f.signature, Certificate: f.certificate, Chain: f.chain}, nil
}

// source names the signature and its format in the output: a Sigstore
// bundle, cosign's older blob bundle, or cosign's detached signature.
func (f *verifyAttestationFlags) source() signatureSource {
	if f.bundle == "" {
		return signatureSource{path: f.signature, format: "cosign detached signature"}
	}
	format := "bundle"
	if raw, err := readfile.Read(f.bundle, attest.MaxBundleSize); err == nil && attest.IsCosignBlobBundle(raw) {
		format = "cosign blob bundle"
	}
	return signatureSource{path: f.bundle, format: format}
}

type signatureSource struct{ path, format string }

// NewVerifyAttestationCmd builds "trustgate verify-attestation".
func NewVerifyAttestationCmd() *cobra.Command {
	var f verifyAttestationFlags
	cmd := &cobra.Command{
		Use:   "verify-attestation (--bundle B | --signature S) (--key PUB | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y) [--type T] [--trusted-root R] FILE|sha256:DIGEST",
		Short: "Verify one attestation bundle for one artifact (flags as cosign's)",
		Long: `Verify a Sigstore bundle holding an in-toto attestation for one artifact: the
signature (by --key, or keyless by the certificate identity and issuer, checked
against --trusted-root), the log entries and timestamps the trusted root and
flags require, the DSSE payload type, the statement, the artifact's digest among
its subjects, and with --type the predicate type. The artifact is a file, a
folder (by its h1 tree digest), or sha256:DIGEST. Nothing is fetched but,
for keyless without --trusted-root, the trusted root through TUF.

cosign v2's older formats are read too, and checked the same way: the blob
bundle attest-blob --bundle writes without --new-bundle-format
(base64Signature, cert, rekorBundle: its Rekor signed entry timestamp is
verified offline against the trusted root's Rekor keys), and the envelope
--output-signature writes (--signature).

Exit 0 when it verifies, 1 when it does not, 2 for bad input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerifyAttestation(cmd, f, args[0])
		},
	}
	f.register(cmd)
	return cmd
}

func runVerifyAttestation(cmd *cobra.Command, f verifyAttestationFlags, target string) error {
	files, err := f.files()
	if err != nil {
		return err
	}
	signer, opts, err := f.check.build(cmd.Context())
	if err != nil {
		return err
	}
	res, err := verifier.AttestationFrom(files, target, signer, opts)
	if err != nil && !errors.Is(err, verifier.ErrDenied) {
		return err
	}
	var passed map[string]any
	if err == nil {
		passed = map[string]any{"signer": res.Signer, "predicateType": res.PredicateType}
	}
	return reportOne(cmd, f.output, target, f.source(), err, passed, func() string {
		return res.PredicateType + " signed by " + signerName(signer)
	})
}

// reportOne prints the verdict on one signature for one artifact, as text
// or JSON (artifact, bundle: the signature's file, format, verified, and
// the error or the fields of passed), and returns the denial's exit error.
func reportOne(cmd *cobra.Command, output, target string, src signatureSource, verr error, passed map[string]any, what func() string) error {
	out := cmd.OutOrStdout()
	if output == "json" {
		doc := map[string]any{"artifact": target, "bundle": src.path, "format": src.format, "verified": verr == nil}
		if verr != nil {
			doc["error"] = verr.Error()
		}
		for k, v := range passed {
			doc[k] = v
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else if verr == nil {
		fmt.Fprintf(out, "PASS  %s  %s (%s %s)\n", target, what(), src.format, src.path)
	} else {
		fmt.Fprintf(out, "FAIL  %s  %s (%s %s)\n", target, safetext.Line(verr.Error()), src.format, src.path)
	}
	if verr != nil {
		return &exitError{code: ExitDenied, err: fmt.Errorf("%s: not verified", target)}
	}
	return nil
}

// NewVerifyBlobCmd builds "trustgate verify-blob".
func NewVerifyBlobCmd() *cobra.Command {
	var f verifyAttestationFlags
	cmd := &cobra.Command{
		Use:   "verify-blob (--bundle B | --signature S [--certificate C]) (--key PUB | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y) [--trusted-root R] FILE|sha256:DIGEST",
		Short: "Verify a message signature over one artifact (cosign sign-blob --bundle, flags as cosign's)",
		Long: `Verify a Sigstore bundle holding a message signature over one artifact, as
cosign sign-blob --bundle, sigstore-python and GitHub release signing make
them: the signature over the artifact's own digest (by --key, or keyless by
the certificate identity and issuer, checked against --trusted-root), and the
log entries and timestamps the trusted root and flags require. The artifact
is a file or sha256:DIGEST. A message signature says the signer signed these
bytes, and nothing more: it is no attestation (verify-attestation refuses it,
and this command refuses an attestation). Nothing is fetched but, for
keyless without --trusted-root, the trusted root through TUF.

cosign v2's older formats are read too, and checked the same way: the blob
bundle sign-blob --bundle writes without --new-bundle-format
(base64Signature, cert, rekorBundle: its Rekor signed entry timestamp is
verified offline against the trusted root's Rekor keys), and the detached
--output-signature and --output-certificate files (--signature,
--certificate; with no log entry, a keyless one has no verified time and is
refused).

Exit 0 when it verifies, 1 when it does not, 2 for bad input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.check.predType != "" {
				return errors.New("--type: a message signature has no predicate type")
			}
			files, err := f.files()
			if err != nil {
				return err
			}
			signer, opts, err := f.check.build(cmd.Context())
			if err != nil {
				return err
			}
			res, err := verifier.BlobFrom(files, args[0], signer, opts)
			if err != nil && !errors.Is(err, verifier.ErrDenied) {
				return err
			}
			var passed map[string]any
			if err == nil {
				passed = map[string]any{"signer": res.Signer, "digest": res.Algorithm + ":" + res.Digest}
			}
			return reportOne(cmd, f.output, args[0], f.source(), err, passed, func() string {
				return "message signature by " + signerName(signer)
			})
		},
	}
	f.register(cmd)
	_ = cmd.Flags().MarkHidden("type")
	return cmd
}

type verifyFlags struct {
	stack, policy, policyBundle, state, output string
	bundles                                    []string
	trust                                      policyTrustFlags
	vsa                                        string
	sign                                       signFlags
}

// policyTrustFlags say who may sign the policy: --trust-root keys, or the
// --policy-certificate-* keyless identity checked against --trusted-root.
type policyTrustFlags struct {
	keys     []string
	material materialFlags
	id       identityFlags
}

// register adds the flags; fetches says whether the command may refresh
// the TUF cache (a check run by hand) or must never (a server).
func (f *policyTrustFlags) register(cmd *cobra.Command, fetches bool) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.keys, "trust-root", nil, "public key (PEM) allowed to sign the policy (repeatable)")
	f.material.register(cmd, fetches)
	f.id.register(cmd, "policy-")
}

// NewVerifyCmd builds "trustgate verify".
func NewVerifyCmd() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify --stack stack.yaml --policy policy.yaml --trust-root KEY.pub [--bundle B]... [--trusted-root R]",
		Short: "Verify a whole deployment against its signed policy",
		Long: `Verify every component of the deployment a stack manifest describes against a
signed policy. The policy must be signed by a --trust-root key (or the
--policy-certificate-* identity, with --trusted-root), not be expired, and not
be older than the last policy accepted (the --state file). Each component is
measured from the bytes it runs from; each --bundle, and each attestation
stored beside the stack's registry images, is verified against the policy's
signers and bound to the components whose digests it names. A component the
policy does not name is denied.

Exit 0 when everything passes, 1 when something is denied, 2 for bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stack, "stack", "", "stack manifest (required)")
	fl.StringVar(&f.policy, "policy", "", "the policy (required)")
	fl.StringVar(&f.policyBundle, "policy-bundle", "", "the policy's bundle (default: POLICY.bundle.json)")
	f.trust.register(cmd, true)
	fl.StringArrayVar(&f.bundles, "bundle", nil, "attestation bundle to consider (repeatable)")
	fl.StringVar(&f.state, "state", "", "file remembering the last policy accepted (default: trustgate/policy-state.json in the user's state folder)")
	fl.StringVarP(&f.output, "output", "o", "text", "text, json (schema/verify-report.schema.json) or sarif (SARIF 2.1.0, for GitHub code scanning)")
	fl.StringVar(&f.vsa, "vsa", "", "also write a signed SLSA verification summary of this run to this file (needs --key or --keyless)")
	f.sign.register(fl)
	cmd.AddCommand(newVerifyImageCmd())
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if f.stack == "" || f.policy == "" {
			return errors.New(`required flags "stack" and "policy" (or: trustgate verify image REF)`)
		}
		return nil
	}
	return cmd
}

func runVerify(cmd *cobra.Command, f verifyFlags) error {
	if f.output != "text" && f.output != "json" && f.output != "sarif" {
		return fmt.Errorf("--output %q: want text, json or sarif", f.output)
	}
	if f.vsa != "" {
		if err := f.sign.check(); err != nil {
			return fmt.Errorf("--vsa: %w", err)
		}
	} else if f.sign.key != "" || f.sign.keyless {
		return errors.New("--key and --keyless sign a verification summary: give --vsa FILE")
	}
	trust, err := f.trust.root(cmd.Context(), false)
	if err != nil {
		return err
	}
	cfg := verifier.Config{
		Stack: f.stack, Policy: f.policy, PolicyBundle: f.policyBundle, Trust: trust,
		TrustedRoot: f.trust.material.lazy(),
		Bundles:     f.bundles, StatePath: f.state, Registry: pin.Registry{Timeout: registryTimeout},
	}
	res, err := verifier.Deployment(cmd.Context(), cfg)
	if errors.Is(err, verifier.ErrDenied) {
		return &exitError{code: ExitDenied, err: err}
	}
	if err != nil {
		return err
	}
	if f.vsa != "" {
		if err := writeSummary(cmd, f, res); err != nil {
			return err
		}
	}
	switch f.output {
	case "json":
		out, err := report.JSON(res.Report)
		if err != nil {
			return err
		}
		if _, err := cmd.OutOrStdout().Write(out); err != nil {
			return err
		}
	case "sarif":
		out, err := report.SARIF(res.Report, filepath.ToSlash(f.stack), version())
		if err != nil {
			return err
		}
		if _, err := cmd.OutOrStdout().Write(out); err != nil {
			return err
		}
	default:
		printVerify(cmd, res.Report)
	}
	if !res.Allowed {
		return &exitError{code: ExitDenied, err: errors.New("the deployment is denied")}
	}
	return nil
}

// writeSummary signs a SLSA verification summary of the run and writes it.
func writeSummary(cmd *cobra.Command, f verifyFlags, res *verifier.Result) error {
	st, err := verify.Summary(res.Deployment, res.Report, verify.SummaryInput{
		Manifest: filepath.Base(res.Stack.Source.File), ManifestDigest: res.Stack.Source.Digest,
		Policy: filepath.Base(f.policy), PolicyDigest: res.Policy.Source().Digest,
		Version: version(), Time: res.Deployment.Now,
	})
	if err != nil {
		return err
	}
	b, err := f.sign.sign(cmd, st)
	if err != nil {
		return fmt.Errorf("--vsa: %w", err)
	}
	return deliver(cmd, b, f.vsa, false, nil)
}

// root reads who may sign the policy from the flags. The trust material
// is read now when a flag names it, or when eager and a keyless identity
// may sign the policy; otherwise it is left for the check to load when it
// needs it (materialFlags.lazy).
func (f policyTrustFlags) root(ctx context.Context, eager bool) (policy.TrustRoot, error) {
	keys, err := verifier.PublicKeys(f.keys)
	if err != nil {
		return policy.TrustRoot{}, fmt.Errorf("--trust-root: %w", err)
	}
	material, err := f.material.load(ctx, eager && f.id.set())
	if err != nil {
		return policy.TrustRoot{}, err
	}
	trust := policy.TrustRoot{Keys: keys, Material: material}
	if f.id.set() {
		trust.Identities = []policy.Identity{{Issuer: f.id.issuer, IssuerRegexp: f.id.issuerRegexp, Subject: f.id.identity, SubjectRegexp: f.id.identityRegexp}}
	}
	if len(trust.Keys) == 0 && len(trust.Identities) == 0 {
		return policy.TrustRoot{}, errors.New("no policy trust root: give --trust-root KEY.pub or the --policy-certificate-* flags")
	}
	return trust, nil
}

// version is trustgate's module version, for reports.
func version() string {
	if v := buildinfo.Read().Version; v != "" && v != "(unknown)" {
		return v
	}
	return "devel"
}

func printVerify(cmd *cobra.Command, r verify.Report) {
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, d := range r.Decisions {
		verdict := strings.ToUpper(d.Outcome())
		line := verdict + "\t" + d.Subject
		if !d.Allowed {
			line += fmt.Sprintf("\t%s: expected %s, found %s", d.Rule, safetext.Quote(d.Expected), safetext.Quote(d.Found))
			if n := len(d.Violations); n > 1 {
				line += fmt.Sprintf(" (and %d more)", n-1)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for _, e := range r.Evidence {
		if e.Verified {
			fmt.Fprintf(out, "evidence  %s: %s signed by %s, about %s\n", safetext.Quote(e.Source), e.PredicateType, strings.Join(e.Signers, ", "), strings.Join(e.Subjects, ", "))
		} else {
			fmt.Fprintf(out, "evidence  %s: not verified: %s\n", safetext.Quote(e.Source), safetext.Line(e.Error))
		}
	}
}
