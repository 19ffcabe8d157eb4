package pin_test

// Adversarial tests for pinning images on disk (OCI layouts and docker-save
// archives). Every case starts from a fixture that pins, breaks exactly one
// thing and asserts the specific refusal with errors.Is.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/stack"
)

// ---------------------------------------------------------------------------
// Shared helpers.

func randomImage(t testing.TB, seed, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(1024, layers, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustHash(t testing.TB, f func() (v1.Hash, error)) v1.Hash {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func sha256Hash(data []byte) v1.Hash {
	s := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// wantRefused fails unless err wraps pin.ErrImage and every one of targets,
// and r is the zero Image.
func wantRefused(t *testing.T, r pin.Image, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Resolve pinned %s, want a refusal wrapping %v", r.Digest, append([]error{pin.ErrImage}, targets...))
	}
	for _, target := range append([]error{pin.ErrImage}, targets...) {
		if !errors.Is(err, target) {
			t.Fatalf("error %q does not wrap %q", err, target)
		}
	}
	if !r.Digest.IsZero() || !r.Config.IsZero() {
		t.Fatalf("a refusal returned digests %s / %s", r.Digest, r.Config)
	}
}

// wantNot fails if err wraps any of targets.
func wantNot(t *testing.T, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if errors.Is(err, target) {
			t.Fatalf("error %q wraps %q, which it should not", err, target)
		}
	}
}

// wantMessage fails unless err's text has sub (used where pin.ErrImage is
// the only sentinel, to prove the refusal is the intended one).
func wantMessage(t *testing.T, err error, sub string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Fatalf("error %q, want one saying %q", err, sub)
	}
}

// errPathEscapes returns the error an os.Root gives for a path that leads
// out of it (os does not export it), so that tests can match it with
// errors.Is.
func errPathEscapes(t *testing.T) error {
	t.Helper()
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = root.Open("../outside")
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Err == nil || !strings.Contains(pe.Err.Error(), "escapes") {
		t.Fatalf("os.Root opening ../outside: %v", err)
	}
	return pe.Err
}

// within runs f and fails the test if it has not returned in d (a FIFO or
// a device read without care blocks for ever). unblock, if not nil, is
// called on timeout to let the stuck goroutine go.
func within(t *testing.T, d time.Duration, unblock func(), f func() (pin.Image, error)) (pin.Image, error) {
	t.Helper()
	type result struct {
		r   pin.Image
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := f()
		done <- result{r, err}
	}()
	select {
	case res := <-done:
		return res.r, res.err
	case <-time.After(d):
		if unblock != nil {
			unblock()
		}
		t.Fatalf("Resolve has not returned within %s", d)
		return pin.Image{}, nil
	}
}

// unblockFIFO opens a FIFO for writing and closes it, so that a reader
// blocked opening or reading it returns.
func unblockFIFO(p string) func() {
	return func() {
		if f, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	}
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func flipByte(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0xff
	return out
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// OCI layout fixtures.

// layoutFix is an OCI layout at dir/rel holding one image (or index).
type layoutFix struct {
	dir      string // the stack folder: Resolve's dir
	rel      string // the layout folder, relative to dir, slash-separated
	path     string // dir/rel
	manifest v1.Hash
	config   v1.Hash
	layers   []v1.Hash
}

func newLayout(t testing.TB, dir, rel string) (*layoutFix, layout.Path) {
	t.Helper()
	l := &layoutFix{dir: dir, rel: rel, path: filepath.Join(dir, filepath.FromSlash(rel))}
	p, err := layout.Write(l.path, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	return l, p
}

// writeLayout writes img as the one image of a new layout, the way the
// project writes one (internal/example.WriteLayout).
func writeLayout(t testing.TB, img v1.Image) *layoutFix {
	t.Helper()
	l, p := newLayout(t, t.TempDir(), "images/app")
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": "app:1",
	})); err != nil {
		t.Fatal(err)
	}
	l.manifest = mustHash(t, img.Digest)
	l.config = mustHash(t, img.ConfigName)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, layer := range layers {
		l.layers = append(l.layers, mustHash(t, layer.Digest))
	}
	return l
}

// writeIndexLayout writes idx as the one (index) manifest of a new layout.
func writeIndexLayout(t testing.TB, idx v1.ImageIndex) *layoutFix {
	t.Helper()
	l, p := newLayout(t, t.TempDir(), "images/multi")
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	l.manifest = mustHash(t, idx.Digest)
	return l
}

func (l *layoutFix) resolve(ctx context.Context) (pin.Image, error) {
	return pin.Resolve(ctx, l.dir, stack.Image{Name: "app", OCILayout: l.rel}, pin.Registry{})
}

func (l *layoutFix) blob(h v1.Hash) string {
	return filepath.Join(l.path, "blobs", h.Algorithm, h.Hex)
}

func (l *layoutFix) indexPath() string { return filepath.Join(l.path, "index.json") }

func (l *layoutFix) index(t testing.TB) v1.IndexManifest {
	t.Helper()
	var idx v1.IndexManifest
	if err := json.Unmarshal(readFile(t, l.indexPath()), &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

func (l *layoutFix) setIndex(t testing.TB, idx v1.IndexManifest) {
	t.Helper()
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, l.indexPath(), b)
}

// setIndexJSON writes index.json from a generic value (to write what
// v1.IndexManifest cannot: a malformed digest, say).
func (l *layoutFix) setIndexJSON(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, l.indexPath(), b)
}

// descriptor returns index.json's one descriptor as a generic map.
func (l *layoutFix) descriptor(t testing.TB) map[string]any {
	t.Helper()
	var idx map[string]any
	if err := json.Unmarshal(readFile(t, l.indexPath()), &idx); err != nil {
		t.Fatal(err)
	}
	ms := idx["manifests"].([]any)
	if len(ms) != 1 {
		t.Fatalf("fixture index.json has %d manifests", len(ms))
	}
	return ms[0].(map[string]any)
}

// setDescriptor writes index.json with d as its one descriptor.
func (l *layoutFix) setDescriptor(t testing.TB, d map[string]any) {
	t.Helper()
	l.setIndexJSON(t, map[string]any{"schemaVersion": 2, "mediaType": string(types.OCIImageIndex), "manifests": []any{d}})
}

func (l *layoutFix) putBlob(t testing.TB, data []byte) v1.Hash {
	t.Helper()
	h := sha256Hash(data)
	writeFile(t, l.blob(h), data)
	return h
}

// manifestDoc returns the top manifest as a generic document (numbers as
// json.Number, so that sizes survive a round trip).
func (l *layoutFix) manifestDoc(t testing.TB) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readFile(t, l.blob(l.manifest))))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// replaceManifest writes m as a new manifest blob and points index.json's
// one descriptor at it, digest and size (and media type, unless mt is ""),
// as someone who rewrites the whole layout consistently would. It returns
// the new manifest digest.
func (l *layoutFix) replaceManifest(t testing.TB, m map[string]any, mt types.MediaType) v1.Hash {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h := l.putBlob(t, raw)
	d := l.descriptor(t)
	d["digest"], d["size"] = h.String(), len(raw)
	if mt != "" {
		d["mediaType"] = string(mt)
	}
	l.setDescriptor(t, d)
	l.manifest = h
	return h
}

// ---------------------------------------------------------------------------
// OCI layouts: positive.

func TestLayoutPinsToGGCRDigest(t *testing.T) {
	img := randomImage(t, 1, 3)
	l := writeLayout(t, img)
	r, err := l.resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := mustHash(t, img.Digest)
	cfg := mustHash(t, img.ConfigName)
	if r.Digest.String() != want.String() {
		t.Fatalf("pinned %s, go-containerregistry computes %s", r.Digest, want)
	}
	if r.Config.String() != cfg.String() {
		t.Fatalf("config %s, want %s", r.Config, cfg)
	}
	if r.Source != pin.SourceOCILayout || r.Path != l.path {
		t.Fatalf("source %q path %q, want %q %q", r.Source, r.Path, pin.SourceOCILayout, l.path)
	}
	// go-containerregistry reads the same layout to the same digest.
	ii, err := layout.ImageIndexFromPath(l.path)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := im.Manifests[0].Digest.String(); got != r.Digest.String() {
		t.Fatalf("go-containerregistry reads %s from the layout, pin %s", got, r.Digest)
	}
}

