// Package verifier runs trustgate's verification pipelines end to end, one
// library call each, for the CLI, the admission webhook, the GitHub Action
// and the gateway: a whole deployment against its signed policy
// (Deployment), the attestations stored beside an image (Image), and one
// attestation bundle for one artifact (Attestation). It reads the files and
// registries (through stack, gather and pin) and hands what it measured to
// the pure packages, verify and bundle, which decide.
package verifier

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/gather"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verify"

	"github.com/trustgate/trustgate/internal/readfile"
)

// ErrDenied wraps every error that means "verified, and refused": a policy
// that does not load (unsigned, untrusted, tampered, expired, for another
// deployment, rolled back), a component that cannot be measured (a blob
// that does not match its digest, a FIFO where a file should be), an
// attestation that does not verify. Any other error is bad input.
var ErrDenied = errors.New("denied")

// Config is one deployment check. Stack, Policy and a Trust signer are
// required; every other field has the default its comment gives.
type Config struct {
	// Stack is the path of the stack manifest.
	Stack string
	// Policy is the path of the policy.
	Policy string
	// PolicyBundle is the path of the policy's bundle; empty means
	// Policy + ".bundle.json".
	PolicyBundle string
	// Trust is who may sign the policy (keys, keyless identities) and the
	// Sigstore trust material that keyless signatures, of the policy and
	// of components, are checked against.
	Trust policy.TrustRoot
	// TrustedRoot, when Trust.Material is nil, gives the trust material
	// the first time it is needed: for a keyless identity in Trust, or a
	// keyless signer in the policy. nil means there is none, and keyless
	// signatures do not verify. A deployment with keys alone never calls
	// it (never reaches a TUF repository, say).
	TrustedRoot func(context.Context) (root.TrustedMaterial, error)
	// Bundles are attestation bundle files to consider, beside those
	// stored with the stack's registry images.
	Bundles []string
	// StatePath is the file that remembers the last policy accepted for
	// each deployment; empty means DefaultStatePath().
	StatePath string
	// Registry is how registries are reached.
	Registry pin.Registry
	// Now is the time of the check; zero means time.Now().
	Now time.Time
}

// Result is a deployment check: the report, and what it was made of.
type Result struct {
	verify.Report
	Stack      *stack.Stack
	Policy     *policy.Policy
	Deployment verify.Deployment
}

// DefaultStatePath is where a verifier remembers the policies it accepted:
// trustgate/policy-state.json under $XDG_STATE_HOME, or ~/.local/state.
func DefaultStatePath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "trustgate", "policy-state.json"), nil
}

// Deployment checks the deployment cfg.Stack describes against its signed
// policy, in this order: load the manifest; load the policy with
// policy.LoadSigned for the manifest's deployment; measure every component
// from its bytes (gather.Stack); read the bundles given and those stored
// beside the registry images (at the digests just pinned); evaluate
// (verify.Check). A report that denies is a Result, not an error; an error
// wraps ErrDenied when the policy or the measurement refused the
// deployment before a report could be made.
func Deployment(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Stack == "" || cfg.Policy == "" {
		return nil, errors.New("a deployment check needs a stack manifest and a policy")
	}
	if len(cfg.Trust.Keys) == 0 && len(cfg.Trust.Identities) == 0 {
		return nil, errors.New("no policy trust root: give a key or a keyless identity that may sign the policy")
	}
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	s, err := stack.Load(cfg.Stack)
	if err != nil {
		return nil, err
	}
	if len(cfg.Trust.Identities) > 0 {
		if err := cfg.material(ctx); err != nil {
			return nil, err
		}
	}
	p, err := loadPolicy(cfg, s.Metadata.Name, now)
	if err != nil {
		return nil, err
	}
	if hasKeyless(p) {
		if err := cfg.material(ctx); err != nil {
			return nil, err
		}
	}
	m, err := gather.Stack(ctx, s, cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("%w: the deployment cannot be measured: %w", ErrDenied, err)
	}
	evidence, err := gather.Files(cfg.Bundles...)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	attached, err := gather.Attached(ctx, m, cfg.Registry)
	if err != nil {
		return nil, err
	}
	d := verify.Deployment{
		Policy: p, Material: cfg.Trust.Material, Manifest: m.Manifest,
		Components: m.Components, Providers: m.Providers,
		Evidence: append(evidence, attached...), Now: now,
	}
	return &Result{Report: verify.Check(d), Stack: s, Policy: p, Deployment: d}, nil
}

