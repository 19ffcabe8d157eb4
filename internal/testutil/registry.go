package testutil

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry serves a real OCI registry (go-containerregistry's) on
// 127.0.0.1 for the test, with the referrers API on or off and, when wrap
// is not nil, behind wrap (to change how it answers). It pushes one random
// image as repoTag ("repo:tag") and returns the image's reference and
// digest. The server stops when the test ends.
func Registry(t testing.TB, referrers bool, wrap func(http.Handler) http.Handler, repoTag string) (string, v1.Hash) {
	t.Helper()
	h := http.Handler(registry.New(registry.WithReferrersSupport(referrers), registry.Logger(log.New(io.Discard, "", 0))))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/" + repoTag
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	d := PushRandom(t, tag)
	hash, err := v1.NewHash(d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	return ref, hash
}

// PushRandom pushes a random image (one small layer) as tag and returns it
// by digest.
func PushRandom(t testing.TB, tag name.Tag) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}
