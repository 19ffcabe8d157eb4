package verifier

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustgate/trustgate/tufroot"

	"github.com/trustgate/trustgate/internal/readfile"
)

// MaxTrustFile bounds a public key or trusted_root.json file.
const MaxTrustFile = 4 << 20

// PublicKeys reads PEM public key files.
func PublicKeys(paths []string) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for _, p := range paths {
		data, err := readfile.Read(p, 64<<10)
		if err != nil {
			return nil, err
		}
		k, err := cryptoutils.UnmarshalPEMToPublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("%q: not a PEM public key", p)
		}
		out = append(out, k)
	}
	return out, nil
}

// TrustedRoot reads a Sigstore trusted_root.json; "" gives nil.
func TrustedRoot(path string) (root.TrustedMaterial, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readfile.Read(path, MaxTrustFile)
	if err != nil {
		return nil, err
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("trusted root %q: %w", path, err)
	}
	return tr, nil
}

// TrustedRootSource is where Sigstore trust material comes from: a
// trusted_root.json file, or a TUF cache (package tufroot), refreshed from
// its repository first or only read.
type TrustedRootSource struct {
	// File is a trusted_root.json; when set, nothing else is read.
	File string
	// TUFCache is the TUF cache folder; empty means tufroot.DefaultDir().
	TUFCache string
	// Refresh refreshes the cache from its repository (the public-good
	// instance unless trustgate trust-root update named another) before it
	// is used; otherwise the cache is only read, with no network, and must
	// hold a trusted root whose TUF metadata has not expired.
	Refresh bool
}

// Load gives the trusted root s names.
func (s TrustedRootSource) Load(ctx context.Context) (root.TrustedMaterial, error) {
	if s.File != "" {
		return TrustedRoot(s.File)
	}
	dir := s.TUFCache
	if dir == "" {
		var err error
		if dir, err = tufroot.DefaultDir(); err != nil {
			return nil, fmt.Errorf("TUF cache: %w", err)
		}
	}
	var tr *root.TrustedRoot
	var err error
	if s.Refresh {
		tr, _, err = tufroot.Update(ctx, dir, nil)
		if errors.Is(err, tufroot.ErrUnreachable) {
			err = fmt.Errorf("%w (offline, the cache alone can be used)", err)
		}
	} else {
		tr, _, err = tufroot.Load(dir, time.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("the Sigstore trusted root: %w", err)
	}
	return tr, nil
}
