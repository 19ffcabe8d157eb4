package localmodel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/oms"
	"github.com/trustgate/trustgate/stack"

	"github.com/trustgate/trustgate/internal/readfile"
)

// Kinds of failure, matched with errors.Is.
var (
	// ErrSignature: the model's signature cannot be read as an OMS
	// signature (not a Sigstore bundle of an in-toto statement, another
	// predicate type, parameters that do not parse or that package oms
	// does not implement).
	ErrSignature = errors.New("unreadable model signature")
	// ErrNotSigned: a verified signature does not sign the model as it was
	// measured. A difference of files also matches oms.ErrMismatch,
	// oms.ErrMissing or oms.ErrExtra (an *oms.DiffError says which files).
	ErrNotSigned = errors.New("the signature does not sign the model as measured")
	// ErrChanged: the model, measured again, is not what it was.
	ErrChanged = errors.New("the model changed since it was measured")
)

// Measurement is a local model as measured.
type Measurement struct {
	// Digest is what the model is pinned by: the SHA-256 of its file, the
	// h1 tree digest of its folder or, for a model with a signature, the
	// SHA-256 that signature's subject names (sha256 over its files' or
	// shards' digests in order: what model_signing and trustgate
	// verify-model report).
	Digest digest.Digest
	// Signature is the signature's bytes, as read once; nil without one.
	// Match reads the statement verified from exactly these bytes.
	Signature []byte
	// Serialized is, for a model with a signature, the model serialized as
	// the signature says: every file's (or shard's) name and digest.
	Serialized *oms.Manifest
}

// Signed reports whether the model was measured as its signature says.
func (m *Measurement) Signed() bool { return m != nil && m.Serialized != nil }

