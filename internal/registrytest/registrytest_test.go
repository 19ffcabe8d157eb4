package registrytest_test

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustgate/trustgate/internal/registrytest"
)

// The registry takes an image and serves it back, by tag and by digest.
func TestPushAndPull(t *testing.T) {
	addr := registrytest.Start(t)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(addr+"/ai/gateway:1.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	got, err := remote.Head(tag)
	if err != nil || got.Digest != want {
		t.Fatalf("HEAD %s: %v %v, want %s", tag, got, err, want)
	}
	if _, err := remote.Image(tag.Context().Digest(want.String())); err != nil {
		t.Fatal(err)
	}
}
