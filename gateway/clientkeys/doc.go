// Package clientkeys issues, stores and checks the gateway keys that
// clients of trustgate-gateway present instead of provider keys.
//
// A key reads tgk_<id>_<secret>: id is 12 random characters of lowercase
// base32 (a-z, 2-7) that name the key, secret is 32 random bytes in
// unpadded base64url. The key file keeps, per key, the id, a name, a
// random 16-byte salt, SHA-256(salt || secret), the time of creation and
// the time of revocation; never the secret. A single fast hash is the
// right choice here: the secret has 256 bits of entropy, so there is no
// dictionary to slow an attacker down on, and a password hash (bcrypt,
// argon2) would only make every request slower.
package clientkeys
