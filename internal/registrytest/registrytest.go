// Package registrytest runs a real OCI registry server for tests: Debian's
// docker-registry (the distribution project's registry, 2.8), on 127.0.0.1
// over plain HTTP, storing into a test's temporary folder. Unlike
// go-containerregistry's in-process registry it has no OCI referrers API,
// as many registries in use today, so attachments go by tags.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/trustgate/trustgate/internal/testproc"
	"github.com/trustgate/trustgate/internal/testtools"
	"github.com/trustgate/trustgate/internal/testutil"
)

// Binary is where Debian's docker-registry package installs the server.
const Binary = "/usr/bin/docker-registry"

// InstallCommand installs it (.ci/run does).
const InstallCommand = "apt-get install docker-registry"

// Start runs the registry until the test ends and returns its address,
// host:port. Without the binary the test skips, or fails under CI=true.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		if testtools.InCI() {
			t.Fatalf("%s is not installed (CI=true): run %s", Binary, InstallCommand)
		}
		t.Skipf("%s is not installed: run %s", Binary, InstallCommand)
	}
	dir := t.TempDir()
	for attempt := range 3 {
		addr, p, err := start(bin, dir, attempt)
		if errors.Is(err, testproc.ErrPortInUse) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		return addr
	}
	t.Fatal("docker-registry: no free port after 3 attempts")
	return ""
}

// config is the registry's configuration: filesystem storage, deletes
// allowed (cosign clean, tag rewrites), no auth, no health checks.
const config = `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`

func start(bin, dir string, attempt int) (string, *testproc.Proc, error) {
	ports, err := testproc.FreePorts(1)
	if err != nil {
		return "", nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	cfg := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
	if err := os.WriteFile(cfg, fmt.Appendf(nil, config, filepath.Join(dir, "storage"), addr), 0o644); err != nil {
		return "", nil, err
	}
	p, err := testproc.Start("docker-registry", bin, []string{"serve", cfg}, dir, filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt)), nil)
	if err != nil {
		return "", nil, err
	}
	err = p.WaitReady(context.Background(), 20*time.Second, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		p.Stop()
		return "", nil, err
	}
	return addr, p, nil
}

// Image starts a registry (Start) and pushes a random image to it as
// repoTag ("repo/name:tag"); it returns the image's reference, host:port/repoTag.
func Image(t testing.TB, repoTag string) string {
	t.Helper()
	ref := Start(t) + "/" + repoTag
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	testutil.PushRandom(t, tag)
	return ref
}
