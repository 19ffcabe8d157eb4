package cli_test

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/sigstoretest"
	"github.com/trustgate/trustgate/internal/testutil"
)

// verifyKeyless checks a keyless bundle with sigstore-go against the local
// services' trusted root: certificate chain, Rekor v2 inclusion, an RFC 3161
// timestamp, the signer's identity, and the subject's sha256.
func verifyKeyless(t *testing.T, env *sigstoretest.Env, bundlePath, identity, artifactSHA256 string) error {
	t.Helper()
	raw, err := os.ReadFile(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRootFromJSON(env.TrustedRootJSON)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sgverify.NewVerifier(tr, sgverify.WithTransparencyLog(1), sgverify.WithSignedTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	issuer, san := env.Identity(identity)
	id, err := sgverify.NewShortCertificateIdentity(issuer, "", san, "")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := hex.DecodeString(artifactSHA256)
	_, err = v.Verify(b, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", d), sgverify.WithCertificateIdentity(id)))
	return err
}

// TestKeylessEndToEnd signs keyless with the CLI against real Fulcio, Rekor
// v2 and timestamp authority processes on 127.0.0.1, configured by a
// Sigstore signing config, and checks the bundle with sigstore-go and with
// cosign.
func TestKeylessEndToEnd(t *testing.T) {
	env := sigstoretest.Start(t)
	tr := &transcript{t: t}
	dir := t.TempDir()
	const identity = "release-bot@trustgate.test"
	token := env.Token(t, identity)
	tokenFile := writeFile(t, filepath.Join(dir, "oidc-token"), token)
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	art := writeFile(t, filepath.Join(dir, "gateway.bin"), "gateway v1")
	bundle := filepath.Join(dir, "gateway.bundle.json")

	code, stdout, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art,
		"--keyless", "--identity-token", tokenFile, "--signing-config", env.SigningConfigPath, "--bundle", bundle)
	if code != 0 || stdout != "" {
		t.Fatalf("keyless attest: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, identity) {
		t.Errorf("stderr %q does not name the signer", stderr)
	}
	if err := verifyKeyless(t, env, bundle, identity, sha256hex("gateway v1")); err != nil {
		t.Fatalf("keyless bundle does not verify: %v", err)
	}
	if err := verifyKeyless(t, env, bundle, "someone-else@trustgate.test", sha256hex("gateway v1")); err == nil {
		t.Error("bundle verified for another identity")
	}
	if err := verifyKeyless(t, env, bundle, identity, sha256hex("gateway v2")); err == nil {
		t.Error("bundle verified for another artifact")
	}

	// trustgate verify-attestation, with cosign's flags.
	code, stdout, _ = tr.run("verify-attestation", "--bundle", bundle, "--certificate-identity", identity,
		"--certificate-oidc-issuer", env.IssuerURL, "--trusted-root", env.TrustedRootPath, "--type", "cyclonedx", art)
	if code != 0 || !strings.Contains(stdout, "PASS") {
		t.Errorf("verify-attestation keyless: exit %d: %s", code, stdout)
	}
	code, stdout, _ = tr.run("verify-attestation", "--bundle", bundle, "--certificate-identity-regexp", `^.*@fork\.example$`,
		"--certificate-oidc-issuer", env.IssuerURL, "--trusted-root", env.TrustedRootPath, art)
	if code != 1 || !strings.Contains(stdout, "signer is not the one required") {
		t.Errorf("verify-attestation, other identity: exit %d: %s", code, stdout)
	}

	// cosign checks the same bundle against the same trusted root. There is
	// no CT log, and Rekor v2 gives no integrated time, hence the flags.
	cosign := interop.Cosign(t)
	issuer, san := env.Identity(identity)
	verify := exec.Command(cosign, "verify-blob-attestation", "--bundle", bundle, "--new-bundle-format",
		"--trusted-root", env.TrustedRootPath, "--use-signed-timestamps", "--insecure-ignore-sct",
		"--certificate-identity", san, "--certificate-oidc-issuer", issuer, "--type", "cyclonedx", art)
	verify.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "SIGSTORE_NO_CACHE=true"}
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("cosign refuses the keyless bundle: %v\n%s", err, out)
	}

	// A token the issuer did not sign is refused by Fulcio, and the
	// refusal does not print it.
	forged := env.ForgedToken(t, identity)
	code, _, stderr = tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art,
		"--keyless", "--identity-token", forged, "--signing-config", env.SigningConfigPath, "--bundle", bundle+".forged")
	if code != 2 || !strings.Contains(stderr, "signing") {
		t.Errorf("forged token: exit %d, %q", code, stderr)
	}
	tr.secrets = append(tr.secrets, token, forged)
	tr.sweep()
}

