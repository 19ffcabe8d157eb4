package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/internal/testutil"
)

// peers checks a key-signed bundle with both peer verifiers: each must
// accept it for file and refuse it for other.
func peers(t *testing.T, bundle, pub, file, other string) {
	t.Helper()
	if err := interop.CosignVerifyBlobAttestation(t, bundle, pub, "cyclonedx", file); err != nil {
		t.Errorf("cosign refuses trustgate's bundle: %v", err)
	}
	if err := interop.CosignVerifyBlobAttestation(t, bundle, pub, "cyclonedx", other); err == nil {
		t.Error("cosign accepts the bundle for another file")
	}
	if err := interop.SigstoreJSVerify(t, bundle, pub, file, attest.PredicateCycloneDX); err != nil {
		t.Errorf("sigstore-js refuses trustgate's bundle: %v", err)
	}
	if err := interop.SigstoreJSVerify(t, bundle, pub, other, attest.PredicateCycloneDX); err == nil {
		t.Error("sigstore-js accepts the bundle for another file")
	}
}

func TestInteropKeySignedBundles(t *testing.T) {
	for _, kt := range attest.KeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			tr := &transcript{t: t}
			dir := t.TempDir()
			key, pub := keyPair(tr, dir, string(kt))
			pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
			art := writeFile(t, filepath.Join(dir, "guardrail.bin"), "guardrail v1")
			other := writeFile(t, filepath.Join(dir, "guardrail-evil.bin"), "guardrail v1 with a backdoor")
			bundle := filepath.Join(dir, "guardrail.bundle.json")
			if code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art, "--key", key, "--bundle", bundle); code != 0 {
				t.Fatalf("attest: %s", stderr)
			}
			peers(t, bundle, pub, art, other)
			tr.sweep(key)
		})
	}
}

// A key made by cosign generate-key-pair signs with trustgate, and cosign
// accepts the result; a wrong password is a clear error.
func TestCosignMadeKeySigns(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, pub := interop.CosignGenerateKeyPair(t, dir, testPassword)
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	art := writeFile(t, filepath.Join(dir, "agent.bin"), "audit agent")
	other := writeFile(t, filepath.Join(dir, "other.bin"), "other")
	bundle := filepath.Join(dir, "agent.bundle.json")
	t.Setenv(cli.PasswordEnv, testPassword)
	if code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art, "--key", key, "--bundle", bundle); code != 0 {
		t.Fatalf("attest with a cosign key: %s", stderr)
	}
	peers(t, bundle, pub, art, other)

	t.Setenv(cli.PasswordEnv, "not-the-cosign-password")
	code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art, "--key", key, "--bundle", bundle+".2")
	if code != cli.ExitUsage || !strings.Contains(stderr, key) || !strings.Contains(stderr, "wrong password") {
		t.Fatalf("wrong password: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(bundle + ".2"); !os.IsNotExist(err) {
		t.Error("a bundle was written although signing failed")
	}
	tr.sweep(key)
}

// sbom --attest signs the SBOM about the manifest and every component:
// cosign then checks the manifest and a plugin binary against it.
func TestSBOMAttestInterop(t *testing.T) {
	tr := &transcript{t: t}
	manifest := testutil.Example(t)
	exampleDir := filepath.Dir(manifest)
	dir := t.TempDir()
	key, pub := keyPair(tr, dir, "ecdsa-p256")
	out := filepath.Join(dir, "sbom.cdx.json")
	code, stdout, stderr := tr.run("sbom", "--stack", manifest, "-o", out, "--attest", "--key", key)
	if code != 0 || stdout != "" {
		t.Fatalf("sbom --attest: exit %d: %s", code, stderr)
	}
	bundle := out + ".bundle.json"
	if !strings.Contains(stderr, "wrote "+bundle) {
		t.Errorf("stderr %q does not name the bundle", stderr)
	}
	other := writeFile(t, filepath.Join(dir, "not-in-the-stack"), "x")
	for _, f := range []string{manifest, filepath.Join(exampleDir, "bin", "guardrail")} {
		peers(t, bundle, pub, f, other)
	}
	// --attest needs somewhere to put the bundle, and a signer.
	if code, _, stderr := tr.run("sbom", "--stack", manifest, "--attest", "--key", key); code != cli.ExitUsage || !strings.Contains(stderr, "--bundle") {
		t.Errorf("stdout SBOM without --bundle: exit %d, %q", code, stderr)
	}
	if code, _, stderr := tr.run("sbom", "--stack", manifest, "-o", out, "--attest"); code != cli.ExitUsage || !strings.Contains(stderr, "--keyless") {
		t.Errorf("no signer: exit %d, %q", code, stderr)
	}
	if code, _, _ := tr.run("sbom", "--stack", manifest, "-o", out, "--key", key); code != cli.ExitUsage {
		t.Errorf("--key without --attest: exit %d", code)
	}
	tr.sweep(key)
}

// A message signature cosign makes (sign-blob --new-bundle-format --key)
// verifies with verify-blob, is refused for another file and by another
// key, and is no attestation: verify-attestation refuses it.
func TestVerifyBlobCosignSignBlob(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, pub := interop.CosignGenerateKeyPair(t, dir, testPassword)
	_, otherPub := keyPair(tr, dir, "ecdsa-p256")
	art := writeFile(t, filepath.Join(dir, "model.gguf"), "model weights")
	other := writeFile(t, filepath.Join(dir, "other.gguf"), "other weights")
	bundle := filepath.Join(dir, "model.gguf.bundle.json")
	interop.CosignSignBlob(t, key, testPassword, art, bundle)

	code, stdout, stderr := tr.run("verify-blob", "--bundle", bundle, "--key", pub, art)
	if code != 0 || !strings.HasPrefix(stdout, "PASS  "+art+"  message signature by key ") {
		t.Fatalf("verify-blob: exit %d: %s%s", code, stdout, stderr)
	}
	code, stdout, _ = tr.run("verify-blob", "--bundle", bundle, "--key", pub, "-o", "json", "sha256:"+testsign.Sum("model weights"))
	if code != 0 || !strings.Contains(stdout, `"digest": "sha256:`+testsign.Sum("model weights")+`"`) {
		t.Fatalf("verify-blob by digest: exit %d: %s", code, stdout)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"another file", []string{"--key", pub, other}, "another artifact"},
		{"another key", []string{"--key", otherPub, art}, "signature does not verify"},
	} {
		code, stdout, _ := tr.run(append([]string{"verify-blob", "--bundle", bundle}, c.args...)...)
		if code != cli.ExitDenied || !strings.Contains(stdout, "FAIL") || !strings.Contains(stdout, c.want) {
			t.Errorf("%s: exit %d: %s", c.name, code, stdout)
		}
	}
	code, stdout, _ = tr.run("verify-attestation", "--bundle", bundle, "--key", pub, art)
	if code != cli.ExitDenied || !strings.Contains(stdout, "no DSSE envelope") {
		t.Errorf("verify-attestation took a message signature: exit %d: %s", code, stdout)
	}
	if code, _, stderr := tr.run("verify-blob", "--bundle", bundle, "--key", pub, "--type", "cyclonedx", art); code != cli.ExitUsage {
		t.Errorf("--type: exit %d: %s", code, stderr)
	}
}
