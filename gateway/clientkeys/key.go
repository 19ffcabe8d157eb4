package clientkeys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Prefix starts every gateway key, so that a key is recognisable in a
// secret scanner and never mistaken for a provider's.
const Prefix = "tgk_"

const (
	idLen      = 12
	saltLen    = 16
	secretLen  = 32
	secretText = 43 // unpadded base64 of secretLen bytes
	keyLen     = len(Prefix) + idLen + 1 + secretText
	idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"
)

// secretEncoding refuses non-zero padding bits, so that a secret has one
// spelling only.
var secretEncoding = base64.RawURLEncoding.Strict()

// parseKey splits a presented key into its id and secret. It accepts
// exactly the strings newKey makes: right length, prefix, id alphabet,
// separator and the canonical base64url of 32 bytes.
func parseKey(s string) (id string, secret [secretLen]byte, ok bool) {
	if len(s) != keyLen || s[:len(Prefix)] != Prefix || s[len(Prefix)+idLen] != '_' {
		return "", secret, false
	}
	id = s[len(Prefix) : len(Prefix)+idLen]
	if !validID(id) {
		return "", secret, false
	}
	// The decoder skips CR and LF, so a key with one inside decodes to
	// fewer bytes: n catches it.
	n, err := secretEncoding.Decode(secret[:], []byte(s[len(Prefix)+idLen+1:]))
	if err != nil || n != secretLen {
		return "", [secretLen]byte{}, false
	}
	return id, secret, true
}

// validID reports whether s has the shape of a key id.
func validID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'a' && s[i] <= 'z' || s[i] >= '2' && s[i] <= '7') {
			return false
		}
	}
	return true
}

// newKey makes a random id and secret and the key that carries them.
func newKey() (id string, secret [secretLen]byte, key string) {
	var b [idLen]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[b[i]&31] // 256 is a multiple of 32: no bias
	}
	rand.Read(secret[:])
	id = string(b[:])
	return id, secret, Prefix + id + "_" + secretEncoding.EncodeToString(secret[:])
}

// hashSecret is SHA-256(salt || secret).
func hashSecret(salt [saltLen]byte, secret [secretLen]byte) [sha256.Size]byte {
	var buf [saltLen + secretLen]byte
	copy(buf[:saltLen], salt[:])
	copy(buf[saltLen:], secret[:])
	return sha256.Sum256(buf[:])
}
