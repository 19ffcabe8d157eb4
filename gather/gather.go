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

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verify"

	"github.com/trustgate/trustgate/internal/readfile"
)

// Manifest is the stack manifest as measured: its name and the SHA-256 of
// the bytes Load read.
func Manifest(s *stack.Stack) verify.Manifest {
	return verify.Manifest{Name: s.Metadata.Name, Digest: s.Source.Digest}
}

// Stack measures every component of s: gateway, plugins and agents by the
// file or folder they run from (or the image they run from) and the
// command the manifest starts them with, each image entry, and each model
// with a local file.
func Stack(ctx context.Context, s *stack.Stack, opts ...remote.Option) ([]verify.Measured, []policy.ProviderFacts, error) {
	root, err := os.OpenRoot(s.Source.Dir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	images := map[string]digest.Digest{}
	var out []verify.Measured
	for _, im := range s.Images {
		p, err := pin.Resolve(ctx, s.Source.Dir, im, opts...)
		if err != nil {
			return nil, nil, err
		}
		images[im.Name] = p.Digest
		out = append(out, verify.Measured{Kind: "image", Name: im.Name, Digest: p.Digest, Unpinned: p.Tag})
	}
	for _, c := range s.Components() {
		m := verify.Measured{Kind: c.Kind, Name: c.Name, Role: c.Role, Argv: c.Argv()}
		switch {
		case c.Image != "":
			d, ok := images[c.Image]
			if !ok {
				return nil, nil, fmt.Errorf("%s %q runs from image %q, which the stack does not list", c.Kind, c.Name, c.Image)
			}
			m.Digest = d
		default:
			d, err := pathDigest(root, c.Path)
			if err != nil {
				return nil, nil, fmt.Errorf("%s %q: %w", c.Kind, c.Name, err)
			}
			m.Digest = d
		}
		out = append(out, m)
	}
	for _, md := range s.Models {
		if md.File == "" {
			continue // served by a provider
		}
		fd, err := digest.File(root, filepath.FromSlash(md.File))
		if err != nil {
			return nil, nil, fmt.Errorf("model %q: %w", md.Name, err)
		}
		out = append(out, verify.Measured{Kind: "model", Name: md.Name, Digest: fd.SHA256})
	}
	var providers []policy.ProviderFacts
	for _, p := range s.Providers {
		cred := "env:" + p.Credential.Env
		if p.Credential.File != "" {
			cred = "file:" + p.Credential.File
		}
		providers = append(providers, policy.ProviderFacts{Name: p.Name, BaseURL: p.BaseURL, Credential: cred})
	}
	return out, providers, nil
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

// Attached reads the attestations stored beside each registry image of s
// (referrers, then the cosign tag); layouts and archives have none.
func Attached(ctx context.Context, s *stack.Stack, reg attest.Registry) ([]verify.Evidence, error) {
	var out []verify.Evidence
	for _, im := range s.Images {
		if im.Ref == "" {
			continue
		}
		d, _, err := attest.ImageSubject(ctx, im.Ref, reg)
		if err != nil {
			return nil, err
		}
		as, err := attest.Attachments(ctx, d, reg)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			// A cosign entry without a bundle (Raw nil) is reported as
			// unverifiable rather than left out.
			out = append(out, verify.Evidence{Source: a.Source + " " + d.Context().Name() + "@" + a.Digest, Raw: a.Bundle})
		}
	}
	return out, nil
}
