// Package example lays trustgate's example deployment out in a folder: the
// checked-in manifest and Python plugin, the Go programs built from source,
// a small GGUF model file and the gateway's image in an OCI layout. The demo
// and the tests use it, so both run the same deployment.
package example

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/mod/modfile"

	trustgate "github.com/trustgate/trustgate"
	"github.com/trustgate/trustgate/examples/deployment"
	"github.com/trustgate/trustgate/plugin/python"
)

// Programs are the example's Go programs, by import path and output name.
var Programs = map[string]string{
	"trustgate-gateway": "github.com/trustgate/trustgate/cmd/trustgate-gateway",
	"guardrail":         "github.com/trustgate/trustgate/examples/deployment/cmd/guardrail",
	"audit-agent":       "github.com/trustgate/trustgate/examples/deployment/cmd/audit-agent",
}

// ImageRefName is the tag annotation of the example image in its layout.
const ImageRefName = "trustgate-gateway:0.1.0"

// Build lays the example out in dir (which should be empty) and returns the
// path of its stack manifest. Building the Go programs needs the Go
// toolchain (see BuildPrograms): in a trustgate checkout (the demo run
// there, and the tests) they are built from the checkout, elsewhere from
// the sources built into this binary.
func Build(ctx context.Context, dir string) (string, error) {
	if err := copyFS(dir, deployment.Files, nil); err != nil {
		return "", fmt.Errorf("writing the example's files: %w", err)
	}
	if err := BuildPrograms(ctx, filepath.Join(dir, "bin")); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "models", "tiny-guard.gguf"), GGUF(), 0o644); err != nil {
		return "", err
	}
	err := python.Install(filepath.Join(dir, "plugins", "pii-redactor", "site-packages"))
	if errors.Is(err, python.ErrNoGRPC) {
		err = nil // the layout is complete but for the runtime; see PythonRuntime
	}
	if err != nil {
		return "", err
	}
	img, err := Image(filepath.Join(dir, "bin", "trustgate-gateway"))
	if err != nil {
		return "", err
	}
	if err := WriteLayout(filepath.Join(dir, "images", "gateway"), img); err != nil {
		return "", err
	}
	return filepath.Join(dir, "stack.yaml"), nil
}

// PythonRuntime says why the example's Python plugin cannot run here (nil
// when it can): its gRPC runtime is copied from Debian's python3-grpcio.
func PythonRuntime() error {
	for _, f := range []string{"grpc/__init__.py", "google/protobuf/__init__.py"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/python3/dist-packages", f)); err != nil {
			return fmt.Errorf("%w: %w", python.ErrNoGRPC, err)
		}
	}
	return nil
}

