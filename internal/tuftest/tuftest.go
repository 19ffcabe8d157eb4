// Package tuftest serves a TUF repository on 127.0.0.1 for tests: real
// metadata made and signed with go-tuf, over a real HTTP server, laid out
// as Sigstore's repositories are (consistent snapshots, hash-prefixed
// targets), with what an attacker who controls the mirror can do: serve
// old or expired metadata, or other bytes for a target.
package tuftest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Repo is a TUF repository and the server that serves it.
type Repo struct {
	// URL is the repository's base URL (the mirror).
	URL string

	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	files   map[string][]byte // served path -> bytes
	keys    map[string]ed25519.PrivateKey
	root    *metadata.Metadata[metadata.RootType]
	ts      *metadata.Metadata[metadata.TimestampType]
	snap    *metadata.Metadata[metadata.SnapshotType]
	targets *metadata.Metadata[metadata.TargetsType]
	anchor  []byte
	hits    int
}

// Lifetime is how long metadata is valid by default.
const Lifetime = 7 * 24 * time.Hour

// New makes a repository at version 1 of every role, with one Ed25519 key
// per role, serving the named targets, and starts its server.
func New(t testing.TB, targets map[string][]byte) *Repo {
	t.Helper()
	exp := time.Now().Add(Lifetime).UTC()
	r := &Repo{
		t: t, files: map[string][]byte{}, keys: map[string]ed25519.PrivateKey{},
		root: metadata.Root(exp), ts: metadata.Timestamp(exp), snap: metadata.Snapshot(exp), targets: metadata.Targets(exp),
	}
	r.root.Signed.ConsistentSnapshot = true
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		r.keys[role] = r.newKey(role)
	}
	for name, data := range targets {
		r.setTarget(name, data)
	}
	r.publishRoot()
	r.anchor = r.files["/1.root.json"]
	r.publish()
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL
	return r
}

// Anchor is root version 1: the trust anchor a client starts from.
func (r *Repo) Anchor() []byte { return r.anchor }

// Close stops the server: the mirror is unreachable from then on.
func (r *Repo) Close() { r.srv.Close() }

// Hits counts the requests served.
func (r *Repo) Hits() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

func (r *Repo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.hits++
	data, ok := r.files[req.URL.Path]
	r.mu.Unlock()
	if !ok || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	_, _ = w.Write(data)
}

func (r *Repo) newKey(role string) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.root.Signed.AddKey(k, role); err != nil {
		r.t.Fatal(err)
	}
	return priv
}

func (r *Repo) signer(role string) signature.Signer {
	s, err := signature.LoadSigner(r.keys[role], crypto.Hash(0))
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// SetTarget publishes a new version of the target name: new targets,
// snapshot and timestamp metadata.
func (r *Repo) SetTarget(name string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setTarget(name, data)
	r.targets.Signed.Version++
	r.snap.Signed.Version++
	r.ts.Signed.Version++
	r.publish()
}

func (r *Repo) setTarget(name string, data []byte) {
	tf, err := metadata.TargetFile().FromBytes(name, data, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	r.targets.Signed.Targets[name] = tf
	sum := sha256.Sum256(data)
	r.files["/targets/"+hex.EncodeToString(sum[:])+"."+name] = data
}

// TamperTarget serves other bytes under the name and hash the signed
// targets metadata gives the target name: what a compromised mirror or a
// man in the middle can do.
func (r *Repo) TamperTarget(name string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.files {
		if strings.HasPrefix(p, "/targets/") && strings.HasSuffix(p, "."+name) {
			r.files[p] = data
		}
	}
}

// Timestamp is the timestamp.json served now.
func (r *Repo) Timestamp() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files["/timestamp.json"]
}

// ServeTimestamp serves data as timestamp.json: an older one, validly
// signed, is a rollback.
func (r *Repo) ServeTimestamp(data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files["/timestamp.json"] = data
}

// ExpireTimestamp publishes a new timestamp, validly signed, that expired
// an hour ago: a freeze attack.
func (r *Repo) ExpireTimestamp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ts.Signed.Expires = time.Now().Add(-time.Hour).UTC()
	r.ts.Signed.Version++
	r.publishTimestamp()
}

// RotateRoot publishes the next root version with a new root key and a
// new timestamp key, signed by the old root key and the new, and
// re-signs the timestamp with its new key.
func (r *Repo) RotateRoot() {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.signer(metadata.ROOT)
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP} {
		for _, id := range append([]string(nil), r.root.Signed.Roles[role].KeyIDs...) {
			if err := r.root.Signed.RevokeKey(id, role); err != nil {
				r.t.Fatal(err)
			}
		}
		r.keys[role] = r.newKey(role)
	}
	r.root.Signed.Version++
	r.root.ClearSignatures()
	if _, err := r.root.Sign(old); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.root.Sign(r.signer(metadata.ROOT)); err != nil {
		r.t.Fatal(err)
	}
	r.storeRoot()
	r.ts.Signed.Version++
	r.publishTimestamp()
}

func (r *Repo) publishRoot() {
	r.root.ClearSignatures()
	if _, err := r.root.Sign(r.signer(metadata.ROOT)); err != nil {
		r.t.Fatal(err)
	}
	r.storeRoot()
}

func (r *Repo) storeRoot() {
	data, err := r.root.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.files["/"+strconv.FormatInt(r.root.Signed.Version, 10)+".root.json"] = data
}

// publish signs and serves targets, snapshot and timestamp.
func (r *Repo) publish() {
	r.targets.ClearSignatures()
	if _, err := r.targets.Sign(r.signer(metadata.TARGETS)); err != nil {
		r.t.Fatal(err)
	}
	data, err := r.targets.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.files["/"+strconv.FormatInt(r.targets.Signed.Version, 10)+".targets.json"] = data
	r.snap.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.snap.ClearSignatures()
	if _, err := r.snap.Sign(r.signer(metadata.SNAPSHOT)); err != nil {
		r.t.Fatal(err)
	}
	if data, err = r.snap.ToBytes(false); err != nil {
		r.t.Fatal(err)
	}
	r.files["/"+strconv.FormatInt(r.snap.Signed.Version, 10)+".snapshot.json"] = data
	r.ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snap.Signed.Version)
	r.publishTimestamp()
}

func (r *Repo) publishTimestamp() {
	r.ts.ClearSignatures()
	if _, err := r.ts.Sign(r.signer(metadata.TIMESTAMP)); err != nil {
		r.t.Fatal(err)
	}
	data, err := r.ts.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.files["/timestamp.json"] = data
}
