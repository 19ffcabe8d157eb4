package pin

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/trustgate/trustgate/digest"

	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/internal/safetext"
)

// Limits on a docker-save archive.
const (
	maxArchiveEntries = 100000
	// MaxLayerSize bounds a layer once decompressed, so that a small
	// compressed layer cannot keep the verifier busy for ever.
	MaxLayerSize = 64 << 30
)

// archiveImage pins the one image of a docker-save archive at name in
// root. Such an archive has no registry manifest, so the image is pinned by
// its config digest (its image ID), and the config is bound to the bytes
// of every layer: the SHA-256 of the config is computed, never taken from
// a file name, and each layer's uncompressed SHA-256 must be the diff ID
// the config lists for it, in order.
func archiveImage(ctx context.Context, root *os.Root, name string) (Image, error) {
	a := archive{ctx: ctx, root: root, name: name}
	if err := a.catalog(); err != nil {
		return Image{}, err
	}
	raw, err := a.readEntry("manifest.json")
	if err != nil {
		return Image{}, err
	}
	var m []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return Image{}, errors.New("manifest.json is not a docker-save manifest")
	}
	if len(m) != 1 {
		return Image{}, fmt.Errorf("the archive holds %d images; trustgate reads an archive with exactly one", len(m))
	}
	if len(m[0].Layers) > maxLayers {
		return Image{}, fmt.Errorf("the image has %d layers, limit %d", len(m[0].Layers), maxLayers)
	}
	config, err := a.readEntry(m[0].Config)
	if err != nil {
		return Image{}, err
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return Image{}, errors.New("the image config is not JSON")
	}
	if len(cfg.RootFS.DiffIDs) != len(m[0].Layers) {
		return Image{}, fmt.Errorf("%w: the config lists %d layers, manifest.json %d", ErrBlob, len(cfg.RootFS.DiffIDs), len(m[0].Layers))
	}
	sums, err := a.layerSums(m[0].Layers)
	if err != nil {
		return Image{}, err
	}
	for i, want := range cfg.RootFS.DiffIDs {
		if sums[i].diffID != want {
			return Image{}, fmt.Errorf("%w: layer %d has diff ID %s, the config says %s: %w", ErrBlob, i, sums[i].diffID, safetext.Clip(want, 80), digest.ErrMismatch)
		}
	}
	d := digest.FromBytes(config)
	if err := a.sameOCIImage(d, sums); err != nil {
		return Image{}, err
	}
	return Image{Digest: d, Config: d}, nil
}

// sameOCIImage checks the archive's index.json, when it has one (docker 25
// and later write both): a loader that reads it instead of manifest.json
// must get the same image. It must name exactly one image manifest, whose
// blob has the digest it is given, whose config is the one pinned, and
// whose layers are, in order, the very blobs manifest.json lists.
func (a archive) sameOCIImage(config digest.Digest, layers []layerSum) error {
	if a.cat.count["index.json"] == 0 {
		return nil
	}
	raw, err := a.readEntry("index.json")
	if err != nil {
		return err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 1 || !idx.Manifests[0].MediaType.IsImage() {
		return errors.New("the archive's index.json does not name exactly one image manifest")
	}
	desc := idx.Manifests[0]
	if desc.Digest.Algorithm != "sha256" || desc.Size < 0 || desc.Size > MaxManifestSize {
		return fmt.Errorf("%w: index.json names a manifest by %q", ErrBlob, safetext.Clip(desc.Digest.String(), 80))
	}
	body, err := a.readEntry(path.Join("blobs", "sha256", desc.Digest.Hex))
	if err != nil {
		return err
	}
	if got := digest.FromBytes(body); got.Hex() != desc.Digest.Hex || int64(len(body)) != desc.Size {
		return fmt.Errorf("%w: index.json's manifest has digest %s: %w", ErrBlob, got, digest.ErrMismatch)
	}
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return errors.New("the archive's index.json names no image manifest")
	}
	if m.Config.Digest.String() != config.String() {
		return fmt.Errorf("%w: index.json's image has config %s, manifest.json's %s: %w", ErrBlob, safetext.Clip(m.Config.Digest.String(), 80), config, digest.ErrMismatch)
	}
	if len(m.Layers) != len(layers) {
		return fmt.Errorf("%w: index.json's image has %d layers, manifest.json's %d", ErrBlob, len(m.Layers), len(layers))
	}
	for i, l := range m.Layers {
		if l.Digest.String() != layers[i].raw || l.Size != layers[i].size {
			return fmt.Errorf("%w: layer %d of index.json's image is not layer %d of manifest.json's: %w", ErrBlob, i, i, digest.ErrMismatch)
		}
	}
	return nil
}

// archive reads entries of one tar file inside root.
type archive struct {
	ctx  context.Context
	root *os.Root
	name string
	cat  catalog
}

// catalog is what the archive's headers say: how many entries each name
// has (of any type), and where each link entry points.
type catalog struct {
	count map[string]int
	link  map[string]string
	typ   map[string]byte // the tar type of each name (the last, when twice)
}

// catalog reads every header once. Link targets are names inside the
// archive: a relative target is resolved from the link's folder, an
// absolute one from the archive's root (as an unpacking loader does), and
// neither can lead out.
func (a *archive) catalog() error {
	f, err := readfile.OpenIn(a.root, a.name)
	if err != nil {
		return err
	}
	defer f.Close()
	a.cat = catalog{count: map[string]int{}, link: map[string]string{}, typ: map[string]byte{}}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		if n >= maxArchiveEntries {
			return fmt.Errorf("more than %d entries in the archive", maxArchiveEntries)
		}
		if err := a.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return a.cat.check()
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		name := clean(h.Name)
		a.cat.count[name]++
		a.cat.typ[name] = h.Typeflag
		switch h.Typeflag {
		case tar.TypeSymlink:
			target := h.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			a.cat.link[name] = clean(target)
		case tar.TypeLink:
			a.cat.link[name] = clean(h.Linkname)
		}
	}
}