// BuildPrograms builds every entry of Programs into binDir with the local
// Go toolchain, statically and without paths or VCS stamps of the machine
// that built them. In a trustgate checkout (see Checkout) it builds the
// checkout's packages; elsewhere it writes trustgate.Sources out as a module
// (WriteSources) in a temporary folder and builds that, the dependencies
// coming from the module cache or the Go module proxy and checked against
// the embedded go.sum. Both give the same bytes from the same sources.
func BuildPrograms(ctx context.Context, binDir string) error {
	binDir, err := filepath.Abs(binDir) // the go command runs in another folder
	if err != nil {
		return err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	if root := Checkout(ctx); root != "" {
		return goBuild(ctx, root, binDir, nil, "this needs the Go toolchain")
	}
	src, err := os.MkdirTemp("", "trustgate-example-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	if err := WriteSources(src); err != nil {
		return fmt.Errorf("writing the sources of the example's Go programs: %w", err)
	}
	// No workspace of the user's takes part, and go.mod and go.sum stay as
	// embedded whatever GOFLAGS says.
	return goBuild(ctx, src, binDir, []string{"GOWORK=off"},
		"outside a trustgate checkout they are built from the sources in this binary; this needs the Go toolchain, and the module proxy or a module cache holding trustgate's dependencies",
		"-mod=readonly")
}

func goBuild(ctx context.Context, dir, binDir string, env []string, hint string, flags ...string) error {
	args := append([]string{"build", "-trimpath", "-buildvcs=false"}, flags...)
	args = append(args, "-o", binDir+string(os.PathSeparator))
	for _, name := range slices.Sorted(maps.Keys(Programs)) {
		args = append(args, Programs[name])
	}
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building the example's Go programs (%s): %w\n%s", hint, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Checkout returns the root of the trustgate checkout the go command finds
// from the current folder (the folder of its main module's go.mod, when
// that module is trustgate's), or "" when there is none or no go command.
func Checkout(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	if err != nil {
		return ""
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return ""
	}
	data, err := os.ReadFile(gomod)
	if err != nil || modfile.ModulePath(data) != ModulePath {
		return ""
	}
	return filepath.Dir(gomod)
}

// ModulePath is trustgate's module path.
const ModulePath = "github.com/trustgate/trustgate"

// WriteSources writes trustgate.Sources (go.mod, go.sum and the Go files
// of the packages the example's programs need, without their tests) into
// dir as a module.
func WriteSources(dir string) error {
	return copyFS(dir, trustgate.Sources, func(p string) bool { return strings.HasSuffix(p, "_test.go") })
}

func goTool() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// copyFS writes the files of fsys into dir, but those skip says to leave
// out (skip may be nil).
func copyFS(dir string, fsys fs.FS, skip func(path string) bool) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if skip != nil && skip(p) {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// GGUF returns a small, well-formed GGUF v3 model file: metadata, no tensors.
func GGUF() []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	str := func(s string) {
		_ = binary.Write(&b, le, uint64(len(s)))
		b.WriteString(s)
	}
	const typeUint32, typeString = 4, 8
	kvs := []struct {
		key string
		val any
	}{
		{"general.architecture", "llama"},
		{"general.name", "tiny-guard"},
		{"general.license", "Apache-2.0"},
		{"llama.context_length", uint32(128)},
	}
	b.WriteString("GGUF")
	_ = binary.Write(&b, le, uint32(3))        // version
	_ = binary.Write(&b, le, uint64(0))        // tensor count
	_ = binary.Write(&b, le, uint64(len(kvs))) // metadata count
	for _, kv := range kvs {
		str(kv.key)
		switch v := kv.val.(type) {
		case string:
			_ = binary.Write(&b, le, uint32(typeString))
			str(v)
		case uint32:
			_ = binary.Write(&b, le, uint32(typeUint32))
			_ = binary.Write(&b, le, v)
		}
	}
	return b.Bytes()
}

// Image builds the example gateway's container image around the binary at
// gatewayBin: one layer with an Alpine-like package database (so that an
// SBOM finds OS packages) and the binary. The same binary gives the same
// image digest: every timestamp is fixed.
func Image(gatewayBin string) (v1.Image, error) {
	bin, err := os.ReadFile(gatewayBin)
	if err != nil {
		return nil, fmt.Errorf("reading the example gateway binary: %w", err)
	}
	layerTar, err := tarFiles([]tarFile{
		{"etc/os-release", []byte(osRelease), 0o644},
		{"lib/apk/db/installed", []byte(apkInstalled), 0o644},
		{"usr/local/bin/trustgate-gateway", bin, 0o755},
	})
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.Entrypoint = []string{"/usr/local/bin/trustgate-gateway"}
	cfg.Config.User = "65534:65534"
	return mutate.ConfigFile(img, cfg)
}

// WriteLayout writes img as the only image of a new OCI layout at dir.
func WriteLayout(dir string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ImageRefName,
	})); err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	return nil
}

type tarFile struct {
	name string
	data []byte
	mode int64
}

func tarFiles(files []tarFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	epoch := time.Unix(0, 0).UTC()
	for _, d := range slices.Sorted(maps.Keys(dirs)) { // parents sort before children
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const osRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.22.2
PRETTY_NAME="Alpine Linux v3.22"
HOME_URL="https://alpinelinux.org/"
`

// apkInstalled is an Alpine package database with three real packages.
const apkInstalled = `C:Q1WjmCMmCuMVq/uYq4JGlrTSbY0pg=
P:musl
V:1.2.5-r10
A:x86_64
S:408611
I:1015808
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1739445000
c:a49d3d93bbac2c7e7e87e6ad6bec4c3fd7f01fb4
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

C:Q1oVPYaJzkaelEvcd3hmfAdm1XxgE=
P:ca-certificates-bundle
V:20250619-r0
A:x86_64
S:126134
I:221184
T:Pre generated bundle of Mozilla certificates
U:https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/
L:MPL-2.0 AND MIT
o:ca-certificates
m:Natanael Copa <ncopa@alpinelinux.org>
t:1750344000
c:1d3a2b4c6e8f0a1b2c3d4e5f60718293a4b5c6d7
F:etc
F:etc/ssl
F:etc/ssl/certs
R:ca-certificates.crt

C:Q1Qf3v2i9Tq7oQ8Ck6XfRz0P1mW9c=
P:busybox
V:1.37.0-r19
A:x86_64
S:512000
I:1001472
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1748000000
c:0f6a3b2c1d4e5f60718293a4b5c6d7e8f9a0b1c2
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox

`