// Measure measures the local model m of a manifest whose folder is dir
// (stack.Source.Dir): see the package doc. A model whose signature cannot
// be read is an error (ErrSignature), not a model measured without one.
func Measure(ctx context.Context, dir string, m stack.Model) (*Measurement, error) {
	if m.File == "" {
		return nil, fmt.Errorf("model %q has no file or folder", m.Name)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	name := filepath.FromSlash(m.File)
	fi, err := root.Stat(name)
	if err != nil {
		return nil, err
	}
	if m.Signature == "" {
		if fi.IsDir() {
			d, err := digest.Tree(root, name)
			return &Measurement{Digest: d}, err
		}
		fd, err := digest.File(root, name)
		return &Measurement{Digest: fd.SHA256}, err
	}
	raw, err := readfile.ReadIn(root, filepath.FromSlash(m.Signature), attest.MaxBundleSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	// model_signing v0.3 to v1.0.1 key signatures misplace the public key
	// (unsigned, and never used: the policy's key verifies); what the
	// bundle verifier reads is the rest, byte for byte.
	raw = oms.LegacyKeyBundle(raw)
	ser, res, err := readSignature(raw)
	if err != nil {
		return nil, err
	}
	man, err := oms.Serialize(ctx, filepath.Join(dir, name), oms.Options{
		Method: ser.Method, HashType: ser.HashType, ShardSize: ser.ShardSize, AllowSymlinks: ser.AllowSymlinks,
		IgnorePaths: ignorePaths(ser, res, m, fi.IsDir()),
	})
	if err != nil {
		return nil, err
	}
	d, err := digest.Parse("sha256:" + man.Digest())
	if err != nil {
		return nil, err
	}
	return &Measurement{Digest: d, Signature: raw, Serialized: man}, nil
}

// ignorePaths is what the serialization leaves out, as model_signing
// verify does: the signature's ignore paths, the signature file when it
// lies in the model's folder, and the git paths unless the signature lists
// a file under one.
func ignorePaths(ser oms.Serialization, res []oms.Resource, m stack.Model, isDir bool) []string {
	out := slices.Clone(ser.IgnorePaths)
	if !isDir {
		return out // a one-file model has nothing to leave out
	}
	file, sig := path.Clean(m.File), path.Clean(m.Signature)
	if file == "." {
		out = append(out, sig)
	} else if rel, ok := strings.CutPrefix(sig, file+"/"); ok {
		out = append(out, rel)
	}
	for _, g := range oms.GitPaths {
		if !listsUnder(res, ser.Method, g) {
			out = append(out, g)
		}
	}
	return out
}

// listsUnder reports whether a resource is the file dir or lies under it.
func listsUnder(res []oms.Resource, method, dir string) bool {
	for _, r := range res {
		if p := resourcePath(r.Name, method); p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// resourcePath is the file a resource is of: its name, without
// ":start:end" for a shard.
func resourcePath(name, method string) string {
	if method != oms.MethodShards {
		return name
	}
	for range 2 {
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			name = name[:i]
		}
	}
	return name
}

// Match reports whether st, a statement verified from the bytes of
// m.Signature, signs the model as m measured it: an OMS statement with one
// subject whose SHA-256 is m's digest, serialized the same way (method,
// hash, shard size, symbolic links), listing the same files or shards with
// the same digests in the same order. It is pure. The error wraps
// ErrNotSigned and, for files, an *oms.DiffError.
func Match(st *attest.Statement, m *Measurement) error {
	if !m.Signed() {
		return fmt.Errorf("%w: the model was measured without a signature", ErrNotSigned)
	}
	if st.Type != attest.StatementType || st.PredicateType != oms.PredicateType {
		return fmt.Errorf("%w: not an OMS statement (predicate type %s)", ErrNotSigned, oms.PredicateType)
	}
	ser, res, err := parsePredicate(st.Predicate)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotSigned, err)
	}
	got := m.Serialized.Serialization
	if ser.Method != got.Method || ser.HashType != got.HashType || ser.ShardSize != got.ShardSize || ser.AllowSymlinks != got.AllowSymlinks {
		return fmt.Errorf("%w: it serializes by %s, and the model was serialized by %s", ErrNotSigned, describe(ser), describe(got))
	}
	if d := diff(m.Serialized.ModelName, res, m.Serialized.Resources); d != nil {
		return fmt.Errorf("%w: %w", ErrNotSigned, d)
	}
	if len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != m.Digest.Hex() || m.Digest.Hex() != m.Serialized.Digest() {
		return fmt.Errorf("%w: its subject is not the model's digest %s (its files in another order?)", ErrNotSigned, m.Digest)
	}
	return nil
}

func describe(s oms.Serialization) string {
	out := s.Method + " (" + s.HashType
	if s.Method == oms.MethodShards {
		out += fmt.Sprintf(", shards of %d bytes", s.ShardSize)
	}
	if s.AllowSymlinks {
		out += ", symbolic links allowed"
	}
	return out + ")"
}

// diff is how the resources found differ from those wanted, nil when they
// are the same.
func diff(model string, want, got []oms.Resource) *oms.DiffError {
	d := &oms.DiffError{Model: model}
	wanted := make(map[string]oms.Resource, len(want))
	for _, r := range want {
		wanted[r.Name] = r
	}
	found := make(map[string]bool, len(got))
	for _, r := range got {
		found[r.Name] = true
		w, ok := wanted[r.Name]
		switch {
		case !ok:
			d.Extra = append(d.Extra, r)
		case w.Digest != r.Digest || w.Algorithm != r.Algorithm:
			d.Changed = append(d.Changed, oms.Change{Name: r.Name, Want: w.Algorithm + ":" + w.Digest, Got: r.Algorithm + ":" + r.Digest})
		}
	}
	for _, r := range want {
		if !found[r.Name] {
			d.Missing = append(d.Missing, r)
		}
	}
	if len(d.Changed)+len(d.Missing)+len(d.Extra) == 0 {
		return nil
	}
	return d
}

// Same checks that now, the model measured again, is what was measured
// (and verified) before: the same signature bytes, the same files with the
// same digests, the same digest. The error wraps ErrChanged.
func (m *Measurement) Same(now *Measurement) error {
	if !bytes.Equal(m.Signature, now.Signature) {
		return fmt.Errorf("%w: its signature file changed", ErrChanged)
	}
	if m.Signed() != now.Signed() {
		return fmt.Errorf("%w: measured another way", ErrChanged)
	}
	if m.Signed() {
		if d := diff(m.Serialized.ModelName, m.Serialized.Resources, now.Serialized.Resources); d != nil {
			return fmt.Errorf("%w: %w", ErrChanged, d)
		}
	}
	if err := now.Digest.Verify(m.Digest); err != nil {
		return fmt.Errorf("%w: %w", ErrChanged, err)
	}
	return nil
}