func TestLayoutIndexPinsToGGCRDigest(t *testing.T) {
	idx, err := random.Index(512, 2, 3, random.WithSource(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	l := writeIndexLayout(t, idx)
	r, err := l.resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHash(t, idx.Digest); r.Digest.String() != want.String() {
		t.Fatalf("pinned %s, go-containerregistry computes %s", r.Digest, want)
	}
	if !r.Config.IsZero() {
		t.Fatalf("an index has no one config, got %s", r.Config)
	}
}

// A layout whose manifest and index.json were rewritten consistently (a
// layer replaced and its descriptor updated) is another image: it pins, to
// its own digest, never to the original one.
func TestLayoutConsistentRewritePinsNewDigest(t *testing.T) {
	l := writeLayout(t, randomImage(t, 1, 2))
	orig := l.manifest
	evil := l.putBlob(t, []byte("another layer"))
	m := l.manifestDoc(t)
	layer := m["layers"].([]any)[0].(map[string]any)
	layer["digest"], layer["size"] = evil.String(), len("another layer")
	newDigest := l.replaceManifest(t, m, "")
	r, err := l.resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest.String() != newDigest.String() || r.Digest.String() == orig.String() {
		t.Fatalf("pinned %s; the rewritten manifest is %s, the original %s", r.Digest, newDigest, orig)
	}
}

// ---------------------------------------------------------------------------
// OCI layouts: one thing broken at a time.

func TestLayoutTampered(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		breakf func(t *testing.T, l *layoutFix)
		want   []error // besides pin.ErrImage
		not    []error
		msg    string
	}{
		{
			name: "manifest blob replaced by another valid manifest of the same size",
			breakf: func(t *testing.T, l *layoutFix) {
				other := randomImage(t, 99, 1) // fewer layers: a shorter manifest
				if err := layout.Path(l.path).WriteImage(other); err != nil {
					t.Fatal(err)
				}
				orig := readFile(t, l.blob(l.manifest))
				raw, err := other.RawManifest()
				if err != nil {
					t.Fatal(err)
				}
				if len(raw) > len(orig) {
					t.Fatalf("fixture: other manifest %d bytes, original %d", len(raw), len(orig))
				}
				// JSON allows trailing blanks: same size, other content.
				raw = append(raw, bytes.Repeat([]byte(" "), len(orig)-len(raw))...)
				writeFile(t, l.blob(l.manifest), raw)
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "manifest blob replaced by another valid manifest, index.json untouched",
			breakf: func(t *testing.T, l *layoutFix) {
				other := randomImage(t, 99, 1)
				if err := layout.Path(l.path).WriteImage(other); err != nil {
					t.Fatal(err)
				}
				raw, err := other.RawManifest()
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, l.blob(l.manifest), raw)
			},
			want: []error{pin.ErrBlob},
		},
		{
			name: "index.json claims the signed digest for another manifest's bytes",
			breakf: func(t *testing.T, l *layoutFix) {
				other := randomImage(t, 99, 1)
				if err := layout.Path(l.path).WriteImage(other); err != nil {
					t.Fatal(err)
				}
				raw, err := other.RawManifest()
				if err != nil {
					t.Fatal(err)
				}
				// Under the signed digest, with a size to match: only the
				// hash can tell.
				writeFile(t, l.blob(l.manifest), raw)
				d := l.descriptor(t)
				d["size"] = len(raw)
				l.setDescriptor(t, d)
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "layer blob bytes changed, same size",
			breakf: func(t *testing.T, l *layoutFix) {
				b := readFile(t, l.blob(l.layers[1]))
				writeFile(t, l.blob(l.layers[1]), flipByte(b, len(b)/2))
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "layer blob truncated",
			breakf: func(t *testing.T, l *layoutFix) {
				b := readFile(t, l.blob(l.layers[0]))
				writeFile(t, l.blob(l.layers[0]), b[:len(b)-1])
			},
			want: []error{pin.ErrBlob},
			not:  []error{digest.ErrMismatch}, // the size is checked first
		},
		{
			name: "layer blob with bytes appended",
			breakf: func(t *testing.T, l *layoutFix) {
				b := readFile(t, l.blob(l.layers[0]))
				writeFile(t, l.blob(l.layers[0]), append(b, 0))
			},
			want: []error{pin.ErrBlob},
			not:  []error{digest.ErrMismatch},
		},
		{
			name: "layer blob emptied",
			breakf: func(t *testing.T, l *layoutFix) {
				writeFile(t, l.blob(l.layers[2]), nil)
			},
			want: []error{pin.ErrBlob},
		},
		{
			name: "config blob changed, same size",
			breakf: func(t *testing.T, l *layoutFix) {
				b := readFile(t, l.blob(l.config))
				writeFile(t, l.blob(l.config), flipByte(b, len(b)/2))
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "layer blob missing",
			breakf: func(t *testing.T, l *layoutFix) {
				if err := os.Remove(l.blob(l.layers[0])); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{pin.ErrBlob, fs.ErrNotExist},
		},
		{
			name: "config blob missing",
			breakf: func(t *testing.T, l *layoutFix) {
				if err := os.Remove(l.blob(l.config)); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{pin.ErrBlob, fs.ErrNotExist},
		},
		{
			name: "manifest blob missing",
			breakf: func(t *testing.T, l *layoutFix) {
				if err := os.Remove(l.blob(l.manifest)); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{pin.ErrBlob, fs.ErrNotExist},
		},
		{
			name: "index.json missing",
			breakf: func(t *testing.T, l *layoutFix) {
				if err := os.Remove(l.indexPath()); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{fs.ErrNotExist},
		},
		{
			name: "index.json with two manifests",
			breakf: func(t *testing.T, l *layoutFix) {
				if err := layout.Path(l.path).AppendImage(randomImage(t, 98, 1)); err != nil {
					t.Fatal(err)
				}
				if n := len(l.index(t).Manifests); n != 2 {
					t.Fatalf("fixture: %d manifests", n)
				}
			},
			msg: "exactly one",
		},
		{
			name: "index.json with the same manifest twice",
			breakf: func(t *testing.T, l *layoutFix) {
				idx := l.index(t)
				idx.Manifests = append(idx.Manifests, idx.Manifests[0])
				l.setIndex(t, idx)
			},
			msg: "exactly one",
		},
		{
			name: "index.json with no manifest",
			breakf: func(t *testing.T, l *layoutFix) {
				idx := l.index(t)
				idx.Manifests = nil
				l.setIndex(t, idx)
			},
			msg: "exactly one",
		},
		{
			name: "index.json not JSON",
			breakf: func(t *testing.T, l *layoutFix) {
				writeFile(t, l.indexPath(), []byte("not json {"))
			},
			msg: "not an OCI image index",
		},
		{
			name: "index.json larger than MaxManifestSize",
			breakf: func(t *testing.T, l *layoutFix) {
				b := readFile(t, l.indexPath())
				writeFile(t, l.indexPath(), append(b, bytes.Repeat([]byte(" "), pin.MaxManifestSize)...))
			},
			want: []error{readfile.ErrTooLarge},
		},
		{
			name: "descriptor says index, the blob is an image manifest",
			breakf: func(t *testing.T, l *layoutFix) {
				d := l.descriptor(t)
				d["mediaType"] = string(types.OCIImageIndex)
				l.setDescriptor(t, d)
			},
			msg: "says it is",
		},
		{
			name: "descriptor says OCI manifest, the blob is a Docker manifest",
			breakf: func(t *testing.T, l *layoutFix) {
				d := l.descriptor(t)
				d["mediaType"] = string(types.OCIManifestSchema1)
				l.setDescriptor(t, d)
			},
			msg: "says it is",
		},
		{
			name: "descriptor says a config, the blob is an image manifest",
			breakf: func(t *testing.T, l *layoutFix) {
				d := l.descriptor(t)
				d["mediaType"] = string(types.OCIConfigJSON)
				l.setDescriptor(t, d)
			},
			msg: "says it is",
		},
		{
			name: "neither descriptor nor manifest has a media type",
			breakf: func(t *testing.T, l *layoutFix) {
				m := l.manifestDoc(t)
				delete(m, "mediaType")
				l.replaceManifest(t, m, "")
				d := l.descriptor(t)
				delete(d, "mediaType")
				l.setDescriptor(t, d)
			},
			msg: "is not an image manifest or index",
		},
		{
			name:   "manifest descriptor size over MaxManifestSize",
			breakf: setDescriptorField("size", pin.MaxManifestSize+1),
			msg:    "limit",
		},
		{
			name:   "manifest descriptor size negative",
			breakf: setDescriptorField("size", -1),
			msg:    "limit",
		},
		{
			name: "manifest descriptor size one short",
			breakf: func(t *testing.T, l *layoutFix) {
				d := l.descriptor(t)
				d["size"] = len(readFile(t, l.blob(l.manifest))) - 1
				l.setDescriptor(t, d)
			},
			want: []error{pin.ErrBlob},
			not:  []error{digest.ErrMismatch},
		},
		{
			name: "manifest descriptor digest sha512",
			breakf: func(t *testing.T, l *layoutFix) {
				d := l.descriptor(t)
				d["digest"] = "sha512:" + strings.Repeat(l.manifest.Hex, 2)
				l.setDescriptor(t, d)
			},
			want: []error{pin.ErrBlob},
			msg:  "not sha256",
		},
		{
			name:   "manifest descriptor digest not hex",
			breakf: setDescriptorField("digest", "sha256:"+strings.Repeat("zz", 32)),
			msg:    "not an OCI image index",
		},
		{
			name: "manifest descriptor digest upper-case hex",
			breakf: func(t *testing.T, l *layoutFix) {
				// On a case-insensitive file system this would name the
				// same file; it must be refused all the same.
				d := l.descriptor(t)
				d["digest"] = "sha256:" + strings.ToUpper(l.manifest.Hex)
				l.setDescriptor(t, d)
			},
			msg: "not an OCI image index",
		},
		{
			name: "manifest descriptor digest path traversal",
			breakf: func(t *testing.T, l *layoutFix) {
				// A copy of the manifest where a naive join would land.
				writeFile(t, filepath.Join(l.dir, "etc", "passwd"), readFile(t, l.blob(l.manifest)))
				d := l.descriptor(t)
				d["digest"] = "sha256:../../../../etc/passwd"
				l.setDescriptor(t, d)
			},
			msg: "not an OCI image index",
		},
		{
			name: "manifest descriptor digest without algorithm",
			breakf: func(t *testing.T, l *layoutFix) {
				d := l.descriptor(t)
				d["digest"] = l.manifest.Hex
				l.setDescriptor(t, d)
			},
			msg: "not an OCI image index",
		},
		{
			name: "layer descriptor digest sha512 (manifest re-hashed)",
			breakf: func(t *testing.T, l *layoutFix) {
				m := l.manifestDoc(t)
				layer := m["layers"].([]any)[0].(map[string]any)
				layer["digest"] = "sha512:" + strings.Repeat(l.layers[0].Hex, 2)
				l.replaceManifest(t, m, "")
			},
			want: []error{pin.ErrBlob},
			msg:  "not sha256",
		},
		{
			name: "layer descriptor digest path traversal (manifest re-hashed)",
			breakf: func(t *testing.T, l *layoutFix) {
				m := l.manifestDoc(t)
				layer := m["layers"].([]any)[0].(map[string]any)
				layer["digest"] = "sha256:../../index.json"
				l.replaceManifest(t, m, "")
			},
			msg: "not an image manifest",
		},
		{
			name: "layer descriptor size larger than the blob (manifest re-hashed)",
			breakf: func(t *testing.T, l *layoutFix) {
				m := l.manifestDoc(t)
				layer := m["layers"].([]any)[0].(map[string]any)
				n, _ := layer["size"].(json.Number).Int64()
				layer["size"] = n + 1
				l.replaceManifest(t, m, "")
			},
			want: []error{pin.ErrBlob},
			not:  []error{digest.ErrMismatch},
		},
		{
			name: "layer descriptor size negative (manifest re-hashed)",
			breakf: func(t *testing.T, l *layoutFix) {
				m := l.manifestDoc(t)
				layer := m["layers"].([]any)[0].(map[string]any)
				layer["size"] = -1
				l.replaceManifest(t, m, "")
			},
			want: []error{pin.ErrBlob},
			msg:  "negative size",
		},
		{
			name: "config descriptor size over MaxManifestSize (manifest re-hashed)",
			breakf: func(t *testing.T, l *layoutFix) {
				m := l.manifestDoc(t)
				m["config"].(map[string]any)["size"] = pin.MaxManifestSize + 1
				l.replaceManifest(t, m, "")
			},
			msg: "limit",
		},
		{
			name: "layer descriptor naming the config blob (manifest re-hashed)",
			breakf: func(t *testing.T, l *layoutFix) {
				// Every descriptor is checked, whatever blob it names: a
				// layer descriptor with the config's digest and a wrong size.
				m := l.manifestDoc(t)
				layer := m["layers"].([]any)[0].(map[string]any)
				layer["digest"] = l.config.String()
				l.replaceManifest(t, m, "")
			},
			want: []error{pin.ErrBlob},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := writeLayout(t, randomImage(t, 1, 3))
			if _, err := l.resolve(ctx); err != nil {
				t.Fatalf("the fixture does not pin: %v", err)
			}
			tc.breakf(t, l)
			r, err := l.resolve(ctx)
			wantRefused(t, r, err, tc.want...)
			wantNot(t, err, tc.not...)
			if tc.msg != "" {
				wantMessage(t, err, tc.msg)
			}
		})
	}
}

// An image index (several platforms): every child manifest, and every
// blob each child reaches, is checked too.
func TestLayoutIndexTampered(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		breakf func(t *testing.T, l *layoutFix, children []v1.Image)
		want   []error
		msg    string
	}{
		{
			name: "a child's layer changed",
			breakf: func(t *testing.T, l *layoutFix, children []v1.Image) {
				layers, err := children[2].Layers()
				if err != nil {
					t.Fatal(err)
				}
				p := l.blob(mustHash(t, layers[1].Digest))
				b := readFile(t, p)
				writeFile(t, p, flipByte(b, len(b)/3))
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "a child's config changed",
			breakf: func(t *testing.T, l *layoutFix, children []v1.Image) {
				p := l.blob(mustHash(t, children[0].ConfigName))
				b := readFile(t, p)
				writeFile(t, p, flipByte(b, 10))
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "a child's manifest changed",
			breakf: func(t *testing.T, l *layoutFix, children []v1.Image) {
				p := l.blob(mustHash(t, children[1].Digest))
				b := readFile(t, p)
				writeFile(t, p, bytes.Replace(b, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1))
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "a child's layer missing",
			breakf: func(t *testing.T, l *layoutFix, children []v1.Image) {
				layers, err := children[1].Layers()
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(l.blob(mustHash(t, layers[0].Digest))); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{pin.ErrBlob, fs.ErrNotExist},
		},
		{
			name: "the index blob changed",
			breakf: func(t *testing.T, l *layoutFix, _ []v1.Image) {
				b := readFile(t, l.blob(l.manifest))
				writeFile(t, l.blob(l.manifest), bytes.Replace(b, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1))
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "descriptor says image manifest, the blob is an index",
			breakf: func(t *testing.T, l *layoutFix, _ []v1.Image) {
				d := l.descriptor(t)
				d["mediaType"] = string(types.OCIManifestSchema1)
				l.setDescriptor(t, d)
			},
			msg: "says it is",
		},
		{
			name: "descriptor says Docker manifest list, the blob is an OCI index",
			breakf: func(t *testing.T, l *layoutFix, _ []v1.Image) {
				d := l.descriptor(t)
				d["mediaType"] = string(types.DockerManifestList)
				l.setDescriptor(t, d)
			},
			msg: "says it is",
		},
		{
			name: "untyped index presented as an image manifest (index re-hashed)",
			breakf: func(t *testing.T, l *layoutFix, _ []v1.Image) {
				// An index has no config: it is not shaped as the image
				// manifest its descriptor calls it.
				m := l.manifestDoc(t)
				delete(m, "mediaType")
				l.replaceManifest(t, m, types.OCIManifestSchema1)
			},
			want: []error{pin.ErrImage},
			msg:  "is not shaped as one",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idx, err := random.Index(512, 2, 3, random.WithSource(rand.NewSource(5)))
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var children []v1.Image
			for _, d := range im.Manifests {
				child, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				children = append(children, child)
			}
			l := writeIndexLayout(t, idx)
			if _, err := l.resolve(ctx); err != nil {
				t.Fatalf("the fixture does not pin: %v", err)
			}
			tc.breakf(t, l, children)
			r, err := l.resolve(ctx)
			wantRefused(t, r, err, tc.want...)
			if tc.msg != "" {
				wantMessage(t, err, tc.msg)
			}
		})
	}
}

func TestLayoutIndexLimits(t *testing.T) {
	ctx := context.Background()
	inner, err := random.Index(256, 1, 2, random.WithSource(rand.NewSource(7)))
	if err != nil {
		t.Fatal(err)
	}
	nest := func(ii v1.ImageIndex) v1.ImageIndex {
		return mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: ii})
	}
	t.Run("index of index of images pins", func(t *testing.T) {
		ii := nest(inner)
		l := writeIndexLayout(t, ii)
		r, err := l.resolve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := mustHash(t, ii.Digest); r.Digest.String() != want.String() {
			t.Fatalf("pinned %s, want %s", r.Digest, want)
		}
	})
	t.Run("a tampered layer two indexes down is refused", func(t *testing.T) {
		l := writeIndexLayout(t, nest(inner))
		im, err := inner.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		img, err := inner.Image(im.Manifests[1].Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		p := l.blob(mustHash(t, layers[0].Digest))
		b := readFile(t, p)
		writeFile(t, p, flipByte(b, len(b)/2))
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob, digest.ErrMismatch)
	})
	t.Run("indexes nested three deep are refused", func(t *testing.T) {
		l := writeIndexLayout(t, nest(nest(inner)))
		r, err := l.resolve(ctx)
		wantRefused(t, r, err)
		wantMessage(t, err, "nested deeper")
	})
	t.Run("an index of more than 64 manifests is refused", func(t *testing.T) {
		big, err := random.Index(16, 1, 65, random.WithSource(rand.NewSource(8)))
		if err != nil {
			t.Fatal(err)
		}
		l := writeIndexLayout(t, big)
		r, err := l.resolve(ctx)
		wantRefused(t, r, err)
		wantMessage(t, err, "limit 64")
	})
}

// An image manifest need not carry its media type (OCI: SHOULD). Untyped,
// its type is the descriptor's: so a descriptor that calls an untyped image
// manifest an index must not make the verifier read it as an (empty) index
// and skip its config and layers, and a JSON blob that is no manifest at
// all (a config) must not pin as an empty index.
func TestLayoutUntypedManifestConfusion(t *testing.T) {
	ctx := context.Background()
	untyped := func(t *testing.T) *layoutFix {
		l := writeLayout(t, randomImage(t, 1, 2))
		m := l.manifestDoc(t)
		delete(m, "mediaType")
		l.replaceManifest(t, m, types.OCIManifestSchema1)
		return l
	}
	t.Run("an untyped image manifest pins", func(t *testing.T) {
		l := untyped(t)
		r, err := l.resolve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Digest.String() != l.manifest.String() || r.Config.String() != l.config.String() {
			t.Fatalf("pinned %s config %s, want %s %s", r.Digest, r.Config, l.manifest, l.config)
		}
	})
	t.Run("an untyped image manifest with a changed layer is refused", func(t *testing.T) {
		l := untyped(t)
		b := readFile(t, l.blob(l.layers[0]))
		writeFile(t, l.blob(l.layers[0]), flipByte(b, len(b)/2))
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob, digest.ErrMismatch)
	})
	t.Run("an untyped image manifest called an index, with a changed layer, is refused", func(t *testing.T) {
		l := untyped(t)
		d := l.descriptor(t)
		d["mediaType"] = string(types.OCIImageIndex)
		l.setDescriptor(t, d)
		b := readFile(t, l.blob(l.layers[0]))
		writeFile(t, l.blob(l.layers[0]), flipByte(b, len(b)/2))
		r, err := l.resolve(ctx)
		// Either the confusion is refused or the layers are checked:
		// never a pin of a manifest whose layer was changed.
		wantRefused(t, r, err)
	})
	t.Run("the config blob called an index is refused", func(t *testing.T) {
		l := writeLayout(t, randomImage(t, 1, 2))
		cfg := readFile(t, l.blob(l.config))
		l.setDescriptor(t, map[string]any{
			"mediaType": string(types.OCIImageIndex),
			"digest":    l.config.String(),
			"size":      len(cfg),
		})
		r, err := l.resolve(ctx)
		wantRefused(t, r, err)
	})
}

// ---------------------------------------------------------------------------
// OCI layouts: files that are not regular, and links.

func TestLayoutFiles(t *testing.T) {
	ctx := context.Background()
	escapes := errPathEscapes(t)
	fresh := func(t *testing.T) *layoutFix {
		l := writeLayout(t, randomImage(t, 1, 2))
		if _, err := l.resolve(ctx); err != nil {
			t.Fatalf("the fixture does not pin: %v", err)
		}
		return l
	}

	t.Run("index.json a FIFO fails fast", func(t *testing.T) {
		l := fresh(t)
		mkfifo(t, l.indexPath())
		r, err := within(t, 10*time.Second, unblockFIFO(l.indexPath()), func() (pin.Image, error) { return l.resolve(ctx) })
		wantRefused(t, r, err, readfile.ErrNotRegular)
	})
	t.Run("manifest blob a FIFO fails fast", func(t *testing.T) {
		l := fresh(t)
		mkfifo(t, l.blob(l.manifest))
		r, err := within(t, 10*time.Second, unblockFIFO(l.blob(l.manifest)), func() (pin.Image, error) { return l.resolve(ctx) })
		wantRefused(t, r, err, pin.ErrBlob, readfile.ErrNotRegular)
	})
	t.Run("layer blob a FIFO fails fast", func(t *testing.T) {
		l := fresh(t)
		mkfifo(t, l.blob(l.layers[1]))
		r, err := within(t, 10*time.Second, unblockFIFO(l.blob(l.layers[1])), func() (pin.Image, error) { return l.resolve(ctx) })
		wantRefused(t, r, err, pin.ErrBlob, readfile.ErrNotRegular)
	})
	t.Run("layer blob a directory", func(t *testing.T) {
		l := fresh(t)
		p := l.blob(l.layers[0])
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob, readfile.ErrNotRegular)
	})
	t.Run("layer blob a character device like /dev/zero", func(t *testing.T) {
		l := fresh(t)
		p := l.blob(l.layers[0])
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		// Major 1, minor 5: /dev/zero, inside the layout.
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
			t.Skipf("cannot make a device node here (%v); the symlink case below still covers /dev/zero", err)
		}
		r, err := within(t, 10*time.Second, nil, func() (pin.Image, error) { return l.resolve(ctx) })
		wantRefused(t, r, err, pin.ErrBlob, readfile.ErrNotRegular)
	})
	t.Run("layer blob a symlink to /dev/zero is refused, not read", func(t *testing.T) {
		l := fresh(t)
		symlink(t, "/dev/zero", l.blob(l.layers[0]))
		r, err := within(t, 10*time.Second, nil, func() (pin.Image, error) { return l.resolve(ctx) })
		// The link leads out of the layout: os.Root refuses to follow it.
		wantRefused(t, r, err, pin.ErrBlob, escapes)
	})
	t.Run("index.json a symlink to /dev/zero is refused, not read", func(t *testing.T) {
		l := fresh(t)
		symlink(t, "/dev/zero", l.indexPath())
		r, err := within(t, 10*time.Second, nil, func() (pin.Image, error) { return l.resolve(ctx) })
		wantRefused(t, r, err, escapes)
	})
	t.Run("index.json a symlink to a valid copy outside the stack folder", func(t *testing.T) {
		l := fresh(t)
		outside := filepath.Join(t.TempDir(), "index.json")
		writeFile(t, outside, readFile(t, l.indexPath()))
		symlink(t, outside, l.indexPath())
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, escapes)
	})
	t.Run("index.json a relative symlink to a valid copy outside the stack folder", func(t *testing.T) {
		l := fresh(t)
		outside := filepath.Join(t.TempDir(), "index.json")
		writeFile(t, outside, readFile(t, l.indexPath()))
		rel, err := filepath.Rel(l.path, outside)
		if err != nil {
			t.Fatal(err)
		}
		symlink(t, rel, l.indexPath())
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, escapes)
	})
	t.Run("index.json a symlink to a valid copy in the stack folder, outside the layout", func(t *testing.T) {
		l := fresh(t)
		other := filepath.Join(l.dir, "other-index.json")
		writeFile(t, other, readFile(t, l.indexPath()))
		symlink(t, "../../other-index.json", l.indexPath())
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, escapes)
	})
	t.Run("layer blob a symlink out of the layout to a valid copy", func(t *testing.T) {
		l := fresh(t)
		copyPath := filepath.Join(l.dir, "layer-copy")
		writeFile(t, copyPath, readFile(t, l.blob(l.layers[0])))
		symlink(t, copyPath, l.blob(l.layers[0]))
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob, escapes)
	})
	t.Run("the layout folder a symlink out of the stack folder", func(t *testing.T) {
		l := fresh(t)
		elsewhere := filepath.Join(t.TempDir(), "moved")
		if err := os.Rename(l.path, elsewhere); err != nil {
			t.Fatal(err)
		}
		symlink(t, elsewhere, l.path)
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, escapes)
	})
	t.Run("the layout path leads out of the stack folder", func(t *testing.T) {
		l := fresh(t)
		sub := filepath.Join(l.dir, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		// From dir/sub, ../images/app is the valid layout, but outside.
		r, err := pin.Resolve(ctx, sub, stack.Image{Name: "app", OCILayout: "../" + l.rel}, pin.Registry{})
		wantRefused(t, r, err, escapes)
	})
	t.Run("layer blob a symlink to a valid copy inside the layout is accepted", func(t *testing.T) {
		// Documented behaviour: links inside the layout are followed (the
		// bytes read are still hashed and checked against the descriptor).
		l := fresh(t)
		copyPath := filepath.Join(l.path, "copies", "layer0")
		writeFile(t, copyPath, readFile(t, l.blob(l.layers[0])))
		symlink(t, "../../copies/layer0", l.blob(l.layers[0]))
		r, err := l.resolve(ctx)
		if err != nil {
			t.Fatalf("a link inside the layout to the right bytes: %v", err)
		}
		if r.Digest.String() != l.manifest.String() {
			t.Fatalf("pinned %s, want %s", r.Digest, l.manifest)
		}
	})
	t.Run("layer blob a symlink to another blob inside the layout", func(t *testing.T) {
		l := fresh(t)
		symlink(t, l.layers[1].Hex, l.blob(l.layers[0]))
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob)
	})
	t.Run("layer blob a symlink to a same-size tampered copy inside the layout", func(t *testing.T) {
		l := fresh(t)
		b := readFile(t, l.blob(l.layers[0]))
		writeFile(t, filepath.Join(l.path, "copies", "evil"), flipByte(b, 7))
		symlink(t, "../../copies/evil", l.blob(l.layers[0]))
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob, digest.ErrMismatch)
	})
}

