package verifier

import (
	"fmt"

	"crypto"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

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
