package python

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const python = "/usr/bin/python3"

// requireGRPC skips the test when Debian's Python gRPC runtime is missing,
// except in CI (CI=true), where it must be there.
func requireGRPC(t *testing.T) {
	t.Helper()
	_, errPy := os.Stat(python)
	_, errGRPC := os.Stat(filepath.Join(distPackages, "grpc", "__init__.py"))
	if err := errors.Join(errPy, errGRPC); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-grpcio missing in CI: %v", err)
		}
		t.Skipf("needs %s with gRPC: apt-get install python3 python3-grpcio python3-protobuf (%v)", python, err)
	}
}

func TestInstallImportsInIsolation(t *testing.T) {
	requireGRPC(t)
	dst := filepath.Join(t.TempDir(), "site-packages")
	if err := Install(dst); err != nil {
		t.Fatal(err)
	}
	// Twice: files already there are replaced.
	if err := Install(dst); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "__pycache__" || strings.HasSuffix(path, ".pyc") {
			t.Errorf("copied %s", path)
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			t.Errorf("%s is not a regular file", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code := `import sys; sys.path[:0] = [sys.argv[1]]
import grpc, google.protobuf, trustgate_plugin
for m in (grpc, google.protobuf, trustgate_plugin):
    assert m.__file__.startswith(sys.argv[1]), m.__file__
print(grpc.__version__)`
	cmd := exec.Command(python, "-I", "-S", "-B", "-c", code, dst)
	cmd.Env = []string{}
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("importing from %s: %v\n%s", dst, err, out)
	}
	t.Logf("grpc %s", out)
}

func TestInstallWithoutGRPC(t *testing.T) {
	distPackages = t.TempDir()
	t.Cleanup(func() { distPackages = "/usr/lib/python3/dist-packages" })
	err := Install(t.TempDir())
	if !errors.Is(err, ErrNoGRPC) {
		t.Fatalf("Install = %v, want ErrNoGRPC", err)
	}
}

func TestInstallRefusesSymlinks(t *testing.T) {
	src := t.TempDir()
	for _, dir := range []string{"grpc", "google/protobuf"} {
		if err := os.MkdirAll(filepath.Join(src, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, dir, "__init__.py"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "grpc", "passwd.py")); err != nil {
		t.Fatal(err)
	}
	distPackages = src
	t.Cleanup(func() { distPackages = "/usr/lib/python3/dist-packages" })
	dst := t.TempDir()
	err := Install(dst)
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Install = %v, want ErrNotRegular", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "grpc", "passwd.py")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("symlink copied: %v", err)
	}
}