// ---------------------------------------------------------------------------
// Context.

// bigLayout returns a layout whose image has, after its own layer, a layer
// of size zero bytes (written sparse), with the manifest re-hashed.
func bigLayout(t *testing.T, size int64) *layoutFix {
	t.Helper()
	l := writeLayout(t, randomImage(t, 1, 1))
	h := sha256.New()
	zeros := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(zeros)) {
		h.Write(zeros[:min(int64(len(zeros)), size-n)])
	}
	sum := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	f, err := os.Create(l.blob(sum))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m := l.manifestDoc(t)
	m["layers"] = append(m["layers"].([]any), map[string]any{
		"mediaType": string(types.OCIUncompressedLayer),
		"digest":    sum.String(),
		"size":      size,
	})
	l.replaceManifest(t, m, "")
	l.layers = append(l.layers, sum)
	return l
}

// countingCtx cancels itself on the n-th call to Err, and counts the calls.
type countingCtx struct {
	context.Context
	cancel context.CancelFunc
	at     int64
	calls  atomic.Int64
}

func (c *countingCtx) Err() error {
	if c.calls.Add(1) == c.at {
		c.cancel()
	}
	return c.Context.Err()
}

func TestContextCancelled(t *testing.T) {
	const size = 64 << 20
	l := bigLayout(t, size)
	if r, err := l.resolve(context.Background()); err != nil || r.Digest.String() != l.manifest.String() {
		t.Fatalf("the big fixture does not pin: %v %v", r.Digest, err)
	}

	t.Run("layout, cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, context.Canceled)
	})
	t.Run("layout, cancelled while hashing the large layer", func(t *testing.T) {
		inner, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The config and the small layer take a few calls; the 64 MiB
		// layer takes hundreds (one per buffer).
		ctx := &countingCtx{Context: inner, cancel: cancel, at: 20}
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, context.Canceled)
		if n := ctx.calls.Load(); n > ctx.at+2 {
			t.Fatalf("hashing went on after the cancellation: %d checks of the context, cancelled at %d", n, ctx.at)
		}
	})
	t.Run("layout, deadline exceeded", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		r, err := l.resolve(ctx)
		wantRefused(t, r, err, context.DeadlineExceeded)
	})
	t.Run("archive, cancelled before", func(t *testing.T) {
		a := writeArchive(t, randomImage(t, 1, 2))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r, err := a.resolve(ctx)
		wantRefused(t, r, err, context.Canceled)
	})
}

