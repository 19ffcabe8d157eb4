package testtools

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
)

// The pinned releases of the Kubernetes API server and of etcd.
const (
	kubeVersion = "v1.34.3"
	etcdVersion = "v3.6.5"
)

// kubeAPIServerModule writes the scratch module that builds kube-apiserver.
// k8s.io/kubernetes cannot be installed with `go install`: its go.mod
// replaces each k8s.io/* staging module with a folder of its own tree. The
// scratch module requires it and replaces each of those with the staging
// module's published twin, v0.X.Y for kubernetes v1.X.Y.
func kubeAPIServerModule(ctx context.Context, dir string) error {
	version := kubeVersion
	src, err := moduleDir(ctx, dir, "k8s.io/kubernetes@"+version)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return err
	}
	upstream, err := modfile.Parse("go.mod", raw, nil)
	if err != nil {
		return err
	}
	f, err := scratchGoMod("kubeapiserver", "k8s.io/kubernetes", version)
	if err != nil {
		return err
	}
	staging := "v0." + strings.TrimPrefix(version, "v1.")
	for _, r := range upstream.Replace {
		if strings.HasPrefix(r.Old.Path, "k8s.io/") && strings.HasPrefix(r.New.Path, "./staging/") {
			if err := f.AddReplace(r.Old.Path, "", r.Old.Path, staging); err != nil {
				return err
			}
		}
	}
	return writeModule(dir, f, `package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
`)
}

// etcdModule writes the scratch module that builds etcd from its server
// module (the etcd main module replaces its parts with local folders too).
func etcdModule(_ context.Context, dir string) error {
	f, err := scratchGoMod("etcdserver", "go.etcd.io/etcd/server/v3", etcdVersion)
	if err != nil {
		return err
	}
	return writeModule(dir, f, `package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
`)
}

// scratchGoMod is the go.mod of the scratch module named module, for
// this project's Go version, requiring mod at version.
func scratchGoMod(module, mod, version string) (*modfile.File, error) {
	f := new(modfile.File)
	if err := f.AddModuleStmt(module); err != nil {
		return nil, err
	}
	if err := f.AddGoStmt("1.26"); err != nil {
		return nil, err
	}
	if err := f.AddRequire(mod, version); err != nil {
		return nil, err
	}
	return f, nil
}

// writeModule writes the scratch module's go.mod, f, and its main.go.
func writeModule(dir string, f *modfile.File, main string) error {
	f.Cleanup()
	gomod, err := f.Format()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644)
}

// moduleDir downloads a module version and returns its folder in the
// module cache.
func moduleDir(ctx context.Context, dir, modVersion string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modVersion)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVersion, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", err
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", modVersion, info.Error)
	}
	return info.Dir, nil
}
