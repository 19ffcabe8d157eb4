package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/oms"

	"github.com/trustgate/trustgate/internal/readfile"
)

// verifyModelFlags are the flags of verify-model.
type verifyModelFlags struct {
	check          checkFlags
	signature      string
	output         string
	ignore         []string
	ignoreGitPaths bool
}

// NewVerifyModelCmd builds "trustgate verify-model".
func NewVerifyModelCmd() *cobra.Command {
	var f verifyModelFlags
	cmd := &cobra.Command{
		Use:   "verify-model MODEL_PATH --signature model.sig (--key PUB | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y) [--trusted-root R] [--ignore-paths P]...",
		Short: "Verify an OpenSSF model signature (model_signing sign) of a model folder or file",
		Long: `Verify an OpenSSF model signature (OMS: the Sigstore bundle model_signing
sign writes) of the model at MODEL_PATH, a folder or one file: the signature
(by --key, or keyless by the certificate identity and issuer, checked against
--trusted-root), and then every file of the model against the digests the
signature lists, serialized as it says (by files or by shards, SHA-256).

A changed, missing or unsigned file is refused, as is a symbolic link when
the signature does not allow them (and, when it does, one that leaves the
folder). Paths are left out when the signature lists them as ignored, when
--ignore-paths names them (relative to the current folder, inside the
model), and, as model_signing verify does, the signature file itself and
the git paths (.git, .gitattributes, .github, .gitignore) unless
--ignore-git-paths=false. Nothing is fetched.

Exit 0 when the model verifies, 1 when it does not, 2 for bad input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerifyModel(cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.signature, "signature", "", "the model's signature (a Sigstore bundle, model.sig)")
	fl.StringArrayVar(&f.ignore, "ignore-paths", nil, "a path inside the model to leave out (repeatable)")
	fl.BoolVar(&f.ignoreGitPaths, "ignore-git-paths", true, "leave out .git, .gitattributes, .github and .gitignore unless the signature lists them")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
	f.check.register(cmd)
	_ = cmd.Flags().MarkHidden("type")
	return cmd
}

func runVerifyModel(cmd *cobra.Command, f verifyModelFlags, model string) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
	if f.signature == "" {
		return errors.New("--signature: the model's signature is required")
	}
	if f.check.predType != "" {
		return fmt.Errorf("--type: a model signature's type is always %s", oms.PredicateType)
	}
	signer, opts, err := f.check.build(cmd.Context())
	if err != nil {
		return err
	}
	raw, err := readfile.Read(f.signature, attest.MaxBundleSize)
	if err != nil {
		return fmt.Errorf("--signature: %w", err)
	}
	ignore, err := modelIgnorePaths(model, f.signature, f.ignore)
	if err != nil {
		return err
	}
	vo := oms.VerifyOptions{IgnorePaths: ignore, IncludeGitPaths: !f.ignoreGitPaths}
	res, verr := oms.Verify(cmd.Context(), model, raw, signer, opts, vo)
	var passed map[string]any
	if verr == nil {
		passed = map[string]any{
			"signer": signerName(signer), "model": res.ModelName, "digest": "sha256:" + res.Digest,
			"method": res.Serialization.Method, "resources": res.Resources,
		}
	}
	return reportOne(cmd, f.output, model, signatureSource{path: f.signature, format: "bundle"}, verr, passed, func() string {
		return fmt.Sprintf("model %q (%d %s, %s) signed by %s", res.ModelName, res.Resources, res.Serialization.Method, res.Serialization.HashType, signerName(signer))
	})
}

// modelIgnorePaths turns --ignore-paths (relative to the current folder,
// or absolute) into paths relative to the model folder, as model_signing's
// CLI does, and adds the signature file when it lies in the folder. A
// model that is one file has nothing to ignore.
func modelIgnorePaths(model, signature string, paths []string) ([]string, error) {
	fi, err := os.Stat(model)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil
	}
	root, err := realPath(model)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		rel, ok, err := under(root, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("--ignore-paths %q: not inside the model folder %q", p, model)
		}
		out = append(out, rel)
	}
	if rel, ok, err := under(root, signature); err == nil && ok {
		out = append(out, rel)
	}
	return out, nil
}

// under gives p relative to the folder root (both with links resolved),
// and whether it lies strictly inside it.
func under(root, p string) (string, bool, error) {
	abs, err := realPath(p)
	if err != nil {
		return "", false, err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false, nil
	}
	return filepath.ToSlash(rel), true, nil
}

// realPath is p absolute, with symbolic links resolved as far as it
// exists (an ignore path need not exist).
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	dir, err := realPath(filepath.Dir(abs))
	if err != nil || dir == abs {
		return abs, err
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}