// ---------------------------------------------------------------------------
// docker-save archives: fixtures.

type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func regEntry(name string, data []byte) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}, data: data}
}

func dirEntry(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func symEntry(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardEntry(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func readTar(t testing.TB, p string) []tarEntry {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []tarEntry
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{hdr: *h, data: data})
	}
}

func writeTar(t testing.TB, p string, entries []tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, buf.Bytes())
}

// archiveFix is a docker-save archive at dir/rel.
type archiveFix struct {
	dir  string
	rel  string
	path string
}

func newArchiveFix(t testing.TB) *archiveFix {
	dir := t.TempDir()
	return &archiveFix{dir: dir, rel: "images/app.tar", path: filepath.Join(dir, "images", "app.tar")}
}

// writeArchive writes img with go-containerregistry's tarball writer
// (layers gzip, config named sha256:<hex>).
func writeArchive(t testing.TB, img v1.Image) *archiveFix {
	t.Helper()
	a := newArchiveFix(t)
	if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference("registry.example/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(a.path, ref, img); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *archiveFix) resolve(ctx context.Context) (pin.Image, error) {
	return pin.Resolve(ctx, a.dir, stack.Image{Name: "app", Archive: a.rel}, pin.Registry{})
}

func (a *archiveFix) entries(t testing.TB) []tarEntry { return readTar(t, a.path) }

func (a *archiveFix) setEntries(t testing.TB, es []tarEntry) { writeTar(t, a.path, es) }

// dockerManifest is manifest.json's one element.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (a *archiveFix) manifest(t testing.TB) dockerManifest {
	t.Helper()
	for _, e := range a.entries(t) {
		if e.hdr.Name == "manifest.json" {
			var m []dockerManifest
			if err := json.Unmarshal(e.data, &m); err != nil || len(m) != 1 {
				t.Fatalf("fixture manifest.json: %v", err)
			}
			return m[0]
		}
	}
	t.Fatal("fixture has no manifest.json")
	return dockerManifest{}
}

