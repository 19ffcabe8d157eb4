// Package gather measures a deployment for the verifier: the digest of the
// bytes each component will run from, where each credential is sent, and
// the bundles to check (files given, and attestations stored beside the
// stack's images). verify itself reads no file and no network; this does.
package gather

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/localmodel"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verify"

	"github.com/trustgate/trustgate/internal/readfile"
)

// Measurement is a deployment as measured from the bytes that will run.
type Measurement struct {
	Manifest   verify.Manifest
	Components []verify.Measured
	Providers  []policy.ProviderFacts
	// Images are the stack's images as pinned, in the manifest's order. A
	// registry image's attestations are read at the digest it was pinned
	// to (Image.Ref), never by resolving its tag a second time.
	Images []pin.Image
	// models are the local models' signatures, read once while measuring
	// them; Attached hands them in.
	models []verify.Evidence
}

// Stack measures the deployment s describes: the manifest (its name and
// the SHA-256 of the bytes Load read), every component (gateway, plugins
// and agents by the file or folder they run from, or the image they run
// from, and the command the manifest starts them with), each image entry
// (every blob hashed, see pin), every model (the providers that serve it
// and, for one with a file or folder, that file or folder as package
// localmodel measures it, with its OMS signature when the manifest names
// one), and where each credential is sent.
func Stack(ctx context.Context, s *stack.Stack, reg pin.Registry) (*Measurement, error) {
	return StackMeasured(ctx, s, reg, nil)
}

// PathMeasurer measures a component that runs from a path: the digest of
// the bytes that will run, sha256 for a file, h1 for a folder. root is the
// manifest's folder.
type PathMeasurer func(ctx context.Context, root *os.Root, c stack.Component) (digest.Digest, error)

// StackMeasured is Stack with the components that run from a path measured
// by measure (nil: hashed where they lie). trustgate-gateway passes the
// digests of the sealed copies it will run, and of its own executable.
func StackMeasured(ctx context.Context, s *stack.Stack, reg pin.Registry, measure PathMeasurer) (*Measurement, error) {
	if measure == nil {
		measure = func(_ context.Context, root *os.Root, c stack.Component) (digest.Digest, error) {
			return pathDigest(root, c.Path)
		}
	}
	root, err := os.OpenRoot(s.Source.Dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	m := &Measurement{Manifest: verify.Manifest{Name: s.Metadata.Name, Digest: s.Source.Digest}}
	images := map[string]pin.Image{}
	for _, im := range s.Images {
		p, err := pin.Resolve(ctx, s.Source.Dir, im, reg)
		if err != nil {
			return nil, err
		}
		images[im.Name] = p
		m.Images = append(m.Images, p)
		m.Components = append(m.Components, verify.Measured{Kind: "image", Name: im.Name, Digest: p.Digest, Unpinned: p.Tag})
	}
	for _, c := range s.Components() {
		mc := verify.Measured{Kind: c.Kind, Name: c.Name, Role: c.Role, Argv: c.Argv()}
		switch {
		case c.Image != "":
			p, ok := images[c.Image]
			if !ok {
				return nil, fmt.Errorf("%s %q runs from image %q, which the stack does not list", c.Kind, c.Name, c.Image)
			}
			// A tag binds the component no better than the image entry.
			mc.Digest, mc.Unpinned = p.Digest, p.Tag
		default:
			d, err := measure(ctx, root, c)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", c.Kind, c.Name, err)
			}
			mc.Digest = d
		}
		m.Components = append(m.Components, mc)
	}
	sigBytes := 0
	for _, md := range s.Models {
		mc := verify.Measured{Kind: stack.KindModel, Name: md.Name, Provider: md.Provider, Fallbacks: md.Fallbacks}
		if md.File != "" {
			lm, err := localmodel.Measure(ctx, s.Source.Dir, md)
			if err != nil {
				return nil, fmt.Errorf("model %q: %w", md.Name, err)
			}
			mc.Digest, mc.Model = lm.Digest, lm
			if lm.Signed() {
				if sigBytes += len(lm.Signature); sigBytes > MaxAttachedBytes {
					return nil, fmt.Errorf("model %q: the models' signatures exceed their size bound", md.Name)
				}
				m.models = append(m.models, verify.Evidence{Source: "model signature " + md.Signature, Raw: lm.Signature})
			}
		}
		m.Components = append(m.Components, mc)
	}
	for _, p := range s.Providers {
		m.Providers = append(m.Providers, policy.ProviderFacts{Name: p.Name, BaseURL: p.BaseURL, Credential: p.Credential.String()})
	}
	return m, nil
}

// pathDigest hashes a file (sha256) or a folder (h1) inside root.
func pathDigest(root *os.Root, p string) (digest.Digest, error) {
	name := filepath.FromSlash(p)
	fi, err := root.Stat(name)
	if err != nil {
		return digest.Digest{}, err
	}
	if fi.IsDir() {
		return digest.Tree(root, name)
	}
	fd, err := digest.File(root, name)
	if err != nil {
		return digest.Digest{}, err
	}
	return fd.SHA256, nil
}

// MaxAttachedBytes bounds what Attached keeps in memory: every attestation
// read from the registries of one stack.
const MaxAttachedBytes = 256 << 20

// Files reads bundle files, each at most attest.MaxBundleSize bytes.
func Files(paths ...string) ([]verify.Evidence, error) {
	var out []verify.Evidence
	for _, p := range paths {
		raw, err := readfile.Read(p, attest.MaxBundleSize)
		if err != nil {
			return nil, err
		}
		out = append(out, verify.Evidence{Source: "file " + p, Raw: raw})
	}
	return out, nil
}

// Attached reads the attestations and signatures stored beside each
// registry image of the measurement (see ImageEvidence), at the digest it was
// pinned to; layouts and archives have none. It also gives the OMS
// signatures of the stack's local models, which Stack read (the model's
// signature: in the manifest, source "model signature PATH").
//
// Each image digest is read once, however many entries name it, and all
// the attestations read together may not exceed MaxAttachedBytes.
func Attached(ctx context.Context, m *Measurement, reg pin.Registry) ([]verify.Evidence, error) {
	out := slices.Clone(m.models)
	seen := map[string]bool{}
	budget := MaxAttachedBytes
	for _, im := range m.Images {
		if im.Source != pin.SourceRef || seen[im.Ref.String()] {
			continue
		}
		seen[im.Ref.String()] = true
		ev, err := ImageEvidence(ctx, im.Ref, reg, &budget)
		if err != nil {
			return nil, err
		}
		out = append(out, ev...)
	}
	return out, nil
}

// ImageEvidence reads the attestations and signatures stored beside the
// image img (referrers, then the cosign tags .att and .sig), taking their
// sizes from *budget: more than it holds is an error. A cosign signature
// of the .sig tag comes with its signed payload (verify.Evidence.Payload).
func ImageEvidence(ctx context.Context, img name.Digest, reg pin.Registry, budget *int) ([]verify.Evidence, error) {
	as, err := attest.Attachments(ctx, img, reg)
	if err != nil {
		return nil, err
	}
	var out []verify.Evidence
	for _, a := range as {
		if *budget -= len(a.Bundle) + len(a.Payload); *budget < 0 {
			return nil, fmt.Errorf("the attestations read exceed their size bound (at %s)", img.Context().Name())
		}
		// A cosign entry without a bundle (Raw nil) is reported as
		// unverifiable rather than left out.
		out = append(out, verify.Evidence{Source: a.Source + " " + img.Context().Name() + "@" + a.Digest, Raw: a.Bundle, Payload: a.Payload})
	}
	return out, nil
}
