package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// jsDir finds internal/interop/js: beside this source file, or else under
// the module root found by walking up from the working directory.
func jsDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		d := filepath.Join(filepath.Dir(file), "js")
		if _, err := os.Stat(filepath.Join(d, "verify.mjs")); err == nil {
			return d, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			js := filepath.Join(d, "internal", "interop", "js")
			if _, err := os.Stat(filepath.Join(js, "verify.mjs")); err != nil {
				return "", fmt.Errorf("no internal/interop/js/verify.mjs under the module root %s", d)
			}
			return js, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// SigstoreJS returns the path of js/verify.mjs, the sigstore-js peer
// verifier. When node, or the npm packages that `bash .ci/install-sigstore-js`
// installs, are missing, the test is skipped, except in CI (CI set), where it
// fails: CI must run the check.
func SigstoreJS(t testing.TB) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if inCI() {
			t.Fatalf("sigstore-js is needed in CI: %s (run bash .ci/install-sigstore-js)", msg)
		}
		t.Skipf("sigstore-js not available: %s (run bash .ci/install-sigstore-js)", msg)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("no node on PATH")
	}
	dir, err := jsDir()
	if err != nil {
		missing("%v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@sigstore", "verify", "package.json")); err != nil {
		missing("%s has no node_modules/@sigstore/verify", dir)
	}
	return filepath.Join(dir, "verify.mjs")
}

// SigstoreJSVerify runs
//
//	node verify.mjs --bundle BUNDLE --key PUBKEY --artifact FILE [--type PREDICATETYPE]
//
// which verifies the bundle's DSSE signature with pubKey through
// @sigstore/verify and then checks that the payload is an in-toto Statement
// v1 one of whose subjects is file's sha256 and, unless predicateType is
// empty, that its predicateType is predicateType (a URI). It returns nil when
// the bundle is accepted and an error holding the reason when it is rejected
// (exit status 1). Any other outcome (a usage error, a crash, a time-out)
// means the check did not run, and fails the test.
func SigstoreJSVerify(t testing.TB, bundle, pubKey, file, predicateType string) error {
	t.Helper()
	script := SigstoreJS(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{script, "--bundle", bundle, "--key", pubKey, "--artifact", file}
	if predicateType != "" {
		args = append(args, "--type", predicateType)
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = nodeEnv()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	out := strings.TrimSpace(stdout.String() + stderr.String())
	if ctx.Err() != nil {
		t.Fatalf("sigstore-js: timed out after %v\n%s", peerTimeout, out)
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 1:
		return fmt.Errorf("sigstore-js rejected %s for %s: %s", bundle, file, out)
	default:
		t.Fatalf("sigstore-js did not run its check (%v):\n%s", err, out)
		return nil
	}
}

// nodeEnv is the caller's environment without the variables that would
// change how node loads or runs the script.
func nodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NODE_OPTIONS", "NODE_PATH", "NODE_EXTRA_CA_CERTS":
			continue
		}
		env = append(env, kv)
	}
	return env
}