// edit applies f to the entry called name (which must exist).
func (a *archiveFix) edit(t testing.TB, entry string, f func(e *tarEntry)) {
	t.Helper()
	es := a.entries(t)
	for i := range es {
		if es[i].hdr.Name == entry {
			f(&es[i])
			a.setEntries(t, es)
			return
		}
	}
	t.Fatalf("fixture has no entry %q", entry)
}

// drop removes the entry called name (which must exist).
func (a *archiveFix) drop(t testing.TB, entry string) {
	t.Helper()
	es := a.entries(t)
	for i := range es {
		if es[i].hdr.Name == entry {
			a.setEntries(t, append(es[:i], es[i+1:]...))
			return
		}
	}
	t.Fatalf("fixture has no entry %q", entry)
}

func gzipBytes(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gunzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// imageParts returns img's raw config and its layers uncompressed.
func imageParts(t testing.TB, img v1.Image) ([]byte, [][]byte) {
	t.Helper()
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return cfg, out
}

// saveParts are the pieces of a hand-written docker-save archive in the
// layout docker 25+ writes: config and uncompressed layers as
// blobs/sha256/<hex>, and for each layer the legacy path <id>/layer.tar as
// a link to its blob.
type saveParts struct {
	cfg      []byte
	layers   [][]byte
	cfgName  string   // blobs/sha256/<hex of config>
	blobs    []string // blobs/sha256/<diff ID hex>, per layer
	legacies []string // <diff ID hex>/layer.tar, per layer
}

func newSaveParts(t testing.TB, img v1.Image) *saveParts {
	cfg, layers := imageParts(t, img)
	s := &saveParts{cfg: cfg, layers: layers, cfgName: "blobs/sha256/" + sha256Hash(cfg).Hex}
	for _, l := range layers {
		hx := sha256Hash(l).Hex
		s.blobs = append(s.blobs, "blobs/sha256/"+hx)
		s.legacies = append(s.legacies, hx+"/layer.tar")
	}
	return s
}

// entries lays the archive out; link is tar.TypeSymlink or tar.TypeLink
// for the legacy paths, which manifest.json lists (so that pinning must
// follow the links), or 0 for manifest.json to list the blobs themselves.
func (s *saveParts) entries(t testing.TB, link byte) []tarEntry {
	t.Helper()
	es := []tarEntry{dirEntry("blobs/"), dirEntry("blobs/sha256/")}
	for i, l := range s.layers {
		es = append(es, regEntry(s.blobs[i], l))
	}
	es = append(es, regEntry(s.cfgName, s.cfg))
	listed := s.blobs
	if link != 0 {
		listed = s.legacies
		for i, legacy := range s.legacies {
			es = append(es, dirEntry(path.Dir(legacy)+"/"))
			switch link {
			case tar.TypeSymlink:
				es = append(es, symEntry(legacy, "../"+s.blobs[i]))
			case tar.TypeLink:
				es = append(es, hardEntry(legacy, s.blobs[i]))
			}
		}
	}
	m, err := json.Marshal([]dockerManifest{{Config: s.cfgName, RepoTags: []string{"app:1"}, Layers: listed}})
	if err != nil {
		t.Fatal(err)
	}
	es = append(es, regEntry("manifest.json", m), regEntry("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)))
	return es
}

// ---------------------------------------------------------------------------
// docker-save archives: positive.

func TestArchivePinsToGGCRConfigName(t *testing.T) {
	img := randomImage(t, 1, 3)
	a := writeArchive(t, img)
	r, err := a.resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := mustHash(t, img.ConfigName)
	if r.Digest.String() != want.String() || r.Config.String() != want.String() {
		t.Fatalf("pinned %s config %s, go-containerregistry computes %s", r.Digest, r.Config, want)
	}
	if r.Source != pin.SourceArchive || r.Path != a.path {
		t.Fatalf("source %q path %q, want %q %q", r.Source, r.Path, pin.SourceArchive, a.path)
	}
}

func TestArchiveHandWritten(t *testing.T) {
	img := randomImage(t, 2, 3)
	want := mustHash(t, img.ConfigName)
	for _, tc := range []struct {
		name string
		link byte
	}{
		{"uncompressed layers listed as blobs", 0},
		{"legacy paths symlinks to blobs (docker 25+)", tar.TypeSymlink},
		{"legacy paths hard links to blobs", tar.TypeLink},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSaveParts(t, img)
			a := newArchiveFix(t)
			a.setEntries(t, s.entries(t, tc.link))
			r, err := a.resolve(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if r.Digest.String() != want.String() {
				t.Fatalf("pinned %s, go-containerregistry computes %s", r.Digest, want)
			}
		})
	}
}

// A gzip layer recompressed (other bytes, same content) keeps its diff ID:
// documented as accepted, to the same digest.
func TestArchiveRecompressedLayerAccepted(t *testing.T) {
	img := randomImage(t, 1, 2)
	a := writeArchive(t, img)
	layer := a.manifest(t).Layers[0]
	var before []byte
	a.edit(t, layer, func(e *tarEntry) {
		before = e.data
		e.data = gzipBytes(t, gunzipBytes(t, e.data), gzip.NoCompression)
	})
	a.edit(t, layer, func(e *tarEntry) {
		if bytes.Equal(before, e.data) {
			t.Fatal("fixture: recompression did not change the bytes")
		}
	})
	r, err := a.resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHash(t, img.ConfigName); r.Digest.String() != want.String() {
		t.Fatalf("pinned %s, want %s", r.Digest, want)
	}
}

// A changed config is another image: it pins to the SHA-256 of the bytes
// read, never to the name manifest.json gives the config.
func TestArchiveConfigChangedPinsItsOwnDigest(t *testing.T) {
	img := randomImage(t, 1, 2)
	a := writeArchive(t, img)
	orig := mustHash(t, img.ConfigName)
	cfgEntry := a.manifest(t).Config
	if !strings.Contains(cfgEntry, orig.Hex) {
		t.Fatalf("fixture: config entry %q does not name %s", cfgEntry, orig)
	}
	var newCfg []byte
	a.edit(t, cfgEntry, func(e *tarEntry) {
		var doc map[string]any
		if err := json.Unmarshal(e.data, &doc); err != nil {
			t.Fatal(err)
		}
		doc["author"] = "someone else"
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		e.data, newCfg = b, b
	})
	r, err := a.resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := digest.FromBytes(newCfg)
	if r.Digest != want || r.Config != want {
		t.Fatalf("pinned %s config %s, want the new config's %s", r.Digest, r.Config, want)
	}
	if r.Digest.Hex() == orig.Hex {
		t.Fatalf("pinned the name manifest.json gives the config, %s", orig)
	}
}

// ---------------------------------------------------------------------------
// docker-save archives: one thing broken at a time.

func TestArchiveTampered(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		breakf func(t *testing.T, a *archiveFix, img v1.Image)
		want   []error
		not    []error
		msg    string
	}{
		{
			name: "gzip layer whose decompressed content differs",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, a.manifest(t).Layers[1], func(e *tarEntry) {
					raw := gunzipBytes(t, e.data)
					e.data = gzipBytes(t, flipByte(raw, len(raw)-1500), gzip.DefaultCompression)
				})
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "gzip layer replaced by the same content uncompressed, one byte changed",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, a.manifest(t).Layers[0], func(e *tarEntry) {
					raw := gunzipBytes(t, e.data)
					e.data = flipByte(raw, 600)
				})
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "gzip layer with a corrupt checksum",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, a.manifest(t).Layers[0], func(e *tarEntry) {
					e.data = flipByte(e.data, len(e.data)-8) // the CRC-32 trailer
				})
			},
			want: []error{gzip.ErrChecksum},
		},
		{
			name: "layers swapped in the config's diff_ids",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, a.manifest(t).Config, func(e *tarEntry) {
					var doc map[string]any
					if err := json.Unmarshal(e.data, &doc); err != nil {
						t.Fatal(err)
					}
					ids := doc["rootfs"].(map[string]any)["diff_ids"].([]any)
					ids[0], ids[1] = ids[1], ids[0]
					b, err := json.Marshal(doc)
					if err != nil {
						t.Fatal(err)
					}
					e.data = b
				})
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "config listing fewer diff_ids than layers",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, a.manifest(t).Config, func(e *tarEntry) {
					var doc map[string]any
					if err := json.Unmarshal(e.data, &doc); err != nil {
						t.Fatal(err)
					}
					rootfs := doc["rootfs"].(map[string]any)
					rootfs["diff_ids"] = rootfs["diff_ids"].([]any)[:1]
					b, err := json.Marshal(doc)
					if err != nil {
						t.Fatal(err)
					}
					e.data = b
				})
			},
			want: []error{pin.ErrBlob},
		},
		{
			name: "manifest.json listing fewer layers than the config",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, "manifest.json", func(e *tarEntry) {
					var m []dockerManifest
					if err := json.Unmarshal(e.data, &m); err != nil {
						t.Fatal(err)
					}
					m[0].Layers = m[0].Layers[1:]
					e.data, _ = json.Marshal(m)
				})
			},
			want: []error{pin.ErrBlob},
		},
		{
			name: "manifest.json listing two images",
			breakf: func(t *testing.T, a *archiveFix, img v1.Image) {
				ref1, _ := name.ParseReference("registry.example/app:1")
				ref2, _ := name.ParseReference("registry.example/other:1")
				if err := tarball.MultiRefWriteToFile(a.path, map[name.Reference]v1.Image{ref1: img, ref2: randomImage(t, 77, 1)}); err != nil {
					t.Fatal(err)
				}
			},
			msg: "exactly one",
		},
		{
			name: "manifest.json listing no image",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, "manifest.json", func(e *tarEntry) { e.data = []byte("[]") })
			},
			msg: "exactly one",
		},
		{
			name: "manifest.json not JSON",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, "manifest.json", func(e *tarEntry) { e.data = []byte("{not json") })
			},
			msg: "not a docker-save manifest",
		},
		{
			name: "manifest.json larger than MaxManifestSize",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, "manifest.json", func(e *tarEntry) {
					e.data = append(e.data, bytes.Repeat([]byte(" "), pin.MaxManifestSize)...)
				})
			},
			msg: "larger than",
		},
		{
			name: "manifest.json missing",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.drop(t, "manifest.json")
			},
			want: []error{pin.ErrBlob},
			msg:  "manifest.json",
		},
		{
			name: "manifest.json a directory entry",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, "manifest.json", func(e *tarEntry) {
					e.hdr = tar.Header{Typeflag: tar.TypeDir, Name: "manifest.json/", Mode: 0o755}
					e.data = nil
				})
			},
			want: []error{pin.ErrBlob},
		},
		{
			name: "config missing",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.drop(t, a.manifest(t).Config)
			},
			want: []error{pin.ErrBlob},
		},
		{
			name: "config not JSON",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.edit(t, a.manifest(t).Config, func(e *tarEntry) { e.data = []byte("not json") })
			},
			msg: "config is not JSON",
		},
		{
			name: "a layer listed but absent",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				a.drop(t, a.manifest(t).Layers[2])
			},
			want: []error{pin.ErrBlob},
		},
		{
			name: "a layer listed under a name that leads out of the archive",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				// A copy of the layer where a naive join would land.
				m := a.manifest(t)
				var data []byte
				a.edit(t, m.Layers[0], func(e *tarEntry) { data = e.data })
				writeFile(t, filepath.Join(a.dir, "layer.tar.gz"), data)
				a.edit(t, "manifest.json", func(e *tarEntry) {
					var ms []dockerManifest
					if err := json.Unmarshal(e.data, &ms); err != nil {
						t.Fatal(err)
					}
					ms[0].Layers[0] = "../../layer.tar.gz"
					e.data, _ = json.Marshal(ms)
				})
			},
			want: []error{pin.ErrBlob},
		},
		{
			name: "the archive truncated",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				b := readFile(t, a.path)
				writeFile(t, a.path, b[:len(b)/2+100])
			},
			want: []error{io.ErrUnexpectedEOF},
		},
		{
			name: "the archive not a tar",
			breakf: func(t *testing.T, a *archiveFix, _ v1.Image) {
				writeFile(t, a.path, bytes.Repeat([]byte("not a tar "), 100))
			},
			msg: "reading the archive",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := randomImage(t, 1, 3)
			a := writeArchive(t, img)
			if _, err := a.resolve(ctx); err != nil {
				t.Fatalf("the fixture does not pin: %v", err)
			}
			tc.breakf(t, a, img)
			r, err := a.resolve(ctx)
			wantRefused(t, r, err, tc.want...)
			wantNot(t, err, tc.not...)
			if tc.msg != "" {
				wantMessage(t, err, tc.msg)
			}
		})
	}
}

