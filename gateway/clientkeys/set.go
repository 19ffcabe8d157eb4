package clientkeys

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// Set is the keys of one version of the key file, for checking presented
// keys. It does not change once loaded and is safe for concurrent use. A
// nil or zero Set accepts no key.
type Set struct {
	keys    []record
	byID    map[string]*record
	modTime time.Time
}

func newSet(recs []record, modTime time.Time) *Set {
	s := &Set{keys: recs, byID: make(map[string]*record, len(recs)), modTime: modTime}
	for i := range recs {
		s.byID[recs[i].id] = &s.keys[i]
	}
	return s
}

// absent stands in for the record of an unknown id, so that Check hashes
// and compares whatever is wrong with a key. No secret hashes to zero.
var absent = &record{}

// Check reports whether presented is a key of the set that is not
// revoked, and if so returns its id (never the secret; "" when not ok).
//
// The secret is compared in constant time, and a malformed key or an
// unknown id costs the same hash and comparison as a wrong secret. What
// may still show in timing is the id lookup, and ids are not secret:
// they name a key, as a user name does. The caller must still strip the
// key from the request before it goes upstream, and keep it out of logs.
func (s *Set) Check(presented string) (id string, ok bool) {
	id, secret, parsed := parseKey(presented)
	rec, found := absent, false
	if s != nil && parsed {
		if r, hit := s.byID[id]; hit {
			rec, found = r, true
		}
	}
	sum := hashSecret(rec.salt, secret)
	match := subtle.ConstantTimeCompare(sum[:], rec.hash[:]) == 1
	if !parsed || !found || !match || !rec.revoked.IsZero() {
		return "", false
	}
	return rec.id, true
}

// Len is the number of keys in the set, revoked ones included.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// ModTime is the modification time the key file had when the set was
// loaded (zero for a nil Set).
func (s *Set) ModTime() time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.modTime
}

// FromHeader returns the key a request presents: the token of
// "Authorization: Bearer <key>" (as OpenAI clients send it) or the value
// of "x-api-key" (as Anthropic clients do). ok is false when neither is
// there, when a header is repeated or malformed, or when both are there
// and differ. It does not check the key's shape; Check does. The caller
// must still delete both headers before forwarding the request.
func FromHeader(h http.Header) (key string, ok bool) {
	auth, apiKey := h.Values("Authorization"), h.Values("X-Api-Key")
	hasAuth, hasAPIKey := len(auth) > 0, len(apiKey) > 0
	if len(auth) > 1 || len(apiKey) > 1 {
		return "", false
	}
	if hasAuth {
		scheme, token, cut := strings.Cut(auth[0], " ")
		token = strings.TrimSpace(token)
		if !cut || !strings.EqualFold(scheme, "Bearer") || !plainToken(token) {
			return "", false
		}
		key = token
	}
	if hasAPIKey {
		token := strings.TrimSpace(apiKey[0])
		if !plainToken(token) || (hasAuth && token != key) {
			return "", false
		}
		key = token
	}
	return key, hasAuth || hasAPIKey
}

// plainToken reports whether s is non-empty visible ASCII.
func plainToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
