package sbom

import (
	"context"
	"net"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/anchore/packageurl-go"

	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/sbomprop"
	"github.com/trustgate/trustgate/stack"
)

// resolvedImage is an image pinned to a digest, and how syft should read
// exactly that image.
type resolvedImage struct {
	pin.Image
	syft syftSource
}

// resolve pins im with package pin. Its errors wrap ErrImage.
func (g *generator) resolve(ctx context.Context, im stack.Image) (resolvedImage, error) {
	p, err := pin.Resolve(ctx, g.s.Source.Dir, im, g.opts.Registry)
	if err != nil {
		return resolvedImage{}, err // wraps pin.ErrImage, which is ErrImage
	}
	r := resolvedImage{Image: p}
	switch p.Source {
	case pin.SourceOCILayout:
		r.syft = syftSource{"oci-dir", p.Path}
	case pin.SourceArchive:
		r.syft = syftSource{"docker-archive", p.Path}
	default:
		// Scan exactly the digest just resolved, not whatever the tag
		// points to a moment later.
		r.syft = syftSource{"registry", p.Repo + "@" + p.Digest.String()}
	}
	return r, nil
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
		Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: r.Digest.Hex()}},
		PackageURL: imagePURL(im.Name, r),
		Properties: props(
			sbomprop.Kind, "image",
			sbomprop.ImageSource, r.Source,
			sbomprop.Path, im.OCILayout+im.Archive,
			sbomprop.Digest, r.Digest.String(),
			sbomprop.ImageConfig, r.Config.String(),
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
	if r.Repo != "" {
		n = r.Repo[strings.LastIndex(r.Repo, "/")+1:]
		q = packageurl.QualifiersFromMap(map[string]string{"repository_url": r.Repo})
	}
	return packageurl.NewPackageURL("oci", "", n, r.Digest.String(), q, "").ToString()
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
