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

	"github.com/trustgate/trustgate/digest"

	"github.com/trustgate/trustgate/internal/readfile"
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
	diffs, err := a.diffIDs(m[0].Layers)
	if err != nil {
		return Image{}, err
	}
	for i, want := range cfg.RootFS.DiffIDs {
		if diffs[i] != want {
			return Image{}, fmt.Errorf("%w: layer %d has diff ID %s, the config says %s: %w", ErrBlob, i, diffs[i], clipText(want), digest.ErrMismatch)
		}
	}
	d := digest.FromBytes(config)
	return Image{Digest: d, Config: d}, nil
}

// archive reads entries of one tar file inside root.
type archive struct {
	ctx  context.Context
	root *os.Root
	name string
}

// scan finds the regular entry that holds each of names (following links
// inside the archive) and calls visit once on each such entry. It returns
// the entry each name resolved to.
func (a archive) scan(names []string, visit func(entry string, r io.Reader) error) (map[string]string, error) {
	links, err := a.links()
	if err != nil {
		return nil, err
	}
	entryOf := map[string]string{}
	pending := map[string]bool{}
	for _, n := range names {
		t, err := resolveLink(clean(n), links)
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
		return nil, fmt.Errorf("%w: %q is not a file in the archive", ErrBlob, clipText(n))
	}
	return entryOf, nil
}

// links maps each link entry of the archive (symbolic or hard) to its
// target's name, so that a docker save whose legacy paths are links to
// blobs reads the same bytes.
func (a archive) links() (map[string]string, error) {
	f, err := readfile.OpenIn(a.root, a.name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		if n >= maxArchiveEntries {
			return nil, fmt.Errorf("more than %d entries in the archive", maxArchiveEntries)
		}
		if err := a.ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			out[clean(h.Name)] = clean(path.Join(path.Dir(clean(h.Name)), h.Linkname))
		case tar.TypeLink:
			out[clean(h.Name)] = clean(h.Linkname)
		}
	}
}

// resolveLink follows links from name to a regular entry's name.
func resolveLink(name string, links map[string]string) (string, error) {
	for hops := 0; ; hops++ {
		t, ok := links[name]
		if !ok {
			return name, nil
		}
		if hops > 8 {
			return "", fmt.Errorf("%w: links in the archive loop", ErrBlob)
		}
		name = t
	}
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
			return fmt.Errorf("%q in the archive: larger than %d bytes", clipText(name), MaxManifestSize)
		}
		out = b
		return nil
	})
	return out, err
}

// diffIDs returns the uncompressed SHA-256 of each layer, as
// "sha256:<hex>", in one pass over the archive.
func (a archive) diffIDs(layers []string) ([]string, error) {
	got := map[string]string{}
	entryOf, err := a.scan(layers, func(entry string, r io.Reader) error {
		d, err := a.uncompressedSum(r)
		if err != nil {
			return fmt.Errorf("layer %q: %w", clipText(entry), err)
		}
		got[entry] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(layers))
	for i, l := range layers {
		out[i] = got[entryOf[l]]
	}
	return out, nil
}

// uncompressedSum hashes a layer tarball, decompressing it first when it
// is gzip, at most MaxLayerSize bytes of it.
func (a archive) uncompressedSum(r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", err
		}
		defer zr.Close()
		src = zr
	}
	h := sha256.New()
	n, err := copyCtx(a.ctx, h, io.LimitReader(src, MaxLayerSize+1))
	if err != nil {
		return "", err
	}
	if n > MaxLayerSize {
		return "", fmt.Errorf("larger than %d bytes uncompressed", int64(MaxLayerSize))
	}
	return "sha256:" + hexSum(h), nil
}
