package pin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustgate/trustgate/digest"

	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/internal/safetext"
)

// Limits on what an image on disk may hold. Blobs (layers) are bounded by
// the size their descriptor gives and by the file itself, which must be a
// regular file; the documents that are read into memory are bounded here.
const (
	MaxManifestSize = 4 << 20 // an index, a manifest, a config, manifest.json
	maxChildren     = 64      // manifests in one index
	maxIndexDepth   = 2       // an index of indexes of manifests at most
	maxLayers       = 1024    // layers in one image
)

// ErrBlob means a blob of an image on disk is missing, of another size, or has
// another digest than its descriptor says.
var ErrBlob = errors.New("image blob does not match its descriptor")

// layoutImage pins the one image of the OCI layout in folder dir of root.
// Nothing is taken on trust: the manifest (or index) is hashed and checked
// against the digest index.json gives it, and every blob it reaches
// (child manifests, the config, every layer) against its descriptor's
// digest and size, as crane validate does. Every file is read inside the
// layout's folder, regular files only, bounded.
func layoutImage(ctx context.Context, root *os.Root, dir string) (Image, error) {
	sub, err := root.OpenRoot(dir)
	if err != nil {
		return Image{}, err
	}
	defer sub.Close()
	raw, err := readfile.ReadIn(sub, "index.json", MaxManifestSize)
	if err != nil {
		return Image{}, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return Image{}, errors.New("index.json is not an OCI image index")
	}
	if len(idx.Manifests) != 1 {
		return Image{}, fmt.Errorf("the layout holds %d manifests; trustgate reads a layout with exactly one", len(idx.Manifests))
	}
	b := blobs{ctx: ctx, root: sub, checked: map[blobKey]digest.Digest{}}
	desc := idx.Manifests[0]
	config, err := b.manifest(desc, 0)
	if err != nil {
		return Image{}, err
	}
	d, err := digest.Parse(desc.Digest.String())
	if err != nil {
		return Image{}, err
	}
	return Image{Digest: d, Config: config}, nil
}

// blobs reads and checks the blobs of one OCI layout. Each blob is read
// once, however many descriptors reach it: an index of the same manifest
// 64 times, of a manifest listing the same layer 1024 times, costs one read
// of each, not 65,536.
type blobs struct {
	ctx     context.Context
	root    *os.Root
	checked map[blobKey]digest.Digest // config digest, for a manifest
}

// blobKey is what a check vouched for: the blob's digest and size, and for
// a manifest the media type it was read as.
type blobKey struct {
	mediaType types.MediaType
	digest    v1.Hash
	size      int64
}

// manifest checks the manifest or index desc names and everything it
// reaches. It returns an image manifest's config digest (zero for an
// index).
func (b blobs) manifest(desc v1.Descriptor, depth int) (digest.Digest, error) {
	key := blobKey{desc.MediaType, desc.Digest, desc.Size}
	if config, ok := b.checked[key]; ok {
		return config, nil
	}
	config, err := b.readManifest(desc, depth)
	if err == nil {
		b.checked[key] = config
	}
	return config, err
}

