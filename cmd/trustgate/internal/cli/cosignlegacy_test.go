package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/interop"
)

// cosign v2's default blob formats, written by real cosign v2.6.5: the
// older blob bundle (base64Signature) and the detached signature file of
// sign-blob and of attest-blob. Each verifies with the key, as the format
// it is, and is refused for another file and another key.
func TestCosignLegacyBlobFormats(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, pub := interop.CosignGenerateKeyPair(t, dir, testPassword)
	_, otherPub := keyPair(tr, dir, "ecdsa-p256")
	art := writeFile(t, filepath.Join(dir, "model.gguf"), "model weights")
	other := writeFile(t, filepath.Join(dir, "other.gguf"), "other weights")
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	signBundle, signSig := filepath.Join(dir, "sign.bundle"), filepath.Join(dir, "sign.sig")
	attBundle, attSig := filepath.Join(dir, "att.bundle"), filepath.Join(dir, "att.sig")
	interop.CosignSignBlobLegacy(t, key, testPassword, art, signBundle, signSig)
	interop.CosignAttestBlobLegacy(t, key, testPassword, "cyclonedx", pred, art, attBundle, attSig)

	for _, c := range []struct {
		name, command string
		sigArgs       []string
		format        string
	}{
		{"sign-blob bundle", "verify-blob", []string{"--bundle", signBundle}, "cosign blob bundle"},
		{"sign-blob signature", "verify-blob", []string{"--signature", signSig}, "cosign detached signature"},
		{"attest-blob bundle", "verify-attestation", []string{"--bundle", attBundle, "--type", "cyclonedx"}, "cosign blob bundle"},
		{"attest-blob signature", "verify-attestation", []string{"--signature", attSig, "--type", "cyclonedx"}, "cosign detached signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{c.command}, c.sigArgs...)
			code, stdout, stderr := tr.run(append(args, "--key", pub, art)...)
			if code != 0 || !strings.HasPrefix(stdout, "PASS  "+art) || !strings.Contains(stdout, "("+c.format+" ") {
				t.Fatalf("exit %d: %s%s", code, stdout, stderr)
			}
			for _, bad := range [][]string{{"--key", pub, other}, {"--key", otherPub, art}} {
				code, stdout, stderr := tr.run(append(args, bad...)...)
				if code != cli.ExitDenied || !strings.HasPrefix(stdout, "FAIL") {
					t.Errorf("%v: exit %d: %s%s", bad, code, stdout, stderr)
				}
			}
		})
	}
	// A message signature is no attestation, and the other way round,
	// whatever the format.
	if code, stdout, _ := tr.run("verify-attestation", "--bundle", signBundle, "--key", pub, art); code != cli.ExitDenied {
		t.Errorf("verify-attestation took sign-blob's bundle: exit %d: %s", code, stdout)
	}
	if code, stdout, _ := tr.run("verify-blob", "--signature", attSig, "--key", pub, art); code != cli.ExitDenied {
		t.Errorf("verify-blob took attest-blob's envelope: exit %d: %s", code, stdout)
	}
	// cosign agrees on what it wrote.
	if out, err := interop.CosignVerifyBlobLegacy(t, "--key", pub, "--bundle", signBundle, art); err != nil {
		t.Errorf("cosign verify-blob on its own bundle: %v\n%s", err, out)
	}
	if code, _, stderr := tr.run("verify-blob", "--bundle", signBundle, "--signature", signSig, "--key", pub, art); code != cli.ExitUsage || !strings.Contains(stderr, "not both") {
		t.Errorf("--bundle with --signature: exit %d: %s", code, stderr)
	}
}