// Keyless with --attach: the listing shows who signed it.
func TestKeylessAttach(t *testing.T) {
	env := sigstoretest.Start(t)
	tr := &transcript{t: t}
	dir := t.TempDir()
	ref, _ := testutil.Registry(t, true, nil, "ai/guardrail:2.0")
	token := env.Token(t, sigstoretest.DefaultIdentity)
	t.Setenv("SIGSTORE_ID_TOKEN", token)
	pred := writeFile(t, filepath.Join(dir, "prov.json"), `{"buildDefinition":{"buildType":"https://trustgate.dev/test"},"runDetails":{"builder":{"id":"https://trustgate.dev/ci"}}}`)
	code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "slsaprovenance", "--subject", ref,
		"--keyless", "--signing-config", env.SigningConfigPath, "--attach")
	if code != 0 || !strings.Contains(stderr, "as referrer") {
		t.Fatalf("keyless attach: exit %d, %q", code, stderr)
	}
	code, stdout, _ := tr.run("attestations", ref)
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	if code != 0 || !strings.Contains(stdout, attest.PredicateSLSAProvenance) || !strings.Contains(stdout, san+" (issuer "+issuer+")") {
		t.Fatalf("listing: exit %d\n%s", code, stdout)
	}
	tr.secrets = append(tr.secrets, token)
	tr.sweep()
}

// TestKeyWithLogAndTimestamp: a key signature entered in Rekor v2 and
// timestamped by the TSA, both real processes; sigstore-go verifies the
// entry and the timestamp against the services' trusted root.
func TestKeyWithLogAndTimestamp(t *testing.T) {
	env := sigstoretest.Start(t)
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, pub := keyPair(tr, dir, "ecdsa-p256")
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	art := writeFile(t, filepath.Join(dir, "agent.bin"), "agent v1")
	bundle := filepath.Join(dir, "agent.bundle.json")
	code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art, "--key", key,
		"--rekor-url", env.RekorURL, "--rekor-version", "2", "--tsa-url", env.TSAURL, "--bundle", bundle)
	if code != 0 {
		t.Fatalf("attest: %s", stderr)
	}
	raw, _ := os.ReadFile(bundle)
	b, err := attest.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.GetVerificationMaterial().GetTlogEntries()); n != 1 {
		t.Fatalf("%d log entries, want 1", n)
	}
	if n := len(b.GetVerificationMaterial().GetTimestampVerificationData().GetRfc3161Timestamps()); n != 1 {
		t.Fatalf("%d timestamps, want 1", n)
	}
	trusted, err := root.NewTrustedRootFromJSON(env.TrustedRootJSON)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := os.ReadFile(pub)
	keyMaterial := publicKeyMaterial(t, pubPEM)
	v, err := sgverify.NewVerifier(root.TrustedMaterialCollection{trusted, keyMaterial},
		sgverify.WithTransparencyLog(1), sgverify.WithSignedTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := hex.DecodeString(sha256hex("agent v1"))
	if _, err := v.Verify(b, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", d), sgverify.WithKey())); err != nil {
		t.Fatalf("log entry and timestamp do not verify: %v", err)
	}
	// cosign too, by key, with the log entry checked.
	if err := interop.CosignVerifyBlobAttestation(t, bundle, pub, "cyclonedx", art); err != nil {
		t.Errorf("cosign: %v", err)
	}
	tr.sweep(key)
}

