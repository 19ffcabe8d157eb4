package digest

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/internal/safetext"
)

// Errors returned by this package. Callers match them with errors.Is.
var (
	// ErrMalformed means a digest string is not of a form this package knows.
	ErrMalformed = errors.New("malformed digest")
	// ErrMismatch means content does not have the digest it was expected to have.
	ErrMismatch = errors.New("digest mismatch")
	// ErrUnsupportedFile means a tree holds something other than regular
	// files, directories and in-tree symbolic links (a device, a socket, ...).
	ErrUnsupportedFile = readfile.ErrNotRegular
	// ErrTooManyFiles means a tree holds more files than MaxTreeFiles.
	ErrTooManyFiles = errors.New("too many files in tree")
	// ErrTooLarge means content is larger than the caller's limit.
	ErrTooLarge = readfile.ErrTooLarge
)

// MaxTreeFiles bounds how many files Tree will hash, so that a hostile
// directory cannot make a digest run without end.
const MaxTreeFiles = 200_000

// Algorithm names a digest algorithm as it is written before the colon.
type Algorithm string

// Known algorithms.
const (
	SHA256 Algorithm = "sha256"
	SHA512 Algorithm = "sha512"
	// H1 is dirhash's tree digest; its value is base64, not hex.
	H1 Algorithm = "h1"
)

// Digest is a parsed "<algorithm>:<value>" string. The zero value is invalid
// and prints as the empty string; use Parse or a constructor to get one.
type Digest struct {
	alg   Algorithm
	value string // lower-case hex for SHA-2, base64 for h1
}

// Parse parses "sha256:<64 hex>", "sha512:<128 hex>" or "h1:<base64 of 32 bytes>".
// Hex must be lower case, as OCI and in-toto write it.
func Parse(s string) (Digest, error) {
	alg, value, ok := strings.Cut(s, ":")
	if !ok {
		return Digest{}, fmt.Errorf("%w: %q has no algorithm prefix", ErrMalformed, safetext.Clip(s, 80))
	}
	d := Digest{alg: Algorithm(alg), value: value}
	if err := d.validate(); err != nil {
		return Digest{}, fmt.Errorf("%w: %q: %w", ErrMalformed, safetext.Clip(s, 80), err)
	}
	return d, nil
}

// MustParse is Parse for constants in tests and examples; it panics on error.
func MustParse(s string) Digest {
	d, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

func (d Digest) validate() error {
	switch d.alg {
	case SHA256, SHA512:
		want := sha256.Size * 2
		if d.alg == SHA512 {
			want = sha512.Size * 2
		}
		if len(d.value) != want {
			return fmt.Errorf("want %d hex characters, have %d", want, len(d.value))
		}
		for _, c := range d.value {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return errors.New("value is not lower-case hex")
			}
		}
		return nil
	case H1:
		raw, err := base64.StdEncoding.Strict().DecodeString(d.value)
		if err != nil || len(raw) != sha256.Size {
			return errors.New("value is not base64 of 32 bytes")
		}
		return nil
	default:
		return fmt.Errorf("unknown algorithm %q", safetext.Clip(string(d.alg), 80))
	}
}

// Algorithm reports the digest's algorithm.
func (d Digest) Algorithm() Algorithm { return d.alg }

// Value is the part after the colon: hex for SHA-2, base64 for h1.
func (d Digest) Value() string { return d.value }

// Hex is the digest's raw sum in lower-case hex, for every algorithm (for h1,
// the hex of the base64-decoded sum).
func (d Digest) Hex() string {
	if d.alg == H1 {
		raw, _ := base64.StdEncoding.DecodeString(d.value)
		return hex.EncodeToString(raw)
	}
	return d.value
}

// IsZero reports whether d is the zero Digest.
func (d Digest) IsZero() bool { return d.alg == "" }

// String returns "<algorithm>:<value>", or "" for the zero Digest.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return string(d.alg) + ":" + d.value
}

// Equal reports whether d and o are the same algorithm and value.
func (d Digest) Equal(o Digest) bool { return d == o }

// MarshalText implements encoding.TextMarshaler.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with Parse.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

var _ json.Marshaler = Digest{}

// MarshalJSON writes the digest as a JSON string.
func (d Digest) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON parses a JSON string with Parse.
func (d *Digest) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: not a JSON string", ErrMalformed)
	}
	return d.UnmarshalText([]byte(s))
}

// Verify returns nil when d equals want, and otherwise an error wrapping
// ErrMismatch that names both.
func (d Digest) Verify(want Digest) error {
	if d.Equal(want) {
		return nil
	}
	return &MismatchError{Expected: want, Actual: d}
}

// MismatchError reports the expected and the actual digest of some content.
type MismatchError struct {
	Expected, Actual Digest
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("digest mismatch: expected %s, actual %s", e.Expected, e.Actual)
}

// Unwrap makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// FileDigests holds the SHA-256 and SHA-512 of one stream, and its size.
type FileDigests struct {
	SHA256 Digest
	SHA512 Digest
	Size   int64
}

// Reader hashes everything r yields with SHA-256 and SHA-512 in one pass.
func Reader(r io.Reader) (FileDigests, error) {
	h256, h512 := sha256.New(), sha512.New()
	n, err := io.Copy(io.MultiWriter(h256, h512), r)
	if err != nil {
		return FileDigests{}, err
	}
	return FileDigests{SHA256: sum(SHA256, h256), SHA512: sum(SHA512, h512), Size: n}, nil
}

