package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/trustgate/trustgate/attest"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/readfile"
)

// signFlags are the flags of every command that signs: attest, and sbom
// --attest.
type signFlags struct {
	key           string
	keyless       bool
	identityToken string
	fulcioURL     string
	rekorURL      string
	rekorVersion  uint32
	tsaURL        string
	signingConfig string
}

func (f *signFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.key, "key", "", "private key file to sign with (trustgate keygen or cosign generate-key-pair)")
	fl.BoolVar(&f.keyless, "keyless", false, "sign with a short-lived Fulcio certificate for an OIDC identity")
	fl.StringVar(&f.identityToken, "identity-token", "", "keyless: OIDC identity token, or a file holding one (default $SIGSTORE_ID_TOKEN, else GitHub Actions' token)")
	fl.StringVar(&f.fulcioURL, "fulcio-url", "", "keyless: Fulcio URL (default the public Sigstore instance)")
	fl.StringVar(&f.rekorURL, "rekor-url", "", "transparency log URL (keyless default: the public Rekor; with --key: none unless given)")
	fl.Uint32Var(&f.rekorVersion, "rekor-version", 1, "major API version of --rekor-url: 1 or 2")
	fl.StringVar(&f.tsaURL, "tsa-url", "", "RFC 3161 timestamp authority URL, such as https://timestamp.sigstore.dev/api/v1/timestamp")
	fl.StringVar(&f.signingConfig, "signing-config", "", "Sigstore signing_config.json naming the services (flags override it)")
}

func (f *signFlags) check() error {
	if (f.key == "") == !f.keyless {
		return errors.New("give exactly one of --key KEY and --keyless")
	}
	if f.key != "" && (f.identityToken != "" || f.fulcioURL != "") {
		return errors.New("--identity-token and --fulcio-url are for --keyless")
	}
	return nil
}

// services works out the Sigstore services from the signing config and the
// flags, the flags winning.
func (f *signFlags) services(cmd *cobra.Command) (attest.Services, error) {
	var svc attest.Services
	switch {
	case f.signingConfig != "":
		sc, err := root.NewSigningConfigFromPath(f.signingConfig)
		if err != nil {
			return svc, fmt.Errorf("--signing-config %q: %w", f.signingConfig, err)
		}
		if svc, err = attest.ServicesFromSigningConfig(sc, f.keyless, time.Now()); err != nil {
			return svc, fmt.Errorf("--signing-config %q: %w", f.signingConfig, err)
		}
	case f.keyless:
		svc = attest.PublicGood
	}
	if f.fulcioURL != "" {
		svc.Fulcio = f.fulcioURL
	}
	if f.rekorURL != "" || cmd.Flags().Changed("rekor-version") {
		if f.rekorURL == "" {
			return svc, errors.New("--rekor-version needs --rekor-url")
		}
		svc.Rekor = []attest.Log{{URL: f.rekorURL, Version: f.rekorVersion}}
	}
	if f.tsaURL != "" {
		svc.TSA = []string{f.tsaURL}
	}
	return svc, nil
}

// sign signs st as the flags say.
func (f *signFlags) sign(cmd *cobra.Command, st *attest.Statement) (*bundle.Bundle, error) {
	svc, err := f.services(cmd)
	if err != nil {
		return nil, err
	}
	ctx := cmd.Context()
	if !f.keyless {
		key, err := loadKey(cmd, f.key)
		if err != nil {
			return nil, err
		}
		return attest.Sign(ctx, st, key, svc)
	}
	token, err := identityToken(ctx, f.identityToken)
	if err != nil {
		return nil, err
	}
	b, err := attest.SignKeyless(ctx, st, token, svc)
	return b, attest.Redact(err, token)
}

const maxTokenFile = 64 << 10

// registryTimeout bounds each registry step (resolving subjects, attaching,
// listing), so that a registry that stalls cannot hang a CI job.
const registryTimeout = 5 * time.Minute

// identityToken finds the OIDC token for keyless signing: the flag (a token,
// or a file that holds one), then $SIGSTORE_ID_TOKEN, then GitHub Actions.
func identityToken(ctx context.Context, flag string) (string, error) {
	if flag != "" {
		if fi, err := os.Stat(flag); err == nil && fi.Mode().IsRegular() {
			data, err := readfile.Read(flag, maxTokenFile)
			if err != nil {
				return "", fmt.Errorf("--identity-token: %w", err)
			}
			return strings.TrimSpace(string(data)), nil
		}
		return flag, nil
	}
	if t := os.Getenv("SIGSTORE_ID_TOKEN"); t != "" {
		return t, nil
	}
	t, ok, err := attest.GitHubActionsToken(ctx, "sigstore", nil)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: pass --identity-token, set SIGSTORE_ID_TOKEN, or run in GitHub Actions with id-token: write", attest.ErrNoIdentityToken)
	}
	return t, nil
}

type attestFlags struct {
	sign      signFlags
	predicate string
	predType  string
	subjects  []string
	bundle    string
	attach    bool
}