func (b blobs) readManifest(desc v1.Descriptor, depth int) (digest.Digest, error) {
	if desc.Size < 0 || desc.Size > MaxManifestSize {
		return digest.Digest{}, fmt.Errorf("manifest %s: %d bytes, limit %d", desc.Digest, desc.Size, MaxManifestSize)
	}
	raw, err := b.read(desc)
	if err != nil {
		return digest.Digest{}, err
	}
	var head struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
		Layers    json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return digest.Digest{}, fmt.Errorf("manifest %s is not JSON", desc.Digest)
	}
	// The media type field is optional in a manifest, so the document's
	// shape must agree with what it is read as: an index lists manifests
	// and has no config or layers, an image manifest the other way round.
	// Otherwise an untyped manifest (or a config) called an index would be
	// read as an empty index and its blobs never opened.
	isIndex := head.Manifests != nil && head.Config == nil && head.Layers == nil
	isImage := head.Manifests == nil && head.Config != nil
	mt := desc.MediaType
	switch {
	case mt == "":
		mt = head.MediaType
	case head.MediaType != "" && head.MediaType != mt:
		// One blob read as two kinds of document is refused.
		return digest.Digest{}, fmt.Errorf("manifest %s says it is %s, its descriptor %s", desc.Digest, head.MediaType, mt)
	}
	switch {
	case mt.IsIndex() && !isIndex, mt.IsImage() && !isImage:
		return digest.Digest{}, fmt.Errorf("manifest %s is called %s, and is not shaped as one", desc.Digest, mt)
	case mt.IsIndex():
		if depth >= maxIndexDepth {
			return digest.Digest{}, fmt.Errorf("manifest %s: indexes nested deeper than %d", desc.Digest, maxIndexDepth)
		}
		var idx v1.IndexManifest
		if err := json.Unmarshal(raw, &idx); err != nil {
			return digest.Digest{}, fmt.Errorf("manifest %s is not an image index", desc.Digest)
		}
		if len(idx.Manifests) == 0 {
			return digest.Digest{}, fmt.Errorf("index %s lists no manifest", desc.Digest)
		}
		if len(idx.Manifests) > maxChildren {
			return digest.Digest{}, fmt.Errorf("index %s lists %d manifests, limit %d", desc.Digest, len(idx.Manifests), maxChildren)
		}
		for _, child := range idx.Manifests {
			if _, err := b.manifest(child, depth+1); err != nil {
				return digest.Digest{}, err
			}
		}
		return digest.Digest{}, nil
	case mt.IsImage():
		var m v1.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return digest.Digest{}, fmt.Errorf("manifest %s is not an image manifest", desc.Digest)
		}
		if len(m.Layers) > maxLayers {
			return digest.Digest{}, fmt.Errorf("manifest %s lists %d layers, limit %d", desc.Digest, len(m.Layers), maxLayers)
		}
		if m.Config.Size > MaxManifestSize {
			return digest.Digest{}, fmt.Errorf("config %s: %d bytes, limit %d", m.Config.Digest, m.Config.Size, MaxManifestSize)
		}
		for _, blob := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if err := b.check(blob); err != nil {
				return digest.Digest{}, err
			}
		}
		return digest.Parse(m.Config.Digest.String())
	}
	return digest.Digest{}, fmt.Errorf("manifest %s: media type %q is not an image manifest or index", desc.Digest, safetext.Clip(string(mt), 80))
}

// read reads a small blob whole and checks it.
func (b blobs) read(desc v1.Descriptor) ([]byte, error) {
	f, err := b.open(desc)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, desc.Size+1))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return data, matches(desc, int64(len(data)), hex.EncodeToString(sum[:]))
}

// check streams a blob through SHA-256 and checks it, once per digest and
// size.
func (b blobs) check(desc v1.Descriptor) error {
	key := blobKey{"", desc.Digest, desc.Size}
	if _, ok := b.checked[key]; ok {
		return nil
	}
	if err := b.hash(desc); err != nil {
		return err
	}
	b.checked[key] = digest.Digest{}
	return nil
}

func (b blobs) hash(desc v1.Descriptor) error {
	f, err := b.open(desc)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := copyCtx(b.ctx, h, io.LimitReader(f, desc.Size+1))
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return matches(desc, n, hexSum(h))
}

// open opens the blob file desc names, a regular file inside the layout.
func (b blobs) open(desc v1.Descriptor) (*os.File, error) {
	if desc.Digest.Algorithm != "sha256" || len(desc.Digest.Hex) != 64 {
		return nil, fmt.Errorf("%w: descriptor digest %q is not sha256", ErrBlob, safetext.Clip(desc.Digest.String(), 80))
	}
	if _, err := hex.DecodeString(desc.Digest.Hex); err != nil {
		return nil, fmt.Errorf("%w: descriptor digest is not hex", ErrBlob)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("%w: blob %s has a negative size", ErrBlob, desc.Digest)
	}
	f, err := readfile.OpenIn(b.root, path.Join("blobs", "sha256", desc.Digest.Hex))
	if err != nil {
		return nil, fmt.Errorf("%w: blob %s: %w", ErrBlob, desc.Digest, err)
	}
	return f, nil
}

func matches(desc v1.Descriptor, size int64, sum string) error {
	if size != desc.Size {
		return fmt.Errorf("%w: blob %s is not %d bytes", ErrBlob, desc.Digest, desc.Size)
	}
	if sum != desc.Digest.Hex {
		return fmt.Errorf("%w: blob %s has digest sha256:%s: %w", ErrBlob, desc.Digest, sum, digest.ErrMismatch)
	}
	return nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// copyCtx copies src to dst, stopping when ctx is done.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