// Links inside the archive are followed, and what they lead to is checked.
func TestArchiveLinksTampered(t *testing.T) {
	ctx := context.Background()
	img := randomImage(t, 2, 3)
	cases := []struct {
		name   string
		link   byte
		breakf func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry
		want   []error
		msg    string
	}{
		{
			name: "the blob behind a symlinked legacy path changed",
			link: tar.TypeSymlink,
			breakf: func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry {
				for i := range es {
					if es[i].hdr.Name == s.blobs[1] {
						es[i].data = flipByte(es[i].data, 700)
					}
				}
				return es
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "the blob behind a hard-linked legacy path changed",
			link: tar.TypeLink,
			breakf: func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry {
				for i := range es {
					if es[i].hdr.Name == s.blobs[2] {
						es[i].data = flipByte(es[i].data, 700)
					}
				}
				return es
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "an uncompressed layer blob listed directly changed",
			link: 0,
			breakf: func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry {
				for i := range es {
					if es[i].hdr.Name == s.blobs[0] {
						es[i].data = flipByte(es[i].data, 700)
					}
				}
				return es
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name: "a legacy symlink retargeted to another layer's blob",
			link: tar.TypeSymlink,
			breakf: func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry {
				for i := range es {
					if es[i].hdr.Name == s.legacies[0] {
						es[i].hdr.Linkname = "../" + s.blobs[1]
					}
				}
				return es
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
		{
			name:   "a legacy symlink leading out of the archive",
			link:   tar.TypeSymlink,
			breakf: relinkFirst("../../../../../../etc/passwd"),
			want:   []error{pin.ErrBlob},
			msg:    "not a file in the archive",
		},
		{
			name:   "a legacy symlink dangling",
			link:   tar.TypeSymlink,
			breakf: relinkFirst("nowhere"),
			want:   []error{pin.ErrBlob},
			msg:    "not a file in the archive",
		},
		{
			name: "legacy symlinks in a loop",
			link: tar.TypeSymlink,
			breakf: func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry {
				for i := range es {
					switch es[i].hdr.Name {
					case s.legacies[0]:
						es[i].hdr.Linkname = "../" + s.legacies[1]
					case s.legacies[1]:
						es[i].hdr.Linkname = "../" + s.legacies[0]
					}
				}
				return es
			},
			want: []error{pin.ErrBlob},
			msg:  "loop",
		},
		{
			name:   "a legacy symlink to a directory entry",
			link:   tar.TypeSymlink,
			breakf: relinkFirst("../blobs/sha256"),
			want:   []error{pin.ErrBlob},
			msg:    "not a file in the archive",
		},
		{
			name: "the config behind a symlink, another config",
			link: tar.TypeSymlink,
			breakf: func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry {
				// manifest.json names a link whose target's content is a
				// config with other diff_ids: refused by the layer check.
				other, _ := imageParts(t, randomImage(t, 50, 3))
				es = append(es, regEntry("blobs/sha256/other-config", other), symEntry("config.json", "blobs/sha256/other-config"))
				for i := range es {
					if es[i].hdr.Name == "manifest.json" {
						m, _ := json.Marshal([]dockerManifest{{Config: "config.json", Layers: s.legacies}})
						es[i].data = m
					}
				}
				return es
			},
			want: []error{pin.ErrBlob, digest.ErrMismatch},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSaveParts(t, img)
			a := newArchiveFix(t)
			a.setEntries(t, s.entries(t, tc.link))
			if _, err := a.resolve(ctx); err != nil {
				t.Fatalf("the fixture does not pin: %v", err)
			}
			a.setEntries(t, tc.breakf(t, s, s.entries(t, tc.link)))
			r, err := a.resolve(ctx)
			wantRefused(t, r, err, tc.want...)
			if tc.msg != "" {
				wantMessage(t, err, tc.msg)
			}
		})
	}
}

// An archive in which one name is two entries means different images to
// different readers: docker load extracts the archive, so the last entry
// wins; a reader that stops at the first match sees the first. Pinning
// must not bless one of them: the archive is refused (or the bytes a
// loader would use are the ones checked).
func TestArchiveDuplicateEntries(t *testing.T) {
	ctx := context.Background()
	img := randomImage(t, 2, 2)
	t.Run("a layer blob twice, the last one changed", func(t *testing.T) {
		s := newSaveParts(t, img)
		es := s.entries(t, 0)
		es = append(es, regEntry(s.blobs[0], flipByte(s.layers[0], 700)))
		a := newArchiveFix(t)
		a.setEntries(t, es)
		r, err := a.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob)
	})
	t.Run("the config twice, the last one another image's", func(t *testing.T) {
		s := newSaveParts(t, img)
		es := s.entries(t, 0)
		var doc map[string]any
		if err := json.Unmarshal(s.cfg, &doc); err != nil {
			t.Fatal(err)
		}
		doc["author"] = "someone else" // same diff_ids, other image ID
		other, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, regEntry(s.cfgName, other))
		a := newArchiveFix(t)
		a.setEntries(t, es)
		r, err := a.resolve(ctx)
		if err == nil && r.Digest == digest.FromBytes(other) {
			return // the config a loader uses is the one pinned: fine
		}
		wantRefused(t, r, err)
	})
	t.Run("manifest.json twice, the last naming another image", func(t *testing.T) {
		s := newSaveParts(t, img)
		o := newSaveParts(t, randomImage(t, 60, 1))
		es := s.entries(t, 0)
		es = append(es, regEntry(o.cfgName, o.cfg), regEntry(o.blobs[0], o.layers[0]))
		m, err := json.Marshal([]dockerManifest{{Config: o.cfgName, Layers: o.blobs}})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, regEntry("manifest.json", m))
		a := newArchiveFix(t)
		a.setEntries(t, es)
		r, err := a.resolve(ctx)
		if err == nil && r.Digest == digest.FromBytes(o.cfg) {
			return // the image a loader loads is the one pinned: fine
		}
		wantRefused(t, r, err)
	})
	t.Run("a legacy path both a symlink and a regular entry", func(t *testing.T) {
		s := newSaveParts(t, img)
		es := s.entries(t, tar.TypeSymlink)
		// After the link, a regular entry of the same name with other
		// bytes: extracted, the file replaces the link.
		es = append(es, regEntry(s.legacies[0], flipByte(s.layers[0], 700)))
		a := newArchiveFix(t)
		a.setEntries(t, es)
		r, err := a.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob)
	})
}

