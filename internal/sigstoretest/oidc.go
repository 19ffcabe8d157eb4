package sigstoretest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Audience is the "aud" of the tokens Token issues: the client ID Fulcio is
// configured to expect, as with the public Sigstore instance.
const Audience = "sigstore"

// issuer is a minimal OIDC identity provider: OpenID discovery plus a JWKS
// with one RS256 key. It has no login flow; tokens are minted directly by
// the test (Env.Token).
type issuer struct {
	srv *httptest.Server
	url string
	key *rsa.PrivateKey
	kid string
	// forged signs tokens that claim this issuer but whose key is not in
	// the JWKS.
	forged    *rsa.PrivateKey
	forgedKid string
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{key: key, kid: keyID(&key.PublicKey), forged: forged, forgedKid: keyID(&forged.PublicKey)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.url,
			"jwks_uri":                              iss.url + "/keys",
			"authorization_endpoint":                iss.url + "/auth",
			"token_endpoint":                        iss.url + "/token",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "email", "email_verified"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		pub := &iss.key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA",
			"alg": "RS256",
			"use": "sig",
			"kid": iss.kid,
			"n":   b64(pub.N.Bytes()),
			"e":   b64(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	iss.srv = httptest.NewServer(mux) // listens on 127.0.0.1:0
	iss.url = iss.srv.URL
	t.Cleanup(iss.srv.Close)
	return iss
}

// token returns an RS256 JWT for identity (an email address), signed by the
// published key, or by the unpublished one when forged is set.
func (iss *issuer) token(identity string, forged bool) (string, error) {
	key, kid := iss.key, iss.kid
	if forged {
		key, kid = iss.forged, iss.forgedKid
	}
	now := time.Now()
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss":            iss.url,
		"sub":            identity,
		"aud":            Audience,
		"iat":            now.Unix(),
		"nbf":            now.Add(-time.Minute).Unix(),
		"exp":            now.Add(10 * time.Minute).Unix(),
		"email":          identity,
		"email_verified": true,
	})
	if err != nil {
		return "", err
	}
	signingInput := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signingInput + "." + b64(sig), nil
}

func keyID(pub *rsa.PublicKey) string {
	sum := sha256.Sum256(pub.N.Bytes())
	return b64(sum[:8])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
