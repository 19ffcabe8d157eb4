package oms

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
)

// VerifyOptions are what the verifier (not the signature) adds to the
// check. The zero value ignores GitPaths, as model_signing verify does.
type VerifyOptions struct {
	// IgnorePaths are more paths, relative to the model folder (POSIX, no
	// ".."), to leave out, beside those the signature lists: the
	// signature file when it lies in the folder, say. A file a signature
	// lists and an ignore path covers is reported missing, as the
	// reference does.
	IgnorePaths []string
	// IncludeGitPaths checks GitPaths too (model_signing's
	// --no-ignore-git-paths). Without it, a git path is still checked when
	// the signature lists a file under it.
	IncludeGitPaths bool
	// Workers is how many files or shards are hashed at once; 0 means
	// GOMAXPROCS.
	Workers int
}

// Result is a verified model signature.
type Result struct {
	// Bundle is what the bundle verifier says: who signed, when, and the
	// verified statement.
	Bundle *bundle.Result
	// ModelName is the model's name as signed (informative only: a
	// renamed folder keeps its signature).
	ModelName string
	// Digest is the model's subject digest (SHA-256, hex), which the
	// folder was serialized to and the signature names.
	Digest string
	// Serialization is how the model was serialized, as signed.
	Serialization Serialization
	// Resources is how many files (or shards) were checked.
	Resources int
	// Ignored are the paths that were left out, from the signature and
	// from the options.
	Ignored []string
}

// Verify verifies the OMS signature bundleRaw (a Sigstore bundle) of the
// model at modelPath (a folder, or one file), signed by signer as opts
// require. The bundle verifier checks the signature first; only then is
// the predicate read, the folder serialized as it says, and every file
// compared: a changed, missing or unlisted file, a symbolic link the
// signature does not allow, and any parameter this package does not
// implement are refused. Last, the folder's digest must be the
// statement's subject. opts.PredicateType may be empty or PredicateType.
// Key signatures of model_signing v0.3 to v1.0.1 are read despite their
// misplaced public key (LegacyKeyBundle says how).
func Verify(ctx context.Context, modelPath string, bundleRaw []byte, signer bundle.Signer, opts bundle.Options, vo VerifyOptions) (*Result, error) {
	if opts.PredicateType != "" && opts.PredicateType != PredicateType {
		return nil, fmt.Errorf("%w: an OMS signature has predicate type %s, and %q was required", bundle.ErrPredicateType, PredicateType, clip(opts.PredicateType))
	}
	b, err := bundle.Parse(LegacyKeyBundle(bundleRaw))
	if err != nil {
		return nil, err
	}
	verified, err := bundle.Unbound(b, signer, opts)
	if err != nil {
		return nil, err
	}
	// From here on the statement is the signer's.
	want, err := signedOMS(verified)
	if err != nil {
		return nil, err
	}
	ignored, err := verifyIgnores(want, vo)
	if err != nil {
		return nil, err
	}
	got, err := Serialize(ctx, modelPath, Options{
		Method: want.Serialization.Method, HashType: want.Serialization.HashType, ShardSize: want.Serialization.ShardSize,
		AllowSymlinks: want.Serialization.AllowSymlinks, IgnorePaths: ignored, Workers: vo.Workers,
	})
	if err != nil {
		return nil, err
	}
	if err := compare(want, got); err != nil {
		return nil, err
	}
	digest := got.Digest()
	if err := bundle.Bind(verified.Statement, bundle.Artifact{Name: got.ModelName, SHA256: digest}); err != nil {
		return nil, err
	}
	return &Result{Bundle: verified, ModelName: want.ModelName, Digest: digest, Serialization: want.Serialization, Resources: len(got.Resources), Ignored: ignored}, nil
}

// signedOMS reads the verified statement as an OMS signature: an in-toto
// Statement v1 of PredicateType.
func signedOMS(v *bundle.Result) (*Manifest, error) {
	if v.Statement.Type != attest.StatementType {
		return nil, fmt.Errorf("%w: statement type %q, want %s", ErrPredicate, clip(v.Statement.Type), attest.StatementType)
	}
	switch v.PredicateType {
	case PredicateType:
	case predicateTypeV01:
		return nil, fmt.Errorf("%w: predicate type %s (model_signing v0.2, which records no serialization)", ErrUnsupported, predicateTypeV01)
	default:
		return nil, fmt.Errorf("%w: %q, want %s", bundle.ErrPredicateType, clip(v.PredicateType), PredicateType)
	}
	return signedManifest(v.Statement)
}

