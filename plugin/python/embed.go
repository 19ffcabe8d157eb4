// Package python installs trustgate's Python plugin SDK (trustgate_plugin),
// with the gRPC runtime it runs on, into a plugin's site-packages folder.
package python

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// The SDK's files, named one by one: a directory pattern would leave out
// __init__.py, and all: would take a stray __pycache__ along.
//
//go:embed trustgate_plugin/__init__.py trustgate_plugin/hooks_pb2.py
var sdk embed.FS

// ErrNoGRPC is returned by Install when Debian's Python gRPC runtime is not
// installed (apt-get install python3-grpcio python3-protobuf).
var ErrNoGRPC = errors.New("python3-grpcio and python3-protobuf are not installed")

// ErrNotRegular is returned by Install when what it would copy holds a
// symlink, a device or anything else that is not a regular file or folder.
var ErrNotRegular = errors.New("not a regular file or folder")

// distPackages is where Debian's python3-grpcio and python3-protobuf live.
var distPackages = "/usr/lib/python3/dist-packages"

// runtimeFiles are the files and folders under distPackages that
// "import grpc, google.protobuf" needs with nothing else on sys.path
// (python3 -I -S); google/ is a namespace package and needs no __init__.py.
// six is not imported by grpcio 1.51 but is declared by older ones.
var runtimeFiles = []string{
	"grpc", "grpcio-*.egg-info", "grpcio-*.dist-info",
	"google/protobuf", "protobuf-*.egg-info", "protobuf-*.dist-info",
	"six.py", "six-*.egg-info", "six-*.dist-info",
}

// Install writes the trustgate_plugin package into dst, a site-packages
// folder it creates if needed, and copies the Python gRPC runtime (grpc,
// google.protobuf, their metadata, six) from Debian's dist-packages next to
// it. It copies regular files and folders only, never __pycache__, and
// reads nothing outside dist-packages; a symlink or any other kind of file
// in what it copies is an error. Files already in dst are replaced. The
// error wraps ErrNoGRPC when the runtime is not installed.
func Install(dst string) error {
	src, err := os.OpenRoot(distPackages)
	if err != nil {
		return fmt.Errorf("installing python SDK: %w: %w", ErrNoGRPC, err)
	}
	defer src.Close()
	for _, name := range []string{"grpc/__init__.py", "google/protobuf/__init__.py"} {
		if _, err := src.Stat(name); err != nil {
			return fmt.Errorf("installing python SDK: %w: %w", ErrNoGRPC, err)
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("installing python SDK: %w", err)
	}
	out, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("installing python SDK: %w", err)
	}
	defer out.Close()

	if err := copyTree(out, sdk, "trustgate_plugin"); err != nil {
		return fmt.Errorf("installing python SDK into %q: %w", dst, err)
	}
	for _, pattern := range runtimeFiles {
		names, err := fs.Glob(src.FS(), pattern)
		if err != nil {
			return fmt.Errorf("installing python SDK: %w", err)
		}
		for _, name := range names {
			if err := copyTree(out, src.FS(), name); err != nil {
				return fmt.Errorf("installing python gRPC runtime into %q: %w", dst, err)
			}
		}
	}
	return nil
}

// copyTree copies the file or folder root of src into dst under the same
// name.
func copyTree(dst *os.Root, src fs.FS, root string) error {
	return fs.WalkDir(src, root, func(name string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == "__pycache__":
			return fs.SkipDir
		case d.IsDir():
			return dst.MkdirAll(name, 0o755)
		case d.Type().IsRegular():
			return copyFile(dst, src, name)
		}
		return fmt.Errorf("copying %q (%s): %w", name, d.Type(), ErrNotRegular)
	})
}

func copyFile(dst *os.Root, src fs.FS, name string) error {
	in, err := src.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	if err := dst.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := dst.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm()&0o755|0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