// check refuses an archive whose names a loader that unpacks it would
// resolve differently than trustgate reads them: an entry below a link or
// below a file (unpacked, a folder link makes "a/config.json" another
// entry's bytes), or a hard link to a symbolic link (unpacked, the link is
// copied beside the hard link and resolves from there).
func (c catalog) check() error {
	for name := range c.typ {
		for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if t, ok := c.typ[dir]; ok && t != tar.TypeDir {
				return fmt.Errorf("%w: %q lies below %q, which is not a folder", ErrBlob, safetext.Clip(name, 80), safetext.Clip(dir, 80))
			}
		}
		if c.typ[name] == tar.TypeLink && c.typ[c.link[name]] == tar.TypeSymlink {
			return fmt.Errorf("%w: %q is a hard link to a symbolic link", ErrBlob, safetext.Clip(name, 80))
		}
	}
	return nil
}

// resolve follows links from name to the name of the entry that holds its
// bytes. Every name on the way must be in the archive once: with two
// entries of one name, loaders disagree on which one counts (the last one
// unpacked, or the first one found), so neither may be pinned.
func (c catalog) resolve(name string) (string, error) {
	for hops := 0; ; hops++ {
		if c.count[name] > 1 {
			return "", fmt.Errorf("%w: %q is in the archive %d times", ErrBlob, safetext.Clip(name, 80), c.count[name])
		}
		t, ok := c.link[name]
		if !ok {
			return name, nil
		}
		if hops > 8 {
			return "", fmt.Errorf("%w: links in the archive loop", ErrBlob)
		}
		name = t
	}
}

// scan finds the regular entry that holds each of names (following links
// inside the archive) and calls visit once on each such entry. It returns
// the entry each name resolved to.
func (a archive) scan(names []string, visit func(entry string, r io.Reader) error) (map[string]string, error) {
	entryOf := map[string]string{}
	pending := map[string]bool{}
	for _, n := range names {
		t, err := a.cat.resolve(clean(n))
		if err != nil {
			return nil, err
		}
		entryOf[n], pending[t] = t, true
	}
	f, err := readfile.OpenIn(a.root, a.name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for seen := 0; len(pending) > 0; seen++ {
		if seen >= maxArchiveEntries {
			return nil, fmt.Errorf("more than %d entries in the archive", maxArchiveEntries)
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		name := clean(h.Name)
		if !pending[name] || h.Typeflag != tar.TypeReg {
			continue
		}
		delete(pending, name)
		if err := visit(name, tr); err != nil {
			return nil, err
		}
	}
	for n := range pending {
		return nil, fmt.Errorf("%w: %q is not a file in the archive", ErrBlob, safetext.Clip(n, 80))
	}
	return entryOf, nil
}

func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// readEntry reads one small entry whole.
func (a archive) readEntry(name string) ([]byte, error) {
	var out []byte
	_, err := a.scan([]string{name}, func(_ string, r io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(r, MaxManifestSize+1))
		if err != nil {
			return err
		}
		if len(b) > MaxManifestSize {
			return fmt.Errorf("%q in the archive: larger than %d bytes", safetext.Clip(name, 80), MaxManifestSize)
		}
		out = b
		return nil
	})
	return out, err
}

// layerSum is what one layer entry hashes to: its bytes as stored
// ("sha256:<hex>" and size), and its uncompressed tar (the diff ID).
type layerSum struct {
	raw    string
	size   int64
	diffID string
}

// layerSums hashes each layer, in one pass over the archive.
func (a archive) layerSums(layers []string) ([]layerSum, error) {
	got := map[string]layerSum{}
	entryOf, err := a.scan(layers, func(entry string, r io.Reader) error {
		s, err := a.sum(r)
		if err != nil {
			return fmt.Errorf("layer %q: %w", safetext.Clip(entry, 80), err)
		}
		got[entry] = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]layerSum, len(layers))
	for i, l := range layers {
		out[i] = got[entryOf[l]]
	}
	return out, nil
}

// sum hashes a layer as stored and as an uncompressed tarball,
// decompressing it first when it is gzip, at most MaxLayerSize bytes of it.
func (a archive) sum(r io.Reader) (layerSum, error) {
	stored := sha256.New()
	counted := &countingWriter{w: stored}
	br := bufio.NewReader(io.TeeReader(r, counted))
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return layerSum{}, err
		}
		defer zr.Close()
		src = zr
	}
	h := sha256.New()
	n, err := copyCtx(a.ctx, h, io.LimitReader(src, MaxLayerSize+1))
	if err != nil {
		return layerSum{}, err
	}
	if n > MaxLayerSize {
		return layerSum{}, fmt.Errorf("larger than %d bytes uncompressed", int64(MaxLayerSize))
	}
	// Whatever gzip left unread (padding, a second member) is part of the
	// stored bytes too.
	if _, err := copyCtx(a.ctx, io.Discard, br); err != nil {
		return layerSum{}, err
	}
	return layerSum{raw: "sha256:" + hexSum(stored), size: counted.n, diffID: "sha256:" + hexSum(h)}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}
