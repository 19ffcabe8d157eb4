package sbom

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/anchore/packageurl-go"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/stack"
)

// resolvedImage is an image pinned to a digest, and how syft should read
// exactly that image.
type resolvedImage struct {
	digest digest.Digest // manifest (or index) digest; the config digest for a docker save archive
	config digest.Digest // config digest, when known
	source string        // ref, ociLayout or archive
	repo   string        // repository, for a registry reference
	syft   syftSource
}

// resolve pins im to a digest with go-containerregistry. Its errors wrap ErrImage.
func (g *generator) resolve(ctx context.Context, im stack.Image) (resolvedImage, error) {
	r, err := g.resolveImage(ctx, im)
	if err != nil {
		return resolvedImage{}, fmt.Errorf("%w %q: %w", ErrImage, im.Name, err)
	}
	return r, nil
}

func (g *generator) resolveImage(ctx context.Context, im stack.Image) (resolvedImage, error) {
	switch {
	case im.OCILayout != "":
		abs := filepath.Join(g.s.Source.Dir, filepath.FromSlash(im.OCILayout))
		idx, err := layout.ImageIndexFromPath(abs)
		if err != nil {
			return resolvedImage{}, fmt.Errorf("reading OCI layout %q: %w", im.OCILayout, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return resolvedImage{}, fmt.Errorf("reading OCI layout %q: %w", im.OCILayout, err)
		}
		if len(m.Manifests) != 1 {
			return resolvedImage{}, fmt.Errorf("OCI layout %q holds %d manifests; trustgate inventories a layout with exactly one", im.OCILayout, len(m.Manifests))
		}
		d, err := digest.Parse(m.Manifests[0].Digest.String())
		if err != nil {
			return resolvedImage{}, err
		}
		r := resolvedImage{digest: d, source: "ociLayout", syft: syftSource{"oci-dir", abs}}
		if img, err := idx.Image(m.Manifests[0].Digest); err == nil {
			if cd, err := img.ConfigName(); err == nil {
				r.config, _ = digest.Parse(cd.String())
			}
		}
		return r, nil
	case im.Archive != "":
		abs := filepath.Join(g.s.Source.Dir, filepath.FromSlash(im.Archive))
		img, err := tarball.ImageFromPath(abs, nil)
		if err != nil {
			return resolvedImage{}, fmt.Errorf("reading image archive %q: %w", im.Archive, err)
		}
		cd, err := img.ConfigName()
		if err != nil {
			return resolvedImage{}, fmt.Errorf("reading image archive %q: %w", im.Archive, err)
		}
		// A docker save archive has no registry manifest; its stable
		// identity is the config digest (the image ID).
		d, err := digest.Parse(cd.String())
		if err != nil {
			return resolvedImage{}, err
		}
		return resolvedImage{digest: d, config: d, source: "archive", syft: syftSource{"docker-archive", abs}}, nil
	default:
		ref, err := name.ParseReference(im.Ref, name.StrictValidation)
		if err != nil {
			return resolvedImage{}, err
		}
		opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, g.opts.RemoteOptions...)
		desc, err := remote.Get(ref, opts...)
		if err != nil {
			return resolvedImage{}, fmt.Errorf("resolving image %q: %w", im.Ref, err)
		}
		d, err := digest.Parse(desc.Digest.String())
		if err != nil {
			return resolvedImage{}, err
		}
		if dg, ok := ref.(name.Digest); ok && dg.DigestStr() != d.String() {
			return resolvedImage{}, fmt.Errorf("registry served %s for a reference pinned to %s: %w", d, dg.DigestStr(), digest.ErrMismatch)
		}
		r := resolvedImage{digest: d, source: "ref", repo: ref.Context().Name()}
		// Scan exactly the digest just resolved, not whatever the tag
		// points to a moment later.
		r.syft = syftSource{"registry", ref.Context().Name() + "@" + d.String()}
		if img, err := desc.Image(); err == nil {
			if cd, err := img.ConfigName(); err == nil {
				r.config, _ = digest.Parse(cd.String())
			}
		}
		return r, nil
	}
}

func (g *generator) imageComponent(ctx context.Context, im stack.Image) (cdx.Component, error) {
	r, err := g.resolve(ctx, im)
	if err != nil {
		return cdx.Component{}, err
	}
	g.images[im.Name] = r
	c := cdx.Component{
		BOMRef:     ref("image", im.Name),
		Type:       cdx.ComponentTypeContainer,
		Name:       im.Name,
		Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: r.digest.Hex()}},
		PackageURL: imagePURL(im.Name, r),
		Properties: props(
			PropKind, "image",
			PropImageSource, r.source,
			PropPath, im.OCILayout+im.Archive,
			PropDigest, r.digest.String(),
			PropImageConfig, r.config.String(),
		),
	}
	if err := g.scanInto(ctx, &c, "image", r.syft); err != nil {
		return cdx.Component{}, err
	}
	return c, nil
}

// imagePURL is the package URL of an image: pkg:oci/<name>@sha256:<hex>,
// with the repository for an image from a registry.
func imagePURL(entry string, r resolvedImage) string {
	n := entry
	var q packageurl.Qualifiers
	if r.repo != "" {
		n = r.repo[strings.LastIndex(r.repo, "/")+1:]
		q = packageurl.QualifiersFromMap(map[string]string{"repository_url": r.repo})
	}
	return packageurl.NewPackageURL("oci", "", n, r.digest.String(), q, "").ToString()
}

// loopbackRef reports whether an image reference names a loopback host,
// which go-containerregistry reaches over plain HTTP.
func loopbackRef(ref string) bool {
	host := ref
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		host = ref[:i]
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
