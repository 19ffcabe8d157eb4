package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
)

// checkKey is the key's ID and the hash its signatures are made over
// (0 for Ed25519, which signs the message itself).
type checkKey struct {
	pub  crypto.PublicKey
	id   string
	hash crypto.Hash
}

func newCheckKey(pub crypto.PublicKey) (*checkKey, error) {
	var h crypto.Hash
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return nil, fmt.Errorf("%w: empty ECDSA key", ErrUnsupportedKey)
		}
		switch k.Curve.Params().Name {
		case "P-256":
			h = crypto.SHA256
		case "P-384":
			h = crypto.SHA384
		case "P-521":
			h = crypto.SHA512
		default:
			return nil, fmt.Errorf("%w: ECDSA curve %q", ErrUnsupportedKey, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
	case nil:
		return nil, fmt.Errorf("%w: no key given", ErrUnsupportedKey)
	default:
		return nil, fmt.Errorf("%w: %T (use ECDSA or Ed25519)", ErrUnsupportedKey, pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	sum := sha256.Sum256(der)
	return &checkKey{pub: pub, id: base64.StdEncoding.EncodeToString(sum[:]), hash: h}, nil
}

// digest is what the signer signs for msg.
func (k *checkKey) digest(msg []byte) []byte {
	if k.hash == 0 {
		return msg
	}
	h := k.hash.New()
	h.Write(msg)
	return h.Sum(nil)
}

func (k *checkKey) sign(s crypto.Signer, msg []byte) ([]byte, error) {
	sig, err := s.Sign(rand.Reader, k.digest(msg), k.hash)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint: %w", err)
	}
	return sig, nil
}

func (k *checkKey) verify(msg, sig []byte) bool {
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, k.digest(msg), sig)
	case ed25519.PublicKey:
		return ed25519.Verify(pub, msg, sig)
	}
	return false
}
