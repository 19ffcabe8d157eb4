package gather

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/stack"

	"github.com/trustgate/trustgate/internal/readfile"

	"github.com/trustgate/trustgate/internal/testutil"
)

// A stack whose gateway runs from a registry image: the image is measured
// by the digest the registry serves, the gateway by the same digest, and the
// attestation attached to the image is gathered as evidence.
func TestStackWithRegistryImage(t *testing.T) {
	ref, want := testutil.Registry(t, true, nil, "ai/gateway:1.0")

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "agent"), []byte("agent v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := `apiVersion: trustgate.dev/v1
kind: Stack
metadata:
  name: reg
gateway:
  name: gw
  image: gateway
agents:
  - name: audit
    role: audit
    path: bin/agent
images:
  - name: gateway
    ref: ` + ref + `
  - name: gateway-again
    ref: ` + ref + `
`
	s, err := stack.Parse("stack.yaml", dir, []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := Stack(ctx, s, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range m.Components {
		got[c.Kind+"/"+c.Name] = c.Digest.String()
		if (c.Kind == "image" || c.Kind == "gateway") && c.Unpinned != ref {
			t.Fatalf("a tag reference measured as pinned: %+v", c)
		}
	}
	if got["image/gateway"] != want.String() || got["gateway/gw"] != want.String() || got["agent/audit"] != digest.FromBytes([]byte("agent v1")).String() {
		t.Fatalf("measured %v, want image and gateway %s", got, want)
	}

	k, _ := attest.GenerateKey(attest.ECDSAP256)
	d, sub, err := attest.ImageSubject(ctx, ref, attest.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := attest.NewStatement(attest.PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX"}`), sub)
	b, _ := attest.Sign(ctx, st, k, attest.Services{})
	if _, err := attest.Attach(ctx, d, b, attest.Registry{}); err != nil {
		t.Fatal(err)
	}
	// The tag moves to another image before the attestations are read:
	// they are read for the digest that was measured, never by resolving
	// the tag again.
	other, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(ref)
	if err := remote.Write(tag, other); err != nil {
		t.Fatal(err)
	}
	ev, err := Attached(ctx, m, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	// Two entries name one image: its attestations are read once.
	if len(ev) != 1 || !strings.HasPrefix(ev[0].Source, "referrer ") || len(ev[0].Raw) == 0 || !strings.Contains(ev[0].Source, "@") {
		t.Fatalf("evidence %+v", ev)
	}
}

func TestFilesRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Files(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("a missing bundle file was not an error")
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Files(fifo); !errors.Is(err, readfile.ErrNotRegular) {
		t.Fatalf("fifo: %v", err)
	}
	if _, err := Files(dir); err == nil {
		t.Fatal("a folder was read as a bundle")
	}
}
