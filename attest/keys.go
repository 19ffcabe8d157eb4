package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

// Key errors. Callers match them with errors.Is; messages never hold key
// material or the password.
var (
	// ErrKeyFormat: the file is not a PEM private key trustgate can read.
	ErrKeyFormat = errors.New("not a readable private key")
	// ErrPublicKeyGiven: a public key (or certificate) was given where a
	// private key is needed.
	ErrPublicKeyGiven = errors.New("this is a public key; signing needs the private key")
	// ErrPasswordRequired: the key is encrypted and no password was given.
	ErrPasswordRequired = errors.New("key is encrypted and no password was given")
	// ErrWrongPassword: the password does not decrypt the key (or the
	// encrypted key is corrupt; the cipher cannot tell the two apart).
	ErrWrongPassword = errors.New("wrong password, or the encrypted key is corrupt")
	// ErrUnsupportedKey: a key type or size trustgate does not sign with.
	ErrUnsupportedKey = errors.New("unsupported key type")
)

// PEM block types. EncryptedKeyPEM is the format of cosign's
// generate-key-pair (scrypt and NaCl secretbox over PKCS #8), so keys move
// freely between the two tools; cosign's older block name is read too.
const (
	EncryptedKeyPEM       = "ENCRYPTED SIGSTORE PRIVATE KEY"
	legacyCosignKeyPEM    = "ENCRYPTED COSIGN PRIVATE KEY"
	PrivateKeyPEM         = "PRIVATE KEY"
	PublicKeyPEM          = "PUBLIC KEY"
	maxKeyFileSize        = 64 << 10
	encryptedKeyMaxLength = 16 << 10
)

// KeyType names a key algorithm for GenerateKey.
type KeyType string

// Key types trustgate generates. ECDSA P-256 is the default: every Sigstore
// client verifies it.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	Ed25519   KeyType = "ed25519"
)

// KeyTypes lists the key types GenerateKey accepts.
var KeyTypes = []KeyType{ECDSAP256, Ed25519}

// Key is a private signing key. It implements sigstore-go's sign.Keypair.
// The zero value is not usable; get one from GenerateKey or ParsePrivateKey.
type Key struct {
	signer  crypto.Signer
	details signature.AlgorithmDetails
	hint    string
}

var _ sign.Keypair = (*Key)(nil)

// GenerateKey makes a new private key of type t.
func GenerateKey(t KeyType) (*Key, error) {
	var s crypto.Signer
	var err error
	switch t {
	case ECDSAP256, "":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("%w: %q (want one of %v)", ErrUnsupportedKey, t, KeyTypes)
	}
	if err != nil {
		return nil, err
	}
	return newKey(s)
}

func newKey(s crypto.Signer) (*Key, error) {
	details, err := signature.GetDefaultAlgorithmDetails(s.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, s.Public())
	}
	if details.GetKeyType() == signature.RSA {
		// Sigstore clients disagree on RSA padding; keep to the keys all
		// of them verify the same way.
		return nil, fmt.Errorf("%w: RSA (use ECDSA or Ed25519)", ErrUnsupportedKey)
	}
	hint, err := KeyHint(s.Public())
	if err != nil {
		return nil, err
	}
	return &Key{signer: s, details: details, hint: hint}, nil
}