// material fills in cfg.Trust.Material from cfg.TrustedRoot, once.
func (cfg *Config) material(ctx context.Context) error {
	if cfg.Trust.Material != nil || cfg.TrustedRoot == nil {
		return nil
	}
	m, err := cfg.TrustedRoot(ctx)
	if err != nil {
		return err
	}
	cfg.Trust.Material = m
	return nil
}

// hasKeyless reports whether a policy names a keyless signer.
func hasKeyless(p *policy.Policy) bool {
	for _, s := range p.Signers {
		if s.Keyless != nil {
			return true
		}
	}
	return false
}

// loadPolicy loads cfg's policy for deployment, with the state file cfg
// names or the default one.
func loadPolicy(cfg Config, deployment string, now time.Time) (*policy.Policy, error) {
	statePath := cfg.StatePath
	if statePath == "" {
		var err error
		if statePath, err = DefaultStatePath(); err != nil {
			return nil, err
		}
	}
	return Policy(cfg.Policy, cfg.PolicyBundle, cfg.Trust, deployment, statePath, now)
}

// Policy reads the policy at path and its bundle (bundlePath; empty means
// path + ".bundle.json", and a missing bundle is an unsigned policy) and
// loads it for the deployment called deployment with policy.LoadSigned,
// the rollback state kept in statePath. A refusal wraps ErrDenied.
func Policy(path, bundlePath string, trust policy.TrustRoot, deployment, statePath string, now time.Time) (*policy.Policy, error) {
	data, err := readfile.Read(path, policy.MaxPolicySize)
	if err != nil {
		return nil, err
	}
	if bundlePath == "" {
		bundlePath = path + ".bundle.json"
	}
	raw, err := readfile.Read(bundlePath, attest.MaxBundleSize)
	if errors.Is(err, os.ErrNotExist) {
		raw, err = nil, nil // LoadSigned says ErrUnsigned
	}
	if err != nil {
		return nil, err
	}
	p, err := policy.LoadSigned(path, data, raw, trust, deployment, &policy.State{Path: statePath}, now)
	if err != nil {
		return nil, fmt.Errorf("%w: policy %s: %w", ErrDenied, path, err)
	}
	return p, nil
}

// ImageConfig says who must have signed an image's attestations and
// signatures, and how to reach its registry.
type ImageConfig struct {
	Signer   bundle.Signer
	Options  bundle.Options
	Registry pin.Registry
}

// ImageResult is what became of each attestation and signature stored
// beside an image.
type ImageResult struct {
	// Image is the reference resolved to the digest it has now; every
	// attestation and signature is verified for that digest.
	Image        name.Digest
	Attestations []ImageAttestation
}

// Passed reports whether at least one attestation or signature verified
// (of the required predicate type, when one is required: a signature then
// never counts).
func (r *ImageResult) Passed() bool {
	for _, a := range r.Attestations {
		if a.Err == nil {
			return true
		}
	}
	return false
}

// ImageAttestation is one attestation or cosign signature stored beside an
// image: where it was found, and its verified result or why it did not
// verify.
type ImageAttestation struct {
	Source string // attest.SourceReferrer, attest.SourceTag or attest.SourceSigTag
	Digest string // the referrer manifest's digest, or the tag layer's
	// Kind is attest.KindAttestation or attest.KindSignature: what the
	// entry verified as or, when it did not, what it claims to be.
	Kind string
	// Format is how the entry is stored: attest.FormatBundle or
	// attest.FormatCosign (cosign's annotations, made into a bundle).
	Format string
	// Result is the verified attestation (nil for a signature).
	Result *bundle.Result
	// Signature is the verified cosign signature (nil for an
	// attestation): who signed the image's digest. It attests nothing.
	Signature *bundle.MessageResult
	Err       error
}