// NewAttestCmd builds "trustgate attest".
func NewAttestCmd() *cobra.Command {
	var f attestFlags
	cmd := &cobra.Command{
		Use:   "attest --predicate FILE --type TYPE --subject PATH|IMAGE... (--key KEY | --keyless) [--bundle OUT] [--attach]",
		Short: "Sign an in-toto attestation about files, folders or images into a Sigstore bundle",
		Long: `Make an in-toto Statement v1 about each --subject, with the predicate read from
--predicate, sign it in a DSSE envelope, and write it as a Sigstore bundle v0.3.

A subject is a file (by its sha256), a folder (by its h1 tree digest, in-toto's
dirHash) or an image reference with a registry host (by the sha256 of the
manifest the registry serves for it now). --type is cyclonedx, slsaprovenance
(https://slsa.dev/provenance/v1), vsa, policy, or any absolute URI.

With --key the bundle names the key by its hint; --rekor-url and --tsa-url add a
log entry and a timestamp. With --keyless an ephemeral key is certified by
Fulcio for your OIDC identity and the signature is entered in Rekor.

--attach stores the bundle beside each image subject in its registry: as an
OCI 1.1 referrer, or as a layer of the cosign tag sha256-<hex>.att where the
registry has no referrers API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAttest(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.predicate, "predicate", "", "predicate file: one JSON object (required)")
	fl.StringVar(&f.predType, "type", "", "predicate type: cyclonedx, slsaprovenance, vsa, policy or a URI (required)")
	fl.StringArrayVar(&f.subjects, "subject", nil, "file, folder or image the statement is about (repeatable; required)")
	fl.StringVar(&f.bundle, "bundle", "", "file to write the bundle to (default: standard output, unless --attach)")
	fl.BoolVar(&f.attach, "attach", false, "store the bundle beside each image subject in its registry")
	f.sign.register(fl)
	_ = cmd.MarkFlagRequired("predicate")
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("subject")
	return cmd
}

func runAttest(cmd *cobra.Command, f attestFlags) error {
	if err := f.sign.check(); err != nil {
		return err
	}
	predType, err := attest.PredicateType(f.predType)
	if err != nil {
		return fmt.Errorf("--type: %w", err)
	}
	predicate, err := readfile.Read(f.predicate, attest.MaxPredicateSize)
	if err != nil {
		return fmt.Errorf("--predicate: %w", err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), registryTimeout)
	defer cancel()
	var (
		subjects []attest.Subject
		images   []name.Digest
	)
	for _, s := range f.subjects {
		sub, img, err := resolveSubject(ctx, s)
		if err != nil {
			return fmt.Errorf("--subject %q: %w", s, err)
		}
		subjects = append(subjects, sub)
		if img != nil {
			images = append(images, *img)
		}
	}
	if f.attach && len(images) == 0 {
		return errors.New("--attach needs at least one image subject")
	}
	st, err := attest.NewStatement(predType, predicate, subjects...)
	if err != nil {
		return fmt.Errorf("--predicate %q: %w", f.predicate, err)
	}
	b, err := f.sign.sign(cmd, st)
	if err != nil {
		return err
	}
	return deliver(cmd, b, f.bundle, !f.attach, images)
}

// deliver writes the bundle to path ("" means standard output when toStdout)
// and attaches it to each image.
func deliver(cmd *cobra.Command, b *bundle.Bundle, path string, toStdout bool, images []name.Digest) error {
	data, err := attest.MarshalBundle(b)
	if err != nil {
		return err
	}
	errw := cmd.ErrOrStderr()
	switch {
	case path != "" && path != "-":
		if err := atomicfile.Write(path, data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(errw, "wrote %s (signed by %s)\n", path, attest.Signer(b))
	case path == "-" || toStdout:
		if _, err := cmd.OutOrStdout().Write(data); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), registryTimeout)
	defer cancel()
	for _, img := range images {
		a, err := attest.Attach(ctx, img, b, attest.Registry{})
		if err != nil {
			return err
		}
		fmt.Fprintf(errw, "attached to %s as %s %s\n", img, a.Source, a.Digest)
	}
	return nil
}

// resolveSubject turns a --subject into a subject. A path that starts with
// "/", "./" or "../" is a file or folder. Anything else is a file or folder
// if it exists, an image if it is a reference whose first part is a
// registry host (so that a mistyped file name is never looked up on Docker
// Hub), and refused as ambiguous if it is both.
func resolveSubject(ctx context.Context, s string) (attest.Subject, *name.Digest, error) {
	explicitPath := strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || s == "." || s == ".."
	_, statErr := os.Lstat(s)
	image := !explicitPath && looksLikeImage(s)
	switch {
	case statErr == nil && image:
		return attest.Subject{}, nil, fmt.Errorf("%w: ambiguous: a file or folder of that name exists and it is also an image reference; write ./%s for the file", attest.ErrInvalidSubject, s)
	case statErr == nil || explicitPath:
		sub, err := attest.FileSubject(s)
		return sub, nil, err
	case !image:
		return attest.Subject{}, nil, fmt.Errorf("%w: no such file or folder, and not an image reference with a registry host (such as registry.example.com/app:1.0)", attest.ErrInvalidSubject)
	}
	d, sub, err := attest.ImageSubject(ctx, s, attest.Registry{})
	if err != nil {
		return attest.Subject{}, nil, err
	}
	return sub, &d, nil
}

func looksLikeImage(s string) bool {
	host, _, ok := strings.Cut(s, "/")
	return ok && (strings.ContainsAny(host, ".:") || host == "localhost")
}