// A symlink entry's absolute target is resolved from the archive's root,
// as docker load resolves it (it follows links scoped to the folder it
// extracted the archive to), not from the link's own folder.
func TestArchiveAbsoluteSymlink(t *testing.T) {
	ctx := context.Background()
	img := randomImage(t, 2, 2)
	t.Run("to the right blob", func(t *testing.T) {
		s := newSaveParts(t, img)
		es := s.entries(t, tar.TypeSymlink)
		for i := range es {
			if es[i].hdr.Name == s.legacies[0] {
				es[i].hdr.Linkname = "/" + s.blobs[0]
			}
		}
		a := newArchiveFix(t)
		a.setEntries(t, es)
		r, err := a.resolve(ctx)
		if err != nil && !errors.Is(err, pin.ErrBlob) {
			t.Fatalf("an absolute link to the right blob: %v", err)
		}
		if err == nil && r.Digest.String() != mustHash(t, img.ConfigName).String() {
			t.Fatalf("pinned %s", r.Digest)
		}
	})
	t.Run("to a changed blob, a valid copy where a folder-relative reading lands", func(t *testing.T) {
		s := newSaveParts(t, img)
		es := s.entries(t, tar.TypeSymlink)
		dir := path.Dir(s.legacies[0])
		for i := range es {
			switch es[i].hdr.Name {
			case s.legacies[0]:
				es[i].hdr.Linkname = "/" + s.blobs[0]
			case s.blobs[0]:
				es[i].data = flipByte(es[i].data, 700) // what docker load reads
			}
		}
		es = append(es, regEntry(dir+"/"+s.blobs[0], s.layers[0])) // the valid bytes, elsewhere
		a := newArchiveFix(t)
		a.setEntries(t, es)
		r, err := a.resolve(ctx)
		wantRefused(t, r, err, pin.ErrBlob)
	})
}

// Files that are not regular, and paths out of the stack folder.
func TestArchiveFiles(t *testing.T) {
	ctx := context.Background()
	escapes := errPathEscapes(t)
	fresh := func(t *testing.T) *archiveFix {
		a := writeArchive(t, randomImage(t, 1, 2))
		if _, err := a.resolve(ctx); err != nil {
			t.Fatalf("the fixture does not pin: %v", err)
		}
		return a
	}
	t.Run("the archive a FIFO fails fast", func(t *testing.T) {
		a := fresh(t)
		mkfifo(t, a.path)
		r, err := within(t, 10*time.Second, unblockFIFO(a.path), func() (pin.Image, error) { return a.resolve(ctx) })
		wantRefused(t, r, err, readfile.ErrNotRegular)
	})
	t.Run("the archive a directory", func(t *testing.T) {
		a := fresh(t)
		if err := os.Remove(a.path); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(a.path, 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := a.resolve(ctx)
		wantRefused(t, r, err, readfile.ErrNotRegular)
	})
	t.Run("the archive a symlink to /dev/zero", func(t *testing.T) {
		a := fresh(t)
		symlink(t, "/dev/zero", a.path)
		r, err := within(t, 10*time.Second, nil, func() (pin.Image, error) { return a.resolve(ctx) })
		wantRefused(t, r, err, escapes)
	})
	t.Run("the archive a symlink to a valid copy out of the stack folder", func(t *testing.T) {
		a := fresh(t)
		outside := filepath.Join(t.TempDir(), "app.tar")
		writeFile(t, outside, readFile(t, a.path))
		symlink(t, outside, a.path)
		r, err := a.resolve(ctx)
		wantRefused(t, r, err, escapes)
	})
	t.Run("the archive path leads out of the stack folder", func(t *testing.T) {
		a := fresh(t)
		sub := filepath.Join(a.dir, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := pin.Resolve(ctx, sub, stack.Image{Name: "app", Archive: "../" + a.rel}, pin.Registry{})
		wantRefused(t, r, err, escapes)
	})
	t.Run("the archive a symlink inside the stack folder is followed", func(t *testing.T) {
		// Documented behaviour: a link that stays inside dir is followed.
		a := fresh(t)
		if err := os.Rename(a.path, filepath.Join(a.dir, "real.tar")); err != nil {
			t.Fatal(err)
		}
		symlink(t, "../real.tar", a.path)
		if _, err := a.resolve(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// ---------------------------------------------------------------------------
// Fuzzing index.json.

// FuzzLayoutIndex writes arbitrary bytes as index.json of an otherwise
// valid layout: Resolve must not panic, must refuse with pin.ErrImage, and
// may only succeed with the real manifest's digest.
func FuzzLayoutIndex(f *testing.F) {
	img := randomImage(f, 11, 2)
	base := writeLayout(f, img)
	want := mustHash(f, img.Digest)
	valid := readFile(f, base.indexPath())
	blobDir := filepath.Join(base.path, "blobs", "sha256")
	blobNames, err := os.ReadDir(blobDir)
	if err != nil {
		f.Fatal(err)
	}
	manifestSize := len(readFile(f, base.blob(base.manifest)))
	desc := func(mt, dg string, size any) []byte {
		b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{"mediaType": mt, "digest": dg, "size": size}}})
		return b
	}
	dm := string(types.DockerManifestSchema2)
	f.Add(valid)
	f.Add([]byte(""))
	f.Add([]byte("null"))
	f.Add([]byte("{}"))
	f.Add([]byte("[]"))
	f.Add([]byte(`{"manifests":[null]}`))
	f.Add([]byte(`{"manifests":[{}]}`))
	f.Add(desc(dm, want.String(), manifestSize))
	f.Add(desc("", want.String(), manifestSize))
	f.Add(desc(string(types.OCIImageIndex), want.String(), manifestSize))
	f.Add(desc(dm, want.String(), manifestSize-1))
	f.Add(desc(dm, want.String(), -1))
	f.Add(desc(dm, want.String(), int64(1)<<62))
	f.Add(desc(dm, "sha512:"+strings.Repeat(want.Hex, 2), manifestSize))
	f.Add(desc(dm, "sha256:../../../../etc/passwd", manifestSize))
	f.Add(desc(dm, "sha256:"+strings.ToUpper(want.Hex), manifestSize))
	f.Add(desc(dm, base.layers[0].String(), manifestSize))
	f.Add(bytes.Replace(valid, []byte(`"manifests":[`), []byte(`"manifests":[{},`), 1))
	f.Fuzz(func(t *testing.T, index []byte) {
		dir := t.TempDir()
		lp := filepath.Join(dir, "img")
		dst := filepath.Join(lp, "blobs", "sha256")
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range blobNames {
			if err := os.Link(filepath.Join(blobDir, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				writeFile(t, filepath.Join(dst, e.Name()), readFile(t, filepath.Join(blobDir, e.Name())))
			}
		}
		writeFile(t, filepath.Join(lp, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
		writeFile(t, filepath.Join(lp, "index.json"), index)
		r, err := pin.Resolve(context.Background(), dir, stack.Image{Name: "fuzz", OCILayout: "img"}, pin.Registry{})
		if err != nil {
			if !errors.Is(err, pin.ErrImage) {
				t.Fatalf("error %q does not wrap pin.ErrImage", err)
			}
			return
		}
		if r.Digest.String() != want.String() {
			t.Fatalf("index.json %q pinned %s, the layout's only image is %s", index, r.Digest, want)
		}
	})
}

// ---------------------------------------------------------------------------
// docker 25+ archives also carry an OCI index.json, which a loader may read
// instead of manifest.json: both must describe the same image.

// withOCIIndex adds an OCI image manifest (config and the layer blobs, by
// their stored digests) and an index.json naming it; edit may change the
// manifest before it is written.
func (s *saveParts) withOCIIndex(t testing.TB, es []tarEntry, edit func(m *v1.Manifest), editIdx func(idx *v1.IndexManifest)) []tarEntry {
	t.Helper()
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: sha256Hash(s.cfg), Size: int64(len(s.cfg))}}
	for _, l := range s.layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: sha256Hash(l), Size: int64(len(l))})
	}
	if edit != nil {
		edit(&m)
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{MediaType: types.OCIManifestSchema1, Digest: sha256Hash(body), Size: int64(len(body))}}}
	if editIdx != nil {
		editIdx(&idx)
	}
	ij, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return append(es, regEntry("blobs/sha256/"+sha256Hash(body).Hex, body), regEntry("index.json", ij))
}

