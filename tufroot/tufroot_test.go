package tufroot_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/tuftest"
	"github.com/trustgate/trustgate/tufroot"
)

// publicGoodRoot is the Sigstore public-good trusted root the
// sigstore-conformance vectors are checked against.
func publicGoodRoot(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("../testdata/sigstore-conformance/trusted_root.public-good.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func newRepo(t *testing.T) (*tuftest.Repo, *tufroot.Repository, []byte) {
	t.Helper()
	target := publicGoodRoot(t)
	r := tuftest.New(t, map[string][]byte{tufroot.TargetName: target})
	return r, &tufroot.Repository{Mirror: r.URL, Root: r.Anchor()}, target
}

func wantErr(t *testing.T, err, kind error, what string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got %v, want %v", what, err, kind)
	}
}

func TestUpdateThenLoadOffline(t *testing.T) {
	r, repo, target := newRepo(t)
	dir := t.TempDir()
	ctx := context.Background()
	if _, _, err := tufroot.Load(dir, time.Now()); !errors.Is(err, tufroot.ErrNoCache) {
		t.Fatalf("empty cache: got %v, want ErrNoCache", err)
	}
	tr, st, err := tufroot.Update(ctx, dir, repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 || len(tr.RekorLogs()) == 0 {
		t.Fatal("the trusted root has no CA or log")
	}
	if st.SHA256 != sha(target) || st.RootVersion != 1 || st.TimestampVersion != 1 || st.Mirror != r.URL {
		t.Fatalf("status %+v", st)
	}
	r.Close()
	_, st2, err := tufroot.Load(dir, time.Now())
	if err != nil {
		t.Fatalf("offline, with the mirror down: %v", err)
	}
	if st2 != st {
		t.Fatalf("offline status %+v, update gave %+v", st2, st)
	}
	// Update with no repository uses the one the cache holds: down now.
	_, _, err = tufroot.Update(ctx, dir, nil)
	wantErr(t, err, tufroot.ErrUnreachable, "mirror down")
	// The expiry is honoured: a week on, the cache is refused.
	_, _, err = tufroot.Load(dir, st.Expires.Add(time.Minute))
	wantErr(t, err, tufroot.ErrExpired, "expired cache")
	if !strings.Contains(err.Error(), "trust-root update") {
		t.Errorf("error %q does not say how to recover", err)
	}
}

func TestUpdateFollowsNewTargetsAndRotatedRoots(t *testing.T) {
	r, repo, _ := newRepo(t)
	dir := t.TempDir()
	ctx := context.Background()
	if _, _, err := tufroot.Update(ctx, dir, repo); err != nil {
		t.Fatal(err)
	}
	other := []byte(strings.Replace(string(publicGoodRoot(t)), `"mediaType"`, ` "mediaType"`, 1))
	r.SetTarget(tufroot.TargetName, other)
	r.RotateRoot()
	r.RotateRoot()
	_, st, err := tufroot.Update(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.SHA256 != sha(other) || st.RootVersion != 3 {
		t.Fatalf("after the rotations: %+v", st)
	}
	// Offline, the chain is walked again from the anchor, version 1.
	if _, st2, err := tufroot.Load(dir, time.Now()); err != nil || st2 != st {
		t.Fatalf("offline after the rotations: %+v, %v", st2, err)
	}
	// Without the intermediate root, the timestamp's new key is unknown.
	if err := os.Remove(filepath.Join(dir, "roots", "2.root.json")); err != nil {
		t.Fatal(err)
	}
	_, _, err = tufroot.Load(dir, time.Now())
	wantErr(t, err, tufroot.ErrTampered, "root chain cut")
}

func TestUpdateRefusesExpiredTimestamp(t *testing.T) {
	r, repo, _ := newRepo(t)
	dir := t.TempDir()
	r.ExpireTimestamp()
	_, _, err := tufroot.Update(context.Background(), dir, repo)
	wantErr(t, err, tufroot.ErrExpired, "expired timestamp")
	if _, _, err := tufroot.Load(dir, time.Now()); !errors.Is(err, tufroot.ErrNoCache) {
		t.Fatalf("a refused update left something in the cache: %v", err)
	}
}

func TestUpdateRefusesRollback(t *testing.T) {
	r, repo, _ := newRepo(t)
	dir := t.TempDir()
	ctx := context.Background()
	if _, _, err := tufroot.Update(ctx, dir, repo); err != nil {
		t.Fatal(err)
	}
	v1 := r.Timestamp()
	r.SetTarget(tufroot.TargetName, []byte(strings.Replace(string(publicGoodRoot(t)), `"mediaType"`, ` "mediaType"`, 1)))
	_, st, err := tufroot.Update(ctx, dir, nil)
	if err != nil || st.TimestampVersion != 2 {
		t.Fatalf("update to version 2: %+v, %v", st, err)
	}
	// The mirror serves the old timestamp: validly signed, unexpired, older.
	r.ServeTimestamp(v1)
	_, _, err = tufroot.Update(ctx, dir, nil)
	wantErr(t, err, tufroot.ErrRollback, "rolled-back timestamp")
	// The refused update changed nothing.
	if _, st2, err := tufroot.Load(dir, time.Now()); err != nil || st2 != st {
		t.Fatalf("after the refused rollback: %+v, %v", st2, err)
	}
}

func TestUpdateRefusesTamperedTarget(t *testing.T) {
	r, repo, _ := newRepo(t)
	evil := []byte(strings.Replace(string(publicGoodRoot(t)), "fulcio.sigstore.dev", "fulcio.evil.example", 1))
	r.TamperTarget(tufroot.TargetName, evil)
	dir := t.TempDir()
	_, _, err := tufroot.Update(context.Background(), dir, repo)
	wantErr(t, err, tufroot.ErrTampered, "tampered target")
	if _, _, err := tufroot.Load(dir, time.Now()); !errors.Is(err, tufroot.ErrNoCache) {
		t.Fatalf("a refused update left something in the cache: %v", err)
	}
}

func TestLoadRefusesTamperedCache(t *testing.T) {
	_, repo, _ := newRepo(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(dir string) error
	}{
		{"target", func(dir string) error {
			p := filepath.Join(dir, "targets", tufroot.TargetName)
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, []byte(strings.Replace(string(data), "fulcio.sigstore.dev", "fulcio.evil.example", 1)), 0o644)
		}},
		{"anchor", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "anchor.json"), []byte(`{"signed":{}}`), 0o644)
		}},
		{"timestamp", func(dir string) error {
			p := filepath.Join(dir, "metadata", "timestamp.json")
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, []byte(strings.Replace(string(data), `"version":1`, `"version":9`, 1)), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, _, err := tufroot.Update(ctx, dir, repo); err != nil {
				t.Fatal(err)
			}
			if err := tc.edit(dir); err != nil {
				t.Fatal(err)
			}
			_, _, err := tufroot.Load(dir, time.Now())
			wantErr(t, err, tufroot.ErrTampered, tc.name)
		})
	}
}

func TestUpdateRefusesBadRepository(t *testing.T) {
	dir := t.TempDir()
	for _, repo := range []tufroot.Repository{
		{Mirror: "ftp://example.invalid", Root: tufroot.PublicGood().Root},
		{Mirror: "http://127.0.0.1:1", Root: []byte("not a root")},
	} {
		_, _, err := tufroot.Update(context.Background(), dir, &repo)
		wantErr(t, err, tufroot.ErrRepository, repo.Mirror)
	}
}
