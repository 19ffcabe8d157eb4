package cli_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/registrytest"
	"github.com/trustgate/trustgate/internal/sigstoretest"
	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/pin"
)

// trustgate verify image checks an image signed with cosign sign --key
// (cosign v2.6.5, the .sig tag): it passes for cosign's key, and not for
// another key, for a predicate type, or once the .sig tag is tampered
// with, each for its own reason; trustgate attestations lists it as a
// signature.
func TestVerifyImageCosignSignature(t *testing.T) {
	interop.Cosign(t)
	tr := &transcript{t: t}
	dir := t.TempDir()
	ref, _ := testutil.Registry(t, false, nil, "ai/gateway:1.0")
	img, _, err := attest.ImageSubject(context.Background(), ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	key, pub := interop.CosignGenerateKeyPair(t, dir, testPassword)
	_, otherPub := keyPair(tr, t.TempDir(), "ecdsa-p256")
	interop.CosignSign(t, key, testPassword, img.String())

	code, stdout, _ := tr.run("verify", "image", ref, "--key", pub)
	if code != 0 || !strings.Contains(stdout, "PASS  "+img.String()+`  tag .sig sha256:`) || !strings.Contains(stdout, ": cosign signature signed by key ") {
		t.Fatalf("cosign's signature: exit %d: %s", code, stdout)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"another key", []string{"--key", otherPub}, []string{"FAIL  ", "cosign signature: signature does not verify"}},
		{"a predicate type", []string{"--key", pub, "--type", "cyclonedx"}, []string{"SKIP  ", "cosign signature signed by key", "not counted: a signature attests no predicate type, and --type https://cyclonedx.org/bom was given"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := tr.run(append([]string{"verify", "image", ref}, c.args...)...)
			if code != cli.ExitDenied {
				t.Fatalf("exit %d: %s %s", code, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stdout, w) {
					t.Fatalf("no %q in:\n%s", w, stdout)
				}
			}
		})
	}

	code, stdout, _ = tr.run("attestations", ref)
	if code != 0 || !strings.Contains(stdout, "0 attestation(s) and 1 signature(s), not verified") || !strings.Contains(stdout, "tag .sig  cosign annotations  cosign signature  a key (cosign's formats do not name it)") {
		t.Fatalf("attestations: exit %d: %s", code, stdout)
	}
	code, stdout, _ = tr.run("attestations", ref, "-o", "json")
	var listed struct {
		Attestations []map[string]string `json:"attestations"`
	}
	if err := json.Unmarshal([]byte(stdout), &listed); code != 0 || err != nil || len(listed.Attestations) != 1 || listed.Attestations[0]["kind"] != "signature" || listed.Attestations[0]["source"] != "tag .sig" || listed.Attestations[0]["format"] != "cosign annotations" {
		t.Fatalf("attestations -o json: exit %d, %v: %s", code, err, stdout)
	}

	// Tampered .sig tags, each from cosign's own layer with one change.
	good := testutil.ReadSigTag(t, img)[0]
	img2, _ := random.Image(256, 1)
	if err := remote.Write(img.Context().Tag("2.0"), img2); err != nil {
		t.Fatal(err)
	}
	d2, _ := img2.Digest()
	other := img.Context().Digest(d2.String())
	interop.CosignSign(t, key, testPassword, other.String())
	otherLayer := testutil.ReadSigTag(t, other)[0]
	sig, _ := base64.StdEncoding.DecodeString(good.Annotations[testutil.CosignSignatureAnnotation])
	sig[0] ^= 0x80
	for _, c := range []struct {
		name  string
		layer testutil.SigLayer
		want  string
	}{
		{"a flipped signature byte", testutil.SigLayer{Payload: good.Payload, Annotations: map[string]string{testutil.CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}}, "cosign signature: signature does not verify"},
		{"a swapped payload", testutil.SigLayer{Payload: otherLayer.Payload, Annotations: good.Annotations}, "cosign signature: signature does not verify"},
		{"a payload naming another digest", otherLayer, "cosign signature: artifact is not a subject of the attestation: the signed payload names " + other.DigestStr() + ", and the image is " + img.DigestStr()},
	} {
		t.Run(c.name, func(t *testing.T) {
			testutil.WriteSigTag(t, img, c.layer)
			code, stdout, _ := tr.run("verify", "image", ref, "--key", pub)
			if code != cli.ExitDenied || !strings.Contains(stdout, "FAIL  ") || !strings.Contains(stdout, c.want) {
				t.Fatalf("exit %d, want %d saying %q:\n%s", code, cli.ExitDenied, c.want, stdout)
			}
		})
	}
	tr.sweep(key)
}

