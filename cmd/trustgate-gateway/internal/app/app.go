// Package app is trustgate-gateway's command line: flags in, one call of
// package gateway, an exit code out.
package app

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/gateway"
	"github.com/trustgate/trustgate/internal/buildinfo"
	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/verifier"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitError    = 1 // failed while running
	ExitUsage    = 2 // bad flags or input
	ExitRefused  = 3 // something did not verify: nothing listened
	DefaultData  = "/var/lib/trustgate-gateway"
	defaultLevel = "info"
)

// Embedded is what a release build bakes in (see main).
type Embedded struct {
	TrustKey         string // base64 of a PEM public key
	MinPolicyVersion string // decimal
}

type flags struct {
	stack, policy, policyBundle, trustedRoot, tufCache, dataDir string
	trustKeys, bundles                                          []string
	identity, identityRegexp, issuer, issuerRegexp              string
	minPolicyVersion                                            uint64
	insecureDev                                                 bool
	logFormat, logLevel                                         string
}

// Main runs the gateway with args and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, emb Embedded) int {
	var f flags
	code := ExitOK
	cmd := &cobra.Command{
		Use:   "trustgate-gateway --stack stack.yaml --policy policy.yaml --trust-key KEY.pub [--bundle B]...",
		Short: "The self-verifying LLM gateway",
		Long: `trustgate-gateway verifies its own executable, its signed policy, the stack
manifest and every plugin and agent; it starts each plugin and agent from the
exact bytes it verified, with only what the policy grants, and only then
listens (gatewayConfig.listen in the manifest).

Exit 3 when anything does not verify (one line says the step, the component,
the rule, the expected and the found value; no port is bound), 2 for bad
flags, 1 when it fails while running, 0 after SIGINT or SIGTERM.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			code, err = run(cmd.Context(), f, stderr, emb)
			return err
		},
	}
	// --version: what the binary was built from, and the libraries its
	// verdicts rest on.
	info := buildinfo.Read()
	cmd.Version = info.Short()
	cmd.SetVersionTemplate(strings.ReplaceAll(info.String(), "{{", "{ {"))
	fl := cmd.Flags()
	fl.StringVar(&f.stack, "stack", "", "stack manifest (required)")
	fl.StringVar(&f.policy, "policy", "", "the signed policy (required)")
	fl.StringVar(&f.policyBundle, "policy-bundle", "", "the policy's bundle (default: POLICY.bundle.json)")
	fl.StringArrayVar(&f.trustKeys, "trust-key", nil, "public key (PEM) allowed to sign the policy (repeatable; refused when a key is built in)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json, for keyless signers")
	fl.StringVar(&f.tufCache, "tuf-cache", "", "TUF cache folder filled beforehand by trustgate trust-root update, to read the trusted root from instead (never refreshed: the gateway does not fetch)")
	fl.StringVar(&f.identity, "policy-certificate-identity", "", "keyless policy signer: the certificate's subject, exactly")
	fl.StringVar(&f.identityRegexp, "policy-certificate-identity-regexp", "", "keyless policy signer: the subject, as an anchored regular expression")
	fl.StringVar(&f.issuer, "policy-certificate-oidc-issuer", "", "keyless policy signer: the OIDC issuer, exactly")
	fl.StringVar(&f.issuerRegexp, "policy-certificate-oidc-issuer-regexp", "", "keyless policy signer: the issuer, as an anchored regular expression")
	fl.StringArrayVar(&f.bundles, "bundle", nil, "attestation bundle about the components (repeatable)")
	fl.StringVar(&f.dataDir, "data-dir", DefaultData, "the gateway's private folder: rollback state, working folders, snapshots")
	fl.Uint64Var(&f.minPolicyVersion, "min-policy-version", 0, "lowest policy version accepted (raises the built-in floor, never lowers it)")
	fl.BoolVar(&f.insecureDev, "insecure-dev", false, "start although the gateway's own executable is not verified (development only; every answer says so)")
	fl.StringVar(&f.logFormat, "log-format", "json", "json or text")
	fl.StringVar(&f.logLevel, "log-level", defaultLevel, "debug, info, warn or error")
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return code
	}
	fmt.Fprintln(stderr, "trustgate-gateway:", safetext.Line(err.Error()))
	var usage *usageError
	switch {
	case errors.As(err, &usage) || code == ExitOK:
		return ExitUsage
	default:
		return code
	}
}

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func run(ctx context.Context, f flags, stderr io.Writer, emb Embedded) (int, error) {
	log, err := logger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return ExitUsage, &usageError{err}
	}
	if f.stack == "" || f.policy == "" {
		return ExitUsage, &usageError{errors.New(`required flags "stack" and "policy"`)}
	}
	trust, err := trustRoot(f, emb)
	if err != nil {
		return ExitUsage, &usageError{err}
	}
	floor, err := minVersion(f.minPolicyVersion, emb.MinPolicyVersion)
	if err != nil {
		return ExitUsage, &usageError{err}
	}
	if err := gateway.Harden(); err != nil {
		return ExitError, fmt.Errorf("making the process non-dumpable: %w", err)
	}
	if f.insecureDev {
		log.Warn(gateway.InsecureDevWarning)
	}
	g, err := gateway.Start(ctx, gateway.Options{
		Stack: f.stack, Policy: f.policy, PolicyBundle: f.policyBundle, Trust: trust,
		Bundles: f.bundles, DataDir: f.dataDir, MinPolicyVersion: floor, InsecureDev: f.insecureDev,
		Registry: pin.Registry{}, Logger: log, ReapOrphans: true,
	})
	if err != nil {
		return exitFor(err), err
	}
	if err := g.Serve(ctx, nil); err != nil {
		return exitFor(err), err
	}
	return ExitOK, nil
}

func exitFor(err error) int {
	if errors.Is(err, gateway.ErrRefused) {
		return ExitRefused
	}
	return ExitError
}

func logger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}

// trustRoot is the flags' policy signers, or the built-in key.
func trustRoot(f flags, emb Embedded) (policy.TrustRoot, error) {
	if emb.TrustKey != "" {
		// A release build's trust root is part of the signed binary: no
		// flag, which anyone starting the gateway chooses, may replace or
		// widen it.
		if len(f.trustKeys) > 0 || f.trustedRoot != "" || f.tufCache != "" || f.identity != "" || f.identityRegexp != "" || f.issuer != "" || f.issuerRegexp != "" {
			return policy.TrustRoot{}, errors.New("this build has a built-in policy trust root; --trust-key, --trusted-root, --tuf-cache and the --policy-certificate-* flags cannot change it")
		}
		k, err := embeddedKey(emb.TrustKey)
		if err != nil {
			return policy.TrustRoot{}, err
		}
		return policy.TrustRoot{Keys: []crypto.PublicKey{k}}, nil
	}
	keys, err := verifier.PublicKeys(f.trustKeys)
	if err != nil {
		return policy.TrustRoot{}, fmt.Errorf("--trust-key: %w", err)
	}
	var tr policy.TrustRoot
	if f.trustedRoot != "" || f.tufCache != "" {
		if f.trustedRoot != "" && f.tufCache != "" {
			return tr, errors.New("give --trusted-root or --tuf-cache, not both")
		}
		src := verifier.TrustedRootSource{File: f.trustedRoot, TUFCache: f.tufCache}
		if tr.Material, err = src.Load(context.Background()); err != nil {
			return tr, err
		}
	}
	tr.Keys = keys
	if f.identity != "" || f.identityRegexp != "" || f.issuer != "" || f.issuerRegexp != "" {
		tr.Identities = []policy.Identity{{Issuer: f.issuer, IssuerRegexp: f.issuerRegexp, Subject: f.identity, SubjectRegexp: f.identityRegexp}}
	}
	if len(tr.Keys) == 0 && len(tr.Identities) == 0 {
		return policy.TrustRoot{}, errors.New("no policy trust root: give --trust-key KEY.pub or the --policy-certificate-* flags, or build one in")
	}
	return tr, nil
}

func embeddedKey(b64 string) (crypto.PublicKey, error) {
	pemBytes, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("the built-in trust key is not base64: %w", err)
	}
	k, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("the built-in trust key is not a PEM public key: %w", err)
	}
	return k, nil
}

// minVersion is the higher of the flag and the built-in floor.
func minVersion(flag uint64, embedded string) (uint64, error) {
	if embedded == "" {
		return flag, nil
	}
	floor, err := strconv.ParseUint(embedded, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the built-in minimum policy version %q is not a number", embedded)
	}
	return max(flag, floor), nil
}