// verifyIgnores is what verification leaves out: the signature's ignore
// paths, the caller's, and GitPaths unless the caller checks them or the
// signature lists a file under one.
func verifyIgnores(want *Manifest, vo VerifyOptions) ([]string, error) {
	out := slices.Clone(want.Serialization.IgnorePaths)
	for _, p := range vo.IgnorePaths {
		c, err := cleanIgnorePath(p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if vo.IncludeGitPaths {
		return out, nil
	}
	for _, g := range GitPaths {
		if !listsUnder(want, g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// listsUnder reports whether the manifest lists a file at or under dir.
func listsUnder(m *Manifest, dir string) bool {
	for _, r := range m.Resources {
		if p := resourcePath(r.Name, m.Serialization.Method); p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// compare checks the folder's resources (got) against the signed ones
// (want): the same names with the same digests, in the same order.
func compare(want, got *Manifest) error {
	d := &DiffError{Model: want.ModelName}
	signed := make(map[string]Resource, len(want.Resources))
	for _, r := range want.Resources {
		signed[r.Name] = r
	}
	found := make(map[string]bool, len(got.Resources))
	for _, r := range got.Resources {
		found[r.Name] = true
		w, ok := signed[r.Name]
		switch {
		case !ok:
			d.Extra = append(d.Extra, r)
		case w.Digest != r.Digest:
			d.Changed = append(d.Changed, Change{Name: r.Name, Want: w.Algorithm + ":" + w.Digest, Got: r.Algorithm + ":" + r.Digest})
		}
	}
	for _, r := range want.Resources {
		if !found[r.Name] {
			d.Missing = append(d.Missing, r)
		}
	}
	if len(d.Changed)+len(d.Missing)+len(d.Extra) > 0 {
		return d
	}
	// Same resources: the subject digest differs only if the signature
	// lists them in another order than the reference's.
	if got.Digest() != want.Digest() {
		return fmt.Errorf("%w: its resources are not in the reference's order (by path, then shard offsets)", ErrPredicate)
	}
	return nil
}

// Change is a resource whose digest differs: digests as "algorithm:hex".
type Change struct {
	Name, Want, Got string
}

// DiffError is how a model folder differs from its signature. It matches
// ErrMismatch when a digest changed, ErrMissing when a signed resource is
// not in the folder, and ErrExtra when the folder holds an unsigned one.
type DiffError struct {
	// Model is the model's name as signed.
	Model   string
	Changed []Change
	Missing []Resource // signed, not found
	Extra   []Resource // found, not signed
}

// Is reports which kinds of difference e holds.
func (e *DiffError) Is(target error) bool {
	switch target {
	case ErrMismatch:
		return len(e.Changed) > 0
	case ErrMissing:
		return len(e.Missing) > 0
	case ErrExtra:
		return len(e.Extra) > 0
	}
	return false
}

// maxListed bounds how many resources of each kind a message names.
const maxListed = 5

func (e *DiffError) Error() string {
	var parts []string
	if n := len(e.Changed); n > 0 {
		var l []string
		for _, c := range e.Changed[:min(n, maxListed)] {
			l = append(l, fmt.Sprintf("%q (signed %s, found %s)", c.Name, c.Want, c.Got))
		}
		parts = append(parts, fmt.Sprintf("%s: %d changed: %s%s", ErrMismatch, n, strings.Join(l, ", "), more(n)))
	}
	if n := len(e.Missing); n > 0 {
		parts = append(parts, fmt.Sprintf("%s: %d not found: %s%s", ErrMissing, n, e.names(e.Missing, e.Extra), more(n)))
	}
	if n := len(e.Extra); n > 0 {
		parts = append(parts, fmt.Sprintf("%s: %d not signed and not ignored: %s%s", ErrExtra, n, e.names(e.Extra, e.Missing), more(n)))
	}
	return fmt.Sprintf("model folder does not match the signature of model %q: %s", clip(e.Model), strings.Join(parts, "; "))
}

// names lists the first resources of rs, each noting a resource of
// others with the same digest: a renamed file.
func (e *DiffError) names(rs, others []Resource) string {
	var l []string
	for _, r := range rs[:min(len(rs), maxListed)] {
		s := fmt.Sprintf("%q", r.Name)
		for _, o := range others {
			if o.Digest == r.Digest {
				s += fmt.Sprintf(" (same content as %q: renamed?)", o.Name)
				break
			}
		}
		l = append(l, s)
	}
	return strings.Join(l, ", ")
}

func more(n int) string {
	if n > maxListed {
		return fmt.Sprintf(" and %d more", n-maxListed)
	}
	return ""
}
