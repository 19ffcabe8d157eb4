// Package pin resolves the container images a stack manifest names to the
// exact digest they have now, from a registry reference, an OCI layout or a
// docker-save archive, with go-containerregistry (and nothing heavier, so
// that the verifier and the gateway can link it).
package pin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/stack"
)

// ErrImage means an image could not be read or pinned.
var ErrImage = errors.New("image")

// Sources of an image.
const (
	SourceRef       = "ref"
	SourceOCILayout = "ociLayout"
	SourceArchive   = "archive"
)

// Image is an image pinned to a digest.
type Image struct {
	// Digest is the manifest (or index) digest; for a docker-save archive,
	// which has no registry manifest, the config digest (the image ID).
	Digest digest.Digest
	// Config is the config digest, when known.
	Config digest.Digest
	// Source is SourceRef, SourceOCILayout or SourceArchive.
	Source string
	// Repo is the repository of a registry reference.
	Repo string
	// Ref is a registry image by the digest it was pinned to: later calls
	// (listing its attestations) use it, never the tag again.
	Ref name.Digest
	// Tag is, for a registry reference that names a tag and no digest,
	// the reference: Digest is what the tag points to now, and a runtime
	// that resolves the tag later may get other bytes.
	Tag string
	// Path is the absolute path of a layout or archive.
	Path string
}

// Resolve pins im, whose layout or archive paths are relative to dir (and
// are read inside it: no link leads out). A layout's or archive's every
// blob is hashed and checked (see layoutImage and archiveImage); a
// registry reference is read once: a tag is resolved to the digest it has
// now, and a digest reference must be served as that digest.
func Resolve(ctx context.Context, dir string, im stack.Image, reg Registry) (Image, error) {
	r, err := resolve(ctx, dir, im, reg)
	if err != nil {
		return Image{}, fmt.Errorf("%w %q: %w", ErrImage, im.Name, err)
	}
	return r, nil
}

func resolve(ctx context.Context, dir string, im stack.Image, reg Registry) (Image, error) {
	if im.OCILayout != "" || im.Archive != "" {
		root, err := os.OpenRoot(dir)
		if err != nil {
			return Image{}, err
		}
		defer root.Close()
		rel := filepath.FromSlash(im.OCILayout + im.Archive)
		var r Image
		if im.OCILayout != "" {
			r, err = layoutImage(ctx, root, rel)
			r.Source = SourceOCILayout
		} else {
			r, err = archiveImage(ctx, root, rel)
			r.Source = SourceArchive
		}
		if err != nil {
			return Image{}, fmt.Errorf("reading %s %q: %w", r.Source, im.OCILayout+im.Archive, err)
		}
		r.Path = filepath.Join(dir, rel)
		return r, nil
	}
	ref, desc, pinned, err := reg.Reference(ctx, im.Ref)
	if err != nil {
		return Image{}, err
	}
	d, err := digest.Parse(pinned.DigestStr())
	if err != nil {
		return Image{}, err
	}
	r := Image{Digest: d, Source: SourceRef, Repo: ref.Context().Name(), Ref: pinned}
	if _, ok := ref.(name.Digest); !ok {
		r.Tag = im.Ref
	}
	if desc.MediaType.IsImage() {
		// The config digest, from the manifest already read and hashed.
		if m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest)); err == nil {
			r.Config, _ = digest.Parse(m.Config.Digest.String())
		}
	}
	return r, nil
}