// Image resolves ref once, finds the attestations and signatures stored
// beside the digest it resolved to (OCI 1.1 referrers, then the cosign
// tags .att and .sig), and verifies each for that digest as cfg requires.
// The image passes when one verifies (ImageResult.Passed). A cosign
// signature (cosign sign: a .sig layer, or a referrer bundle of type
// attest.PredicateCosignSign) verifies as the signer's signature of the
// image's digest; with cfg.Options.PredicateType set it verifies, and does
// not count (bundle.ErrNotAttestation).
func Image(ctx context.Context, ref string, cfg ImageConfig) (*ImageResult, error) {
	img, _, err := attest.ImageSubject(ctx, ref, cfg.Registry)
	if err != nil {
		return nil, err
	}
	as, err := attest.Attachments(ctx, img, cfg.Registry)
	if err != nil {
		return nil, err
	}
	out := &ImageResult{Image: img}
	art := bundle.Artifact{Name: img.String(), SHA256: strings.TrimPrefix(img.DigestStr(), "sha256:")}
	for _, a := range as {
		out.Attestations = append(out.Attestations, imageEntry(a, art, cfg))
	}
	return out, nil
}

// imageEntry verifies one entry of an image's listing for art. What it
// verified as comes from what verified (the .sig payload, the statement's
// predicate type), never from the listing's label.
func imageEntry(a attest.Attachment, art bundle.Artifact, cfg ImageConfig) ImageAttestation {
	ia := ImageAttestation{Source: a.Source, Digest: a.Digest, Kind: a.Kind, Format: a.Format}
	switch {
	case a.Payload != nil:
		ia.Kind = attest.KindSignature
		ia.Signature, ia.Err = bundle.VerifyImageSignature(a.Bundle, a.Payload, art, cfg.Signer, cfg.Options)
	default:
		res, err := bundle.Verify(a.Bundle, art, cfg.Signer, cfg.Options)
		ia.Err = err
		switch {
		case res != nil && res.PredicateType == attest.PredicateCosignSign:
			ia.Kind = attest.KindSignature
			ia.Signature = &bundle.MessageResult{Signer: res.Signer, SignerID: res.SignerID, Algorithm: "sha256", Digest: art.SHA256, Times: res.Times}
		case res != nil:
			ia.Kind, ia.Result = attest.KindAttestation, res
		case errors.Is(err, bundle.ErrNotAttestation):
			ia.Kind = attest.KindSignature
		}
	}
	return ia
}

// Artifact is what one attestation is checked for: target is a file (by
// its SHA-256), a folder (by its h1 tree digest, in-toto's dirHash), or
// sha256:DIGEST.
func Artifact(target string) (bundle.Artifact, error) {
	if strings.HasPrefix(target, "sha256:") {
		d, err := digest.Parse(target)
		if err != nil {
			return bundle.Artifact{}, fmt.Errorf("%q is not sha256:<64 lower-case hex>", target)
		}
		return bundle.Artifact{Name: target, SHA256: d.Hex()}, nil
	}
	sub, err := attest.FileSubject(target)
	if err != nil {
		return bundle.Artifact{}, err
	}
	return bundle.Artifact{Name: sub.Name, SHA256: sub.Digest["sha256"], DirHash: sub.Digest["dirHash"]}, nil
}

// Attestation verifies the bundle file at bundlePath for target (see
// Artifact), signed as s and opts require. A refusal wraps ErrDenied and
// the bundle package's error for its kind; any other error is bad input.
func Attestation(bundlePath, target string, s bundle.Signer, opts bundle.Options) (*bundle.Result, error) {
	return AttestationFrom(SignatureFiles{Bundle: bundlePath}, target, s, opts)
}

