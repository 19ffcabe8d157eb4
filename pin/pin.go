// Package pin resolves the container images a stack manifest names to the
// exact digest they have now, from a registry reference, an OCI layout or a
// docker-save archive, with go-containerregistry (and nothing heavier, so
// that the verifier and the gateway can link it).
package pin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/stack"
)

// ErrImage: an image could not be read or pinned.
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
	// Path is the absolute path of a layout or archive.
	Path string
}

// Resolve pins im, whose layout or archive paths are relative to dir.
// A registry reference is read once: a tag is resolved to the digest it has
// now, and a digest reference must be served as that digest.
func Resolve(ctx context.Context, dir string, im stack.Image, opts ...remote.Option) (Image, error) {
	r, err := resolve(ctx, dir, im, opts)
	if err != nil {
		return Image{}, fmt.Errorf("%w %q: %w", ErrImage, im.Name, err)
	}
	return r, nil
}

func resolve(ctx context.Context, dir string, im stack.Image, opts []remote.Option) (Image, error) {
	switch {
	case im.OCILayout != "":
		abs := filepath.Join(dir, filepath.FromSlash(im.OCILayout))
		idx, err := layout.ImageIndexFromPath(abs)
		if err != nil {
			return Image{}, fmt.Errorf("reading OCI layout %q: %w", im.OCILayout, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return Image{}, fmt.Errorf("reading OCI layout %q: %w", im.OCILayout, err)
		}
		if len(m.Manifests) != 1 {
			return Image{}, fmt.Errorf("OCI layout %q holds %d manifests; trustgate reads a layout with exactly one", im.OCILayout, len(m.Manifests))
		}
		d, err := digest.Parse(m.Manifests[0].Digest.String())
		if err != nil {
			return Image{}, err
		}
		r := Image{Digest: d, Source: SourceOCILayout, Path: abs}
		if img, err := idx.Image(m.Manifests[0].Digest); err == nil {
			if cd, err := img.ConfigName(); err == nil {
				r.Config, _ = digest.Parse(cd.String())
			}
		}
		return r, nil
	case im.Archive != "":
		abs := filepath.Join(dir, filepath.FromSlash(im.Archive))
		img, err := tarball.ImageFromPath(abs, nil)
		if err != nil {
			return Image{}, fmt.Errorf("reading image archive %q: %w", im.Archive, err)
		}
		cd, err := img.ConfigName()
		if err != nil {
			return Image{}, fmt.Errorf("reading image archive %q: %w", im.Archive, err)
		}
		d, err := digest.Parse(cd.String())
		if err != nil {
			return Image{}, err
		}
		return Image{Digest: d, Config: d, Source: SourceArchive, Path: abs}, nil
	default:
		ref, err := name.ParseReference(im.Ref, name.StrictValidation)
		if err != nil {
			return Image{}, err
		}
		opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
		desc, err := remote.Get(ref, opts...)
		if err != nil {
			return Image{}, fmt.Errorf("resolving image %q: %w", im.Ref, err)
		}
		d, err := digest.Parse(desc.Digest.String())
		if err != nil {
			return Image{}, err
		}
		if dg, ok := ref.(name.Digest); ok && dg.DigestStr() != d.String() {
			return Image{}, fmt.Errorf("registry served %s for a reference pinned to %s: %w", d, dg.DigestStr(), digest.ErrMismatch)
		}
		r := Image{Digest: d, Source: SourceRef, Repo: ref.Context().Name()}
		if img, err := desc.Image(); err == nil {
			if cd, err := img.ConfigName(); err == nil {
				r.Config, _ = digest.Parse(cd.String())
			}
		}
		return r, nil
	}
}