func TestArchiveIndexJSONMustAgree(t *testing.T) {
	img := randomImage(t, 7, 2)
	s := newSaveParts(t, img)
	want := mustHash(t, img.ConfigName)
	other := newSaveParts(t, randomImage(t, 8, 2))
	cases := []struct {
		name    string
		edit    func(m *v1.Manifest)
		editIdx func(idx *v1.IndexManifest)
		want    []error
	}{
		{"the same image", nil, nil, nil},
		{"another image's config", func(m *v1.Manifest) { m.Config.Digest = sha256Hash(other.cfg) }, nil, []error{pin.ErrBlob, digest.ErrMismatch}},
		{"another layer", func(m *v1.Manifest) { m.Layers[1].Digest = sha256Hash(other.layers[1]) }, nil, []error{pin.ErrBlob, digest.ErrMismatch}},
		{"a layer fewer", func(m *v1.Manifest) { m.Layers = m.Layers[:1] }, nil, []error{pin.ErrBlob}},
		{"a manifest blob that is not what index.json names", nil, func(idx *v1.IndexManifest) { idx.Manifests[0].Size++ }, []error{pin.ErrBlob}},
		{"two manifests", nil, func(idx *v1.IndexManifest) { idx.Manifests = append(idx.Manifests, idx.Manifests[0]) }, []error{pin.ErrImage}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newArchiveFix(t)
			a.setEntries(t, s.withOCIIndex(t, s.entries(t, tar.TypeSymlink), tc.edit, tc.editIdx))
			r, err := a.resolve(context.Background())
			if tc.want == nil {
				if err != nil || r.Digest.String() != want.String() {
					t.Fatalf("pinned %s, %v; want %s", r.Digest, err, want)
				}
				return
			}
			wantRefused(t, r, err, tc.want...)
		})
	}
}

// relinkFirst points the first layer's legacy link at target.
func relinkFirst(target string) func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry {
	return func(t *testing.T, s *saveParts, es []tarEntry) []tarEntry {
		for i := range es {
			if es[i].hdr.Name == s.legacies[0] {
				es[i].hdr.Linkname = target
			}
		}
		return es
	}
}

// setDescriptorField sets one field of index.json's manifest descriptor.
func setDescriptorField(key string, value any) func(t *testing.T, l *layoutFix) {
	return func(t *testing.T, l *layoutFix) {
		d := l.descriptor(t)
		d[key] = value
		l.setDescriptor(t, d)
	}
}

// A small layout whose index lists one manifest 64 times, which lists one
// 1 MiB layer 1024 times, is hashed once per blob: it pins at once instead
// of queueing 64 GiB of reads. (A guard against the fan-out only; it times
// nothing.)
func TestLayoutFanOutHashesEachBlobOnce(t *testing.T) {
	dir := t.TempDir()
	blobDir := filepath.Join(dir, "img", "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(data []byte) v1.Hash {
		h := sha256Hash(data)
		writeFile(t, filepath.Join(blobDir, h.Hex), data)
		return h
	}
	layer := bytes.Repeat([]byte{7}, 1<<20)
	lh := put(layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	ch := put(cfg)
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: ch, Size: int64(len(cfg))}}
	for range 1024 {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCILayer, Digest: lh, Size: int64(len(layer))})
	}
	mb, _ := json.Marshal(m)
	mh := put(mb)
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for range 64 {
		idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: mh, Size: int64(len(mb))})
	}
	ib, _ := json.Marshal(idx)
	ih := put(ib)
	top, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{{MediaType: types.OCIImageIndex, Digest: ih, Size: int64(len(ib))}}})
	writeFile(t, filepath.Join(dir, "img", "index.json"), top)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := pin.Resolve(ctx, dir, stack.Image{Name: "fan", OCILayout: "img"}, pin.Registry{})
	if err != nil || r.Digest.Hex() != ih.Hex {
		t.Fatalf("pinned %s, %v; want %s", r.Digest, err, ih)
	}
}

// An archive that an unpacking loader would read differently than pin
// reads it is refused: entries below a link to a folder (written through
// it, or replaced by it), or a hard link to a symbolic link (unpacked, the
// link resolves from the hard link's folder).
func TestArchiveLinkAliasesRefused(t *testing.T) {
	good, evil := randomImage(t, 1, 1), randomImage(t, 2, 1)
	gcfg, gl := imageParts(t, good)
	ecfg, el := imageParts(t, evil)
	m, _ := json.Marshal([]dockerManifest{{Config: "a/config.json", RepoTags: []string{"app:1"}, Layers: []string{"a/layer.tar"}}})
	for name, es := range map[string][]tarEntry{
		"folder link first, written through": {
			dirEntry("b/"), symEntry("a", "b"),
			regEntry("a/config.json", gcfg), regEntry("a/layer.tar", gl[0]),
			regEntry("b/config.json", ecfg), regEntry("b/layer.tar", el[0]),
			regEntry("manifest.json", m),
		},
		"folder link last, replacing the folder": {
			regEntry("a/config.json", gcfg), regEntry("a/layer.tar", gl[0]),
			regEntry("b/config.json", ecfg), regEntry("b/layer.tar", el[0]),
			symEntry("a", "b"),
			regEntry("manifest.json", m),
		},
		"hard link to a relative symbolic link": {
			dirEntry("d1/"), dirEntry("a/"),
			regEntry("d1/t", gcfg), regEntry("d1/u", gl[0]),
			regEntry("a/t", ecfg), regEntry("a/u", el[0]),
			symEntry("d1/s", "t"), symEntry("d1/v", "u"),
			hardEntry("a/config.json", "d1/s"), hardEntry("a/layer.tar", "d1/v"),
			regEntry("manifest.json", m),
		},
		"an entry below a file": {
			regEntry("a", []byte("a file")),
			regEntry("a/config.json", gcfg), regEntry("a/layer.tar", gl[0]),
			regEntry("manifest.json", m),
		},
	} {
		t.Run(name, func(t *testing.T) {
			a := newArchiveFix(t)
			a.setEntries(t, es)
			r, err := a.resolve(context.Background())
			wantRefused(t, r, err, pin.ErrImage, pin.ErrBlob)
		})
	}
}