// File hashes the regular file at name in root. The path is resolved inside
// root, so neither ".." nor a symbolic link can lead it out.
func File(root *os.Root, name string) (FileDigests, error) {
	f, err := openRegular(root, name)
	if err != nil {
		return FileDigests{}, err
	}
	defer f.Close()
	d, err := Reader(f)
	if err != nil {
		return FileDigests{}, fmt.Errorf("reading %q: %w", name, err)
	}
	return d, nil
}

// openRegular opens name in root for reading, only a regular file, without
// blocking (see package readfile).
func openRegular(root *os.Root, name string) (*os.File, error) {
	return readfile.OpenIn(root, name)
}

// Tree computes the h1 tree digest (see the package doc) of the directory dir
// in root. Every file is opened through a root at dir, so a symbolic link
// that points out of dir is an error, not a silent read of another file.
func Tree(root *os.Root, dir string) (Digest, error) {
	sub, err := root.OpenRoot(dir)
	if err != nil {
		return Digest{}, fmt.Errorf("hashing tree %q: %w", dir, err)
	}
	defer sub.Close()
	files, _, err := treeFiles(sub)
	if err != nil {
		return Digest{}, fmt.Errorf("hashing tree %q: %w", dir, err)
	}
	h1, err := hash1(sub, files, readSum)
	if err != nil {
		return Digest{}, fmt.Errorf("hashing tree %q: %w", dir, err)
	}
	return h1, nil
}

// summed is the SHA-256 (hex) a file got under the first name it was
// reached by.
type summed struct{ name, sum string }

// summer returns the SHA-256 (hex) of the regular file f, opened as name,
// whose stat is fi. When the same file was already summed under another
// name (a link to it), prev is that name and sum; otherwise prev is nil.
type summer func(name string, f *os.File, fi fs.FileInfo, prev *summed) (string, error)

// readSum is Tree's summer: it reads each file once, whatever the number of
// names it has.
func readSum(name string, f *os.File, _ fs.FileInfo, prev *summed) (string, error) {
	if prev != nil {
		return prev.sum, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %q: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hash1 is dirhash.Hash1 (the SHA-256 of the lines "<sha256 hex>  <name>\n"
// of the sorted files, base64), with each file's sum from sum. It opens
// every file as a regular file and tells sum when a file reached by several
// names (links to it) was seen before, so that Tree can read it once and
// links cannot multiply the bytes hashed beyond what is on disk.
func hash1(root *os.Root, files []string, sum summer) (Digest, error) {
	seen := map[fileID]summed{}
	summary := sha256.New()
	for _, name := range files {
		if strings.ContainsRune(name, '\n') {
			return Digest{}, fmt.Errorf("%q: %w: a file name with a newline", name, ErrUnsupportedFile)
		}
		s, err := sumFile(root, name, seen, sum)
		if err != nil {
			return Digest{}, err
		}
		fmt.Fprintf(summary, "%s  %s\n", s, name)
	}
	return Digest{alg: H1, value: base64.StdEncoding.EncodeToString(summary.Sum(nil))}, nil
}

// sumFile opens name in root and sums it with sum, recording the result in
// seen under the file's identity.
func sumFile(root *os.Root, name string, seen map[fileID]summed, sum summer) (string, error) {
	f, err := openRegular(root, name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	id, known := idOf(fi)
	var prev *summed
	if p, ok := seen[id]; known && ok {
		prev = &p
	}
	s, err := sum(name, f, fi, prev)
	if err != nil {
		return "", err
	}
	if known && prev == nil {
		seen[id] = summed{name: name, sum: s}
	}
	return s, nil
}

// fileID is a file's identity on its file system.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}

// treeFiles lists the regular files in root (following links to files that
// stay in root), slash-separated, sorted, and the directories below root in
// walk order (a parent before its children).
func treeFiles(root *os.Root) (files, dirs []string, err error) {
	err = fs.WalkDir(root.FS(), ".", func(name string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case de.IsDir():
			if name != "." {
				dirs = append(dirs, name)
			}
			return nil
		case de.Type().IsRegular():
		case de.Type()&fs.ModeSymlink != 0:
			// Stat follows the link inside root; a link out of root fails here.
			fi, err := root.Stat(name)
			if err != nil {
				return fmt.Errorf("symbolic link %q: %w", name, err)
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("symbolic link %q: %w: points to a %s", name, ErrUnsupportedFile, readfile.Kind(fi.Mode()))
			}
		default:
			return fmt.Errorf("%q: %w: %s", name, ErrUnsupportedFile, readfile.Kind(de.Type()))
		}
		if len(files) >= MaxTreeFiles {
			return fmt.Errorf("%w: more than %d", ErrTooManyFiles, MaxTreeFiles)
		}
		files = append(files, name)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(files)
	return files, dirs, nil
}

func sum(alg Algorithm, h hash.Hash) Digest {
	return Digest{alg: alg, value: hex.EncodeToString(h.Sum(nil))}
}

// FromBytes returns the SHA-256 digest of b.
func FromBytes(b []byte) Digest {
	s := sha256.Sum256(b)
	return Digest{alg: SHA256, value: hex.EncodeToString(s[:])}
}
