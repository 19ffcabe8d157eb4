// Package testtools builds the peer programs that trustgate's interop and
// end-to-end tests run (cosign and the Sigstore services) from the Go module
// proxy, once, into a cache shared by every test run on the machine.
package testtools

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Tool is one Go program built from the module proxy at a pinned version.
type Tool struct {
	// Name is the binary's name in the cache.
	Name string
	// Package is the main package's import path; Version its module version.
	Package, Version string
	// scratch, for a program that `go install` cannot build (its module
	// replaces its dependencies with local folders), writes a module of
	// its own into a folder: go.mod and main.go requiring the program.
	scratch func(ctx context.Context, dir string) error
}

// The peers the tests run. Versions are pinned: a test is only repeatable
// against the same peer.
var (
	Cosign = Tool{"cosign", "github.com/sigstore/cosign/v2/cmd/cosign", "v2.6.5", nil}
	Fulcio = Tool{"fulcio", "github.com/sigstore/fulcio", "v1.8.8", nil}
	Rekor  = Tool{"rekor-server", "github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix", "v2.3.0", nil}
	TSA    = Tool{"timestamp-server", "github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server", "v2.1.3", nil}
	// KubeAPIServer and Etcd are a real Kubernetes API server and its
	// store, for the admission webhook's tests (see kube.go).
	KubeAPIServer = Tool{"kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", kubeVersion, kubeAPIServerModule}
	Etcd          = Tool{"etcd", "go.etcd.io/etcd/server/v3/etcdmain", etcdVersion, etcdModule}
	// Act runs GitHub Actions workflows on this host (nektos/act, with
	// -P ubuntu-latest=-self-hosted: no Docker), and Actionlint lints
	// them, for the GitHub Action's tests.
	Act        = Tool{"act", "github.com/nektos/act", "v0.2.89", nil}
	Actionlint = Tool{"actionlint", "github.com/rhysd/actionlint/cmd/actionlint", "v1.7.12", nil}
)

// All lists every tool, for the CI script that builds them ahead of the tests.
var All = []Tool{Cosign, Fulcio, Rekor, TSA, KubeAPIServer, Etcd, Act, Actionlint}

// Dir is where built tools are cached: $TRUSTGATE_TOOLS_DIR, or
// trustgate/tools under the user's cache directory.
func Dir() (string, error) {
	if d := os.Getenv("TRUSTGATE_TOOLS_DIR"); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "trustgate", "tools"), nil
}

// Path is where tool's binary lives in the cache, built or not.
func (tool Tool) Path() (string, error) {
	d, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, tool.Name+"@"+tool.Version), nil
}

var buildMu sync.Mutex

// Build returns the path of tool's binary, building it first with `go
// install` if the cache does not have it. Test processes that need the same
// tool at once (go test ./... runs packages in parallel) take turns on a
// lock file: one builds, the others then find it built.
func Build(ctx context.Context, tool Tool) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	dst, err := tool.Path()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dst+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() {
		return dst, nil
	}
	gobin, err := os.MkdirTemp(filepath.Dir(dst), ".build-"+tool.Name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(gobin)
	built := filepath.Join(gobin, filepath.Base(tool.Package))
	if tool.scratch != nil {
		err = buildScratch(ctx, tool, gobin, built)
	} else {
		// Outside any module, so the project's go.mod plays no part;
		// the tool's own go.mod decides its dependencies.
		err = goCommand(ctx, gobin, []string{"GOBIN=" + gobin}, "install", tool.Package+"@"+tool.Version)
	}
	if err != nil {
		return "", fmt.Errorf("building %s@%s: %w", tool.Package, tool.Version, err)
	}
	if err := os.Rename(built, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// buildScratch builds tool from a scratch module of its own, in a folder
// under work, to the path out.
func buildScratch(ctx context.Context, tool Tool, work, out string) error {
	dir := filepath.Join(work, "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := tool.scratch(ctx, dir); err != nil {
		return err
	}
	if err := goCommand(ctx, dir, nil, "mod", "tidy"); err != nil {
		return err
	}
	return goCommand(ctx, dir, nil, "build", "-o", out, ".")
}

// goCommand runs the go command in dir, outside any workspace, with the
// module graph free to resolve and cgo off.
func goCommand(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(out, 4000))
	}
	return nil
}

// InCI reports whether the tests run in CI (CI=true), where a missing peer
// is a failure rather than a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// BuildCommand is the command that builds every peer tool ahead of the
// tests (make test runs it).
const BuildCommand = "go run ./internal/testtools/cmd/build-testtools"

// Need returns tool's path for a test that runs it. Tests never build a
// peer themselves (a cold build takes minutes and would run into go test's
// timeout): without the built tool the test skips, with one line naming
// the command that builds it. Under CI=true a missing tool fails the test,
// and TRUSTGATE_SKIP_PEERS is refused, so that CI can never pass without
// its peers.
func Need(t testing.TB, tool Tool) string {
	t.Helper()
	ci := InCI()
	if os.Getenv("TRUSTGATE_SKIP_PEERS") == "1" {
		if ci {
			t.Fatalf("TRUSTGATE_SKIP_PEERS=1 is refused under CI=true: %s is needed", tool.Name)
		}
		t.Skipf("TRUSTGATE_SKIP_PEERS=1: not running %s", tool.Name)
	}
	p, err := tool.Path()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		if ci {
			t.Fatalf("%s@%s is not built (CI=true): run %s", tool.Name, tool.Version, BuildCommand)
		}
		t.Skipf("%s@%s is not built: run %s (or make test)", tool.Name, tool.Version, BuildCommand)
	}
	return p
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
