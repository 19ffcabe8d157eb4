package oms

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// PredicateType is the predicate type of an OMS signature (v1.0 of the
// predicate, written by model_signing v0.3 and later).
const PredicateType = "https://model_signing/signature/v1.0"

// predicateTypeV01 is model_signing v0.2's experimental predicate, which
// names every file as a subject and records no serialization.
const predicateTypeV01 = "https://model_signing/Digests/v0.1"

// Serialization methods, as the predicate names them.
const (
	MethodFiles  = "files"  // one resource per file, named by its path
	MethodShards = "shards" // one resource per shard, named path:start:end
)

// HashSHA256 is the one hash type supported: model_signing's default.
// model_signing also writes "blake2b" and "blake3"; both are refused
// (ErrUnsupported), golang.org/x/crypto being no direct dependency here.
const HashSHA256 = "sha256"

// Defaults and limits.
const (
	// DefaultShardSize is model_signing's default shard size (1 GB).
	DefaultShardSize = 1_000_000_000
	// MaxShardSize bounds a shard size a predicate may state. It keeps
	// the size below 1e16, where Python would print it in exponent form.
	MaxShardSize = 1 << 50
	// MaxResources bounds the files a folder may hold and the resources
	// (files or shards) a manifest or a predicate may list.
	MaxResources = 1_000_000
)

// GitPaths are the paths model_signing ignores by default, when signing
// and when verifying: they belong to a git checkout, not to the model.
var GitPaths = []string{".git", ".gitattributes", ".github", ".gitignore"}

// Kinds of refusal, matched with errors.Is. Errors of the bundle verifier
// (bundle.ErrSignature, bundle.ErrUntrustedSigner, ...) pass through as
// they are.
var (
	// ErrMismatch: a file (or shard) has another digest than signed.
	ErrMismatch = errors.New("digest mismatch")
	// ErrMissing: a file (or shard) the signature lists is not in the folder.
	ErrMissing = errors.New("signed file missing")
	// ErrExtra: the folder holds a file the signature does not list and
	// no ignore path covers.
	ErrExtra = errors.New("unsigned file in the model")
	// ErrUnsupported: a serialization method, hash type, parameter or
	// predicate version this package does not implement.
	ErrUnsupported = errors.New("unsupported model signature parameter")
	// ErrPredicate: the signed statement is not a well-formed OMS
	// statement, or its resources do not hash to its subject.
	ErrPredicate = errors.New("invalid model signature predicate")
	// ErrSymlink: a symbolic link where the signature allows none, or one
	// that leaves the model folder, is absolute or dangles.
	ErrSymlink = errors.New("symbolic link refused")
	// ErrSpecialFile: a FIFO, socket, device or other non-regular file.
	ErrSpecialFile = errors.New("not a regular file or directory")
	// ErrTooMany: more files or resources than the limit.
	ErrTooMany = errors.New("too many files or resources")
	// ErrName: a file name that cannot be a resource name (not UTF-8).
	ErrName = errors.New("unusable file name")
)

// Resource is one entry of a manifest: a file or a shard, its digest
// algorithm as the reference names it ("sha256", or
// "sha256-sharded-<size>" for shards) and its digest in lower-case hex.
type Resource struct {
	Name      string
	Algorithm string
	Digest    string
}

// Serialization is how a folder was turned into resources, as the
// predicate records it. The zero value is not usable: Method and HashType
// are required, and ShardSize for MethodShards.
type Serialization struct {
	Method        string
	HashType      string
	ShardSize     int64 // MethodShards only
	AllowSymlinks bool
	// IgnorePaths are the paths (relative to the model, POSIX) that were
	// left out, in the order recorded; nil when none were.
	IgnorePaths []string
}

// Manifest is a serialized model: its name (the last element of its path;
// informative only, a renamed folder keeps its signature), how it was
// serialized, and its resources in canonical order.
type Manifest struct {
	ModelName     string
	Serialization Serialization
	Resources     []Resource
}

// Digest is the subject digest of the manifest, in hex: the SHA-256 of
// every resource's raw digest, concatenated in the manifest's order.
// Resources whose digest is not hex contribute nothing; Serialize and
// parsePredicate never make such resources.
func (m *Manifest) Digest() string {
	h := sha256.New()
	for _, r := range m.Resources {
		b, _ := hex.DecodeString(r.Digest)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// algorithmName is the resource algorithm the reference writes for a
// serialization: the hash type, with "-sharded-<size>" for shards.
func algorithmName(s Serialization) string {
	if s.Method == MethodShards {
		return s.HashType + "-sharded-" + strconv.FormatInt(s.ShardSize, 10)
	}
	return s.HashType
}

// item is a resource before it gets its name: a path, a byte range for
// shards (end 0 for whole files) and the raw digest.
type item struct {
	path       string
	start, end int64
	digest     []byte
}

// name is the item's canonical resource name: its POSIX path, with
// ":start:end" for a shard.
func (it item) name(method string) string {
	if method == MethodShards {
		return it.path + ":" + strconv.FormatInt(it.start, 10) + ":" + strconv.FormatInt(it.end, 10)
	}
	return it.path
}

// compareItems orders items as the reference's manifest sorts its keys:
// by path compared component by component (Python's PurePosixPath
// order, so "a/b" sorts before "a.txt"), then by start and end offsets.
// Byte order of UTF-8 is code point order, Python's string order.
func compareItems(a, b item) int {
	if c := comparePaths(a.path, b.path); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
}

// comparePaths compares two POSIX paths as lists of their components
// (as slices.Compare of their strings.Split would, without allocating).
func comparePaths(a, b string) int {
	for {
		ea, ra, moreA := strings.Cut(a, "/")
		eb, rb, moreB := strings.Cut(b, "/")
		if c := strings.Compare(ea, eb); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = ra, rb
	}
}

// resources names and sorts items into a manifest's resources.
func resources(items []item, s Serialization) []Resource {
	slices.SortFunc(items, compareItems)
	alg := algorithmName(s)
	out := make([]Resource, len(items))
	for i, it := range items {
		out[i] = Resource{Name: it.name(s.Method), Algorithm: alg, Digest: hex.EncodeToString(it.digest)}
	}
	return out
}
