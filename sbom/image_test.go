package sbom_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/trustgate/trustgate/internal/example"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/sbomprop"
	"github.com/trustgate/trustgate/stack"
)

func exampleImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := example.Image(filepath.Join(filepath.Dir(testutil.Example(t)), "bin", "trustgate-gateway"))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeImageStack(t *testing.T, dir, imageSource string) *stack.Stack {
	t.Helper()
	manifest := fmt.Sprintf("apiVersion: trustgate.dev/v1\nkind: Stack\nmetadata: {name: images}\ngateway: {name: gw, image: gw}\nimages:\n  - name: gw\n    %s\n", imageSource)
	path := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func imageBOM(t *testing.T, s *stack.Stack) *cdx.BOM {
	t.Helper()
	data := generate(t, s, sbom.Options{}, sbom.DefaultSpecVersion)
	if err := cycloneDXSchema(t, "1.6")(data); err != nil {
		t.Fatalf("SBOM does not validate: %v", err)
	}
	return decode(t, data)
}

func checkImage(t *testing.T, bom *cdx.BOM, wantDigest, wantSource string) {
	t.Helper()
	im := component(t, bom, "trustgate:image/gw")
	if got := prop(im, sbomprop.Digest); got != wantDigest {
		t.Errorf("image digest %s, want %s", got, wantDigest)
	}
	if got := prop(im, sbomprop.ImageSource); got != wantSource {
		t.Errorf("image source %s, want %s", got, wantSource)
	}
	if !slices.Contains(purls(im), "pkg:apk/alpine/musl@1.2.5-r10?arch=x86_64&distro=alpine-3.22.2") {
		t.Errorf("no musl package in the image: %v", purls(im))
	}
	if !slices.ContainsFunc(purls(im), func(p string) bool { return strings.HasPrefix(p, "pkg:golang/stdlib@") }) {
		t.Errorf("the Go binary inside the image was not cataloged: %v", purls(im))
	}
	gw := component(t, bom, "trustgate:gateway/gw")
	if got := prop(gw, sbomprop.Digest); got != wantDigest {
		t.Errorf("gateway running from the image has digest %s, want the image's %s", got, wantDigest)
	}
}

func TestImageFromRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	img := exampleImage(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	tag, err := name.ParseReference(host + "/example/gateway:0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	bom := imageBOM(t, writeImageStack(t, t.TempDir(), "ref: "+tag.String()))
	checkImage(t, bom, want.String(), "ref")
	im := component(t, bom, "trustgate:image/gw")
	if !strings.HasPrefix(im.PackageURL, "pkg:oci/gateway@sha256%3A"+want.Hex) || !strings.Contains(im.PackageURL, "repository_url=") {
		t.Errorf("purl = %s", im.PackageURL)
	}

	// A reference pinned to a digest the registry does not serve fails.
	other, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	otherDigest, _ := other.Digest()
	s := writeImageStack(t, t.TempDir(), "ref: "+host+"/example/gateway@"+otherDigest.String())
	if _, err := sbom.Generate(context.Background(), s, sbom.Options{}); !errors.Is(err, sbom.ErrImage) {
		t.Errorf("err = %v, want ErrImage for a digest the registry does not have", err)
	}
}

func TestImageFromDockerSaveArchive(t *testing.T) {
	img := exampleImage(t)
	dir := t.TempDir()
	tag, _ := name.NewTag("example/gateway:0.1.0")
	if err := tarball.WriteToFile(filepath.Join(dir, "gw.tar"), tag, img); err != nil {
		t.Fatal(err)
	}
	config, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	bom := imageBOM(t, writeImageStack(t, dir, "archive: gw.tar"))
	// A docker save archive has no registry manifest: it is named by its
	// image ID, the config digest.
	checkImage(t, bom, config.String(), "archive")
}

func TestImageFromOCILayout(t *testing.T) {
	img := exampleImage(t)
	dir := t.TempDir()
	if err := example.WriteLayout(filepath.Join(dir, "layout"), img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	checkImage(t, imageBOM(t, writeImageStack(t, dir, "ociLayout: layout")), want.String(), "ociLayout")
}

func TestImageLayoutWithTwoImagesIsRefused(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		img, _ := random.Image(64, 1)
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
	}
	_, err = sbom.Generate(context.Background(), writeImageStack(t, dir, "ociLayout: layout"), sbom.Options{})
	if !errors.Is(err, sbom.ErrImage) || !strings.Contains(err.Error(), "holds 2 manifests") {
		t.Fatalf("err = %v, want ErrImage for a layout with two images", err)
	}
}
