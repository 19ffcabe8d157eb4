package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/testtools"
)

// EmptyTrustedRootJSON is the smallest trusted root that cosign (through
// sigstore-go) accepts: the media type and no authorities at all. Given with
// --trusted-root it keeps cosign from fetching the public-good root over TUF,
// and with --key and --insecure-ignore-tlog=true nothing in it is needed.
const EmptyTrustedRootJSON = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}` + "\n"

// peerTimeout bounds one run of a peer verifier.
const peerTimeout = 2 * time.Minute

// inCI reports whether the tests run in CI (CI=true there), where a missing
// peer is a failure rather than a reason to skip.
func inCI() bool { return testtools.InCI() }

// Cosign returns the path of the pinned cosign binary from the shared tool
// cache (see testtools.Need: skipped when it is not built, a failure under
// CI=true).
func Cosign(t testing.TB) string {
	t.Helper()
	return testtools.Need(t, testtools.Cosign)
}

// EmptyTrustedRoot writes EmptyTrustedRootJSON to a file in a temporary
// directory of the test and returns its path.
func EmptyTrustedRoot(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(p, []byte(EmptyTrustedRootJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// cosignEnv is the whole environment cosign runs with: a HOME, XDG folders
// and TUF_ROOT of its own in a temporary directory, so it neither reads nor
// writes the user's configuration or Sigstore cache, no SIGSTORE_* or
// COSIGN_* settings from the caller, and a proxy on a closed loopback port,
// so that any attempt to reach the network fails at once instead of hanging.
func cosignEnv(t testing.TB, extra ...string) []string {
	t.Helper()
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	const deadProxy = "http://127.0.0.1:9"
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"TMPDIR=" + tmp,
		"TUF_ROOT=" + filepath.Join(tmp, "tuf"),
		"SIGSTORE_NO_CACHE=true",
		"HTTPS_PROXY=" + deadProxy, "https_proxy=" + deadProxy,
		"HTTP_PROXY=" + deadProxy, "http_proxy=" + deadProxy,
		"NO_PROXY=", "no_proxy=",
	}
	return append(env, extra...)
}

// runCosign runs cosign with args in dir and returns its combined output.
// A cosign that cannot be started, or that runs past peerTimeout, fails the
// test; a cosign that exits non-zero returns an error holding its output.
func runCosign(t testing.TB, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	bin := Cosign(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("cosign %s: timed out after %v\n%s", strings.Join(args, " "), peerTimeout, out)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running cosign: %v", err)
	}
	if err != nil {
		return string(out), fmt.Errorf("cosign %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// CosignVerifyBlobAttestation runs, offline,
//
//	cosign verify-blob-attestation --bundle BUNDLE --key PUBKEY --type PREDICATETYPE \
//	  --trusted-root EMPTY_ROOT --insecure-ignore-tlog=true FILE
//
// which checks the bundle's DSSE signature with pubKey, that the in-toto
// statement's subject is file's sha256 and that its predicate type is
// predicateType (cosign's --type: a short name such as "cyclonedx" or a URI).
// It returns nil when cosign accepts, and an error holding cosign's output
// when it rejects.
func CosignVerifyBlobAttestation(t testing.TB, bundle, pubKey, predicateType, file string) error {
	t.Helper()
	root := EmptyTrustedRoot(t)
	_, err := runCosign(t, "", cosignEnv(t),
		"verify-blob-attestation",
		"--bundle", bundle,
		"--key", pubKey,
		"--type", predicateType,
		"--trusted-root", root,
		"--insecure-ignore-tlog=true",
		file)
	return err
}

// CosignGenerateKeyPair runs `cosign generate-key-pair` in dir with
// COSIGN_PASSWORD=password and returns the paths of the encrypted private
// key (dir/cosign.key) and of the public key (dir/cosign.pub). It fails the
// test if either file already exists, since cosign would then ask on a
// terminal whether to overwrite it.
func CosignGenerateKeyPair(t testing.TB, dir, password string) (keyPath, pubPath string) {
	t.Helper()
	keyPath = filepath.Join(dir, "cosign.key")
	pubPath = filepath.Join(dir, "cosign.pub")
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("CosignGenerateKeyPair: %s already exists", p)
		}
	}
	out, err := runCosign(t, dir, cosignEnv(t, "COSIGN_PASSWORD="+password),
		"generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("cosign generate-key-pair did not write %s: %v\n%s", p, err, out)
		}
	}
	return keyPath, pubPath
}

// CosignVerifyBlob runs, offline, cosign verify-blob --new-bundle-format
// --offline with args (the bundle, the signer, the trusted root, the
// artifact), and returns its error and output.
func CosignVerifyBlob(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return runCosign(t, "", cosignEnv(t), append([]string{"verify-blob", "--new-bundle-format", "--offline"}, args...)...)
}

// CosignSignBlob runs, offline,
//
//	cosign sign-blob --new-bundle-format --key KEY --bundle BUNDLE --tlog-upload=false --yes FILE
//
// with COSIGN_PASSWORD=password: a message signature over FILE, as
// projects publish for release assets.
func CosignSignBlob(t testing.TB, key, password, file, bundle string) {
	t.Helper()
	cosignBundle(t, bundle, "COSIGN_PASSWORD="+password,
		"sign-blob", "--new-bundle-format", "--key", key, "--bundle", bundle, "--tlog-upload=false", "--yes", file)
}

// cosignBundle runs cosign with args and env, and fails the test unless
// it wrote the bundle.
func cosignBundle(t testing.TB, bundle, env string, args ...string) {
	t.Helper()
	out, err := runCosign(t, "", cosignEnv(t, env), args...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bundle); err != nil {
		t.Fatalf("cosign %s wrote no bundle: %v\n%s", args[0], err, out)
	}
}

// CosignAttestBlob runs, offline,
//
//	cosign attest-blob --new-bundle-format --key KEY --type TYPE --predicate PREDICATE \
//	  --bundle BUNDLE --tlog-upload=false --yes FILE
//
// with COSIGN_PASSWORD=password, so that tests can check that trustgate
// verifies a bundle cosign made.
func CosignAttestBlob(t testing.TB, key, password, predicateType, predicate, file, bundle string) {
	t.Helper()
	cosignBundle(t, bundle, "COSIGN_PASSWORD="+password,
		"attest-blob", "--new-bundle-format", "--key", key, "--type", predicateType,
		"--predicate", predicate, "--bundle", bundle, "--tlog-upload=false", "--yes", file)
}

// CosignSign runs, offline,
//
//	cosign sign --key KEY --tlog-upload=false --allow-insecure-registry --yes [EXTRA...] IMAGE
//
// with COSIGN_PASSWORD=password: a plain signature of IMAGE (a reference by
// digest, in a registry on loopback over plain HTTP), which cosign stores as
// a layer of the tag sha256-<hex>.sig, or, with --new-bundle-format in
// extra, as a Sigstore bundle referrer.
func CosignSign(t testing.TB, key, password, image string, extra ...string) {
	t.Helper()
	args := append([]string{"sign", "--key", key, "--tlog-upload=false", "--allow-insecure-registry", "--yes"}, extra...)
	if _, err := runCosign(t, "", cosignEnv(t, "COSIGN_PASSWORD="+password), append(args, image)...); err != nil {
		t.Fatal(err)
	}
}

// CosignVerify runs, offline,
//
//	cosign verify --key PUBKEY --trusted-root EMPTY_ROOT --insecure-ignore-tlog \
//	  --insecure-ignore-sct --allow-insecure-registry IMAGE
//
// which checks IMAGE's cosign signatures with pubKey. It returns cosign's
// output, and an error holding it when cosign refuses.
func CosignVerify(t testing.TB, pubKey, image string) (string, error) {
	t.Helper()
	return runCosign(t, "", cosignEnv(t), "verify", "--key", pubKey, "--trusted-root", EmptyTrustedRoot(t),
		"--insecure-ignore-tlog", "--insecure-ignore-sct", "--allow-insecure-registry", image)
}

// CosignAttest runs, offline,
//
//	cosign attest --key KEY --type TYPE --predicate PREDICATE --tlog-upload=false \
//	  --allow-insecure-registry --yes [EXTRA...] IMAGE
//
// with COSIGN_PASSWORD=password: an in-toto attestation of IMAGE (by
// digest, in a registry on loopback over plain HTTP), which cosign v2
// stores by default as a DSSE layer of the tag sha256-<hex>.att with its
// verification material in annotations.
func CosignAttest(t testing.TB, key, password, predicateType, predicate, image string, extra ...string) {
	t.Helper()
	args := append([]string{"attest", "--key", key, "--type", predicateType, "--predicate", predicate,
		"--tlog-upload=false", "--allow-insecure-registry", "--yes"}, extra...)
	if _, err := runCosign(t, "", cosignEnv(t, "COSIGN_PASSWORD="+password), append(args, image)...); err != nil {
		t.Fatal(err)
	}
}

// CosignVerifyAttestation runs, offline,
//
//	cosign verify-attestation --key PUBKEY --type TYPE --trusted-root EMPTY_ROOT \
//	  --insecure-ignore-tlog --insecure-ignore-sct --allow-insecure-registry IMAGE
//
// It returns cosign's output, and an error holding it when cosign refuses.
func CosignVerifyAttestation(t testing.TB, pubKey, predicateType, image string) (string, error) {
	t.Helper()
	return runCosign(t, "", cosignEnv(t), "verify-attestation", "--key", pubKey, "--type", predicateType,
		"--trusted-root", EmptyTrustedRoot(t), "--insecure-ignore-tlog", "--insecure-ignore-sct",
		"--allow-insecure-registry", image)
}