// KeyHint is the name a bundle gives a public key: the standard base64 of
// the SHA-256 of its PKIX DER encoding (as sigstore-go names its keys).
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// ParsePrivateKey reads a PEM private key: trustgate's or cosign's encrypted
// format (password required), or an unencrypted PKCS #8, SEC 1 ("EC PRIVATE
// KEY") key, for which password must be nil. Errors say what is wrong with
// the key, never what it or the password holds.
func ParsePrivateKey(data, password []byte) (*Key, error) {
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrKeyFormat, maxKeyFileSize)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKeyFormat)
	}
	var (
		priv any
		err  error
	)
	switch block.Type {
	case EncryptedKeyPEM, legacyCosignKeyPEM:
		if password == nil {
			return nil, ErrPasswordRequired
		}
		if len(block.Bytes) > encryptedKeyMaxLength {
			return nil, fmt.Errorf("%w: encrypted key too large", ErrKeyFormat)
		}
		der, derr := encrypted.Decrypt(block.Bytes, password)
		if derr != nil {
			return nil, decryptError(derr)
		}
		priv, err = x509.ParsePKCS8PrivateKey(der)
	case PrivateKeyPEM:
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case PublicKeyPEM, "CERTIFICATE", "RSA PUBLIC KEY":
		return nil, ErrPublicKeyGiven
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: PKCS #8 password-encrypted keys are not read; re-encrypt with trustgate keygen or cosign import-key-pair", ErrKeyFormat)
	default:
		return nil, fmt.Errorf("%w: PEM block %q", ErrKeyFormat, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrKeyFormat, "key bytes do not parse")
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, priv)
	}
	return newKey(s)
}

// decryptError maps the cipher's errors to ours without its text: the
// secretbox error cannot tell a wrong password from a damaged file, while a
// malformed envelope is plainly a damaged file.
func decryptError(err error) error {
	if err.Error() == "encrypted: decryption failed" {
		return ErrWrongPassword
	}
	return fmt.Errorf("%w: encrypted envelope is damaged", ErrKeyFormat)
}

// MarshalPrivate encodes the key as PEM: encrypted with password in cosign's
// format, or, when password is nil, as unencrypted PKCS #8.
func (k *Key) MarshalPrivate(password []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, err
	}
	if password == nil {
		return pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEM, Bytes: der}), nil
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: EncryptedKeyPEM, Bytes: enc}), nil
}

// MarshalPublic encodes the public key as a PKIX "PUBLIC KEY" PEM block, the
// form cosign, sigstore-js and openssl read.
func (k *Key) MarshalPublic() ([]byte, error) {
	return cryptoutils.MarshalPublicKeyToPEM(k.signer.Public())
}

// Hint is the key's name in bundles (see KeyHint).
func (k *Key) Hint() string { return k.hint }

// Public is the public half of the key.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Signer is the key as a crypto.Signer, for signers of other formats (the
// gateway's audit checkpoints).
func (k *Key) Signer() crypto.Signer { return k.signer }

// The sign.Keypair methods, for sigstore-go.

// GetHashAlgorithm implements sign.Keypair.
func (k *Key) GetHashAlgorithm() protocommon.HashAlgorithm { return k.details.GetProtoHashType() }

// GetSigningAlgorithm implements sign.Keypair.
func (k *Key) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.details.GetSignatureAlgorithm()
}

// GetHint implements sign.Keypair.
func (k *Key) GetHint() []byte { return []byte(k.hint) }

// GetKeyAlgorithm implements sign.Keypair.
func (k *Key) GetKeyAlgorithm() string {
	switch k.details.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

// GetPublicKey implements sign.Keypair.
func (k *Key) GetPublicKey() crypto.PublicKey { return k.signer.Public() }

// GetPublicKeyPem implements sign.Keypair.
func (k *Key) GetPublicKeyPem() (string, error) {
	b, err := k.MarshalPublic()
	return string(b), err
}

// SignData implements sign.Keypair: it returns the signature over data and
// the digest it signed (data itself for pure Ed25519).
func (k *Key) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	h := k.details.GetHashType()
	msg := data
	if h != crypto.Hash(0) {
		hh := h.New()
		hh.Write(data)
		msg = hh.Sum(nil)
	}
	sig, err := k.signer.Sign(rand.Reader, msg, h)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	return sig, msg, nil
}

// TrustedKey is Sigstore trust material that trusts exactly pub, whatever
// hint a bundle gives: a hint names a key, it never picks one. Verifiers of
// key signatures (policy loading, verify) use it so that no other key, and
// no other trust material, can stand in.
func TrustedKey(pub crypto.PublicKey) (root.TrustedMaterial, error) {
	sv, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	return root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	}), nil
}