// Beside an attestation, a signature does not count toward --type, and
// does not stop the attestation from passing.
func TestVerifyImageAttestationAndSignature(t *testing.T) {
	interop.Cosign(t)
	tr := &transcript{t: t}
	dir := t.TempDir()
	ref, _ := testutil.Registry(t, true, nil, "ai/gateway:1.0")
	img, _, err := attest.ImageSubject(context.Background(), ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	key, pub := interop.CosignGenerateKeyPair(t, dir, testPassword)
	interop.CosignSign(t, key, testPassword, img.String())
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	t.Setenv(cli.PasswordEnv, testPassword)
	if code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", ref, "--key", key, "--attach"); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, _ := tr.run("verify", "image", ref, "--key", pub, "--type", "cyclonedx")
	if code != 0 || !strings.Contains(stdout, "PASS  "+img.String()+"  referrer sha256:") || !strings.Contains(stdout, "https://cyclonedx.org/bom signed by key") || !strings.Contains(stdout, "SKIP  "+img.String()+"  tag .sig sha256:") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	code, stdout, _ = tr.run("attestations", ref)
	if code != 0 || !strings.Contains(stdout, "1 attestation(s) and 1 signature(s)") {
		t.Fatalf("attestations: exit %d:\n%s", code, stdout)
	}
	tr.sweep(key)
}

// The issue as a new user met it: on a real registry server (Debian's
// docker-registry), an image attested with cosign attest --key --type
// cyclonedx (cosign v2.6.5's default format: a .att layer, verification
// material in annotations, no log) verifies offline with verify image
// --key --type cyclonedx, as with cosign itself, and the output says
// which format it was read from; another key is refused.
func TestVerifyImageCosignAttestationOnDockerRegistry(t *testing.T) {
	interop.Cosign(t)
	tr := &transcript{t: t}
	dir := t.TempDir()
	ref := registrytest.Image(t, "ai/gateway:1.0")
	img, _, err := attest.ImageSubject(context.Background(), ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	key, pub := interop.CosignGenerateKeyPair(t, dir, testPassword)
	_, otherPub := keyPair(tr, t.TempDir(), "ecdsa-p256")
	bom := writeFile(t, filepath.Join(dir, "sbom.json"), cdxPredicate)
	interop.CosignAttest(t, key, testPassword, "cyclonedx", bom, img.String())
	if out, err := interop.CosignVerifyAttestation(t, pub, "cyclonedx", img.String()); err != nil {
		t.Fatalf("cosign refuses what it attested: %v\n%s", err, out)
	}

	code, stdout, stderr := tr.run("verify", "image", ref, "--key", pub, "--type", "cyclonedx")
	if code != 0 || !strings.Contains(stdout, "PASS  "+img.String()+"  tag sha256:") || !strings.Contains(stdout, "(cosign annotations): https://cyclonedx.org/bom signed by key ") {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = tr.run("verify", "image", ref, "--key", otherPub, "--type", "cyclonedx")
	if code != cli.ExitDenied || !strings.Contains(stdout, "FAIL  ") || !strings.Contains(stdout, "signature does not verify") {
		t.Fatalf("another key: exit %d:\n%s", code, stdout)
	}
	code, stdout, _ = tr.run("attestations", ref)
	if code != 0 || !strings.Contains(stdout, "1 attestation(s)") || !strings.Contains(stdout, "tag     cosign annotations  https://cyclonedx.org/bom") {
		t.Fatalf("attestations: exit %d:\n%s", code, stdout)
	}
	tr.sweep(key)
}

// A keyless cosign signature made without a log (cosign sign against the
// local Fulcio, --tlog-upload=false, a timestamp from the local TSA) is
// refused by default for its missing log entry, and passes verify image
// only with the explicit --insecure-ignore-tlog, for its signer alone;
// --insecure-ignore-tlog with --key is bad input.
func TestVerifyImageKeylessWithoutLog(t *testing.T) {
	interop.Cosign(t)
	env := sigstoretest.Start(t)
	tr := &transcript{t: t}
	ref := registrytest.Image(t, "ai/gateway:1.0")
	img, _, err := attest.ImageSubject(context.Background(), ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	interop.CosignSignKeyless(t, interop.KeylessFor(t, env, sigstoretest.DefaultIdentity), img.String())
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	keyless := []string{"verify", "image", ref, "--certificate-identity", san, "--certificate-oidc-issuer", issuer, "--trusted-root", env.TrustedRootPath}

	code, stdout, _ := tr.run(keyless...)
	if code != cli.ExitDenied || !strings.Contains(stdout, "FAIL  ") || !strings.Contains(stdout, "transparency log") {
		t.Fatalf("no log, no opt-in: exit %d:\n%s", code, stdout)
	}
	code, stdout, stderr := tr.run(append(keyless, "--insecure-ignore-tlog")...)
	if code != 0 || !strings.Contains(stdout, "PASS  "+img.String()+"  tag .sig sha256:") || !strings.Contains(stdout, "(cosign annotations): cosign signature signed by ") {
		t.Fatalf("--insecure-ignore-tlog: exit %d:\n%s%s", code, stdout, stderr)
	}
	other := slices.Clone(keyless)
	other[4] = "someone-else@sigstoretest.example.com"
	if code, stdout, _ := tr.run(append(other, "--insecure-ignore-tlog")...); code != cli.ExitDenied || !strings.Contains(stdout, "FAIL  ") {
		t.Fatalf("another identity: exit %d:\n%s", code, stdout)
	}
	if code, _, stderr := tr.run("verify", "image", ref, "--key", env.TrustedRootPath, "--insecure-ignore-tlog"); code != cli.ExitUsage || !strings.Contains(stderr, "--insecure-ignore-tlog is for keyless signatures") {
		t.Fatalf("with --key: exit %d: %s", code, stderr)
	}
}