// AttestationFrom is Attestation for a signature in any of the forms
// SignatureFiles names.
func AttestationFrom(files SignatureFiles, target string, s bundle.Signer, opts bundle.Options) (*bundle.Result, error) {
	art, raw, err := readOne(files, target)
	if err != nil {
		return nil, err
	}
	res, err := bundle.Verify(raw, art, s, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	return res, nil
}

// Blob verifies the bundle file at bundlePath, holding a message signature
// (cosign sign-blob --bundle), over target (a file, or sha256:DIGEST),
// signed as s and opts require. A refusal wraps ErrDenied and the bundle
// package's error for its kind; any other error is bad input.
func Blob(bundlePath, target string, s bundle.Signer, opts bundle.Options) (*bundle.MessageResult, error) {
	return BlobFrom(SignatureFiles{Bundle: bundlePath}, target, s, opts)
}

// BlobFrom is Blob for a signature in any of the forms SignatureFiles
// names.
func BlobFrom(files SignatureFiles, target string, s bundle.Signer, opts bundle.Options) (*bundle.MessageResult, error) {
	art, raw, err := readOne(files, target)
	if err != nil {
		return nil, err
	}
	res, err := bundle.VerifyMessage(raw, art, s, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	return res, nil
}

// SignatureFiles are where one signature over one artifact is read from:
// a bundle file, either a Sigstore bundle or cosign v2's older blob bundle
// (base64Signature, cert, rekorBundle; told apart by its content), or
// cosign's detached files. Whatever the form, it becomes a Sigstore bundle
// (attest.CosignSignature) and goes through the same verifier.
type SignatureFiles struct {
	Bundle string
	// Signature, Certificate and Chain are cosign's detached files
	// (--output-signature, --output-certificate, and the issuers' PEM),
	// read when Bundle is empty. Detached files carry no log entry.
	Signature, Certificate, Chain string
}

// readOne measures target (see Artifact) and reads the signature files,
// each within its size bound, as one Sigstore bundle. cosign's older forms
// that do not parse are refusals (ErrDenied), as a malformed bundle is.
func readOne(files SignatureFiles, target string) (bundle.Artifact, []byte, error) {
	art, err := Artifact(target)
	if err != nil {
		return art, nil, err
	}
	var cs *attest.CosignSignature
	if files.Bundle != "" {
		if files.Signature != "" || files.Certificate != "" || files.Chain != "" {
			return art, nil, errors.New("give a bundle, or cosign's detached signature files, not both")
		}
		raw, err := readfile.Read(files.Bundle, attest.MaxBundleSize)
		if err != nil {
			return art, nil, fmt.Errorf("bundle: %w", err)
		}
		if !attest.IsCosignBlobBundle(raw) {
			return art, raw, nil
		}
		if cs, err = attest.ParseCosignBlobBundle(raw); err != nil {
			return art, nil, fmt.Errorf("%w: %w", ErrDenied, err)
		}
	} else {
		if files.Signature == "" {
			return art, nil, errors.New("no signature: give a bundle or a signature file")
		}
		var parts [3][]byte
		for i, p := range []string{files.Signature, files.Certificate, files.Chain} {
			if p == "" {
				continue
			}
			if parts[i], err = readfile.Read(p, attest.MaxBundleSize); err != nil {
				return art, nil, err
			}
		}
		if cs, err = attest.ParseCosignDetached(parts[0], parts[1], parts[2]); err != nil {
			return art, nil, fmt.Errorf("%w: %w", ErrDenied, err)
		}
	}
	sum, _ := hex.DecodeString(art.SHA256) // a folder has none: then only an attestation can verify
	raw, err := cs.BundleJSON(sum)
	if err != nil {
		return art, nil, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	return art, raw, nil
}