// sbom --attest --keyless: one step from manifest to a keyless SBOM
// attestation about every component.
func TestSBOMAttestKeyless(t *testing.T) {
	env := sigstoretest.Start(t)
	tr := &transcript{t: t}
	manifest := testutil.Example(t)
	token := env.Token(t, sigstoretest.DefaultIdentity)
	t.Setenv("SIGSTORE_ID_TOKEN", token)
	out := filepath.Join(t.TempDir(), "sbom.cdx.json")
	code, _, stderr := tr.run("sbom", "--stack", manifest, "-o", out, "--attest", "--keyless", "--signing-config", env.SigningConfigPath)
	if code != 0 {
		t.Fatalf("sbom --attest --keyless: exit %d: %s", code, stderr)
	}
	data, _ := os.ReadFile(manifest)
	if err := verifyKeyless(t, env, out+".bundle.json", sigstoretest.DefaultIdentity, sha256hex(string(data))); err != nil {
		t.Fatalf("SBOM attestation does not verify for the manifest: %v", err)
	}
	guardrail, _ := os.ReadFile(filepath.Join(filepath.Dir(manifest), "bin", "guardrail"))
	if err := verifyKeyless(t, env, out+".bundle.json", sigstoretest.DefaultIdentity, sha256hex(string(guardrail))); err != nil {
		t.Fatalf("SBOM attestation does not verify for the guardrail plugin: %v", err)
	}
	tr.secrets = append(tr.secrets, token)
	tr.sweep()
}

// Finding 4, through the CLI: with two policy names that match one keyless
// identity and threshold 2, the same SBOM bundle passed twice, or the
// deployment attested twice by the same identity, is one signature.
func TestVerifyThresholdCountsSigners(t *testing.T) {
	env := sigstoretest.Start(t)
	tr := &transcript{t: t}
	e := newVerifyEnv(t, tr)
	issuer, san := env.Identity(sigstoretest.DefaultIdentity)
	token := env.Token(t, sigstoretest.DefaultIdentity)
	tr.secrets = append(tr.secrets, token)
	t.Setenv("SIGSTORE_ID_TOKEN", token)
	var bundles []string
	for i := range 2 {
		out := filepath.Join(t.TempDir(), "sbom.cdx.json")
		if code, _, stderr := tr.run("sbom", "--stack", e.stack, "-o", out, "--attest", "--keyless", "--signing-config", env.SigningConfigPath); code != 0 {
			t.Fatalf("keyless SBOM %d: %s", i, stderr)
		}
		bundles = append(bundles, out+".bundle.json")
	}
	root := writeFile(t, filepath.Join(t.TempDir(), "trusted_root.json"), string(env.TrustedRootJSON))
	pol, _ := os.ReadFile(e.policy)
	text := strings.Replace(string(pol), "signers:\n", "signers:\n  - name: exact\n    keyless: {issuer: \""+issuer+"\", subject: \""+san+"\"}\n  - name: pattern\n    keyless: {issuer: \""+issuer+"\", subjectRegexp: '^.*@sigstoretest\\.example\\.com$'}\n", 1)
	text = strings.Replace(text, "    kind: gateway\n", "    kind: gateway\n    signers: {anyOf: [exact, pattern], threshold: 2}\n", 1)
	text = strings.Replace(text, "version: 1", "version: 2", 1)
	writeFile(t, e.policy, text)
	if code, _, stderr := tr.run("policy", "sign", e.policy, "--key", e.key); code != 0 {
		t.Fatalf("policy sign: %s", stderr)
	}
	base := []string{"verify", "--stack", e.stack, "--policy", e.policy, "--trust-root", e.pub, "--trusted-root", root, "--state", e.state, "--bundle", e.sbomBundle}
	for name, extra := range map[string][]string{
		"once":                           {"--bundle", bundles[0]},
		"the same bundle twice":          {"--bundle", bundles[0], "--bundle", bundles[0]},
		"two bundles by the same signer": {"--bundle", bundles[0], "--bundle", bundles[1]},
	} {
		t.Run(name, func(t *testing.T) {
			out := e.denied(t, tr, append(base, extra...), "FAIL  gateway/trustgate-gateway", ".signers: expected 2 of exact, pattern, found 1 distinct signature(s)")
			if !strings.Contains(out, "signed by exact, pattern") {
				t.Fatalf("the keyless bundle did not verify under both names:\n%s", out)
			}
		})
	}
	tr.sweep(e.key)
}
