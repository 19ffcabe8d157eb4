package cli_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"

	"github.com/trustgate/trustgate/internal/testutil"
)

// Secrets used by these tests. secretSweep fails a test if any of them, or
// any line of a private key file, shows up in anything the CLI printed.
const (
	testPassword = "pw-Vq7#trustgate-test"
	testToken    = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0cnVzdGdhdGUtdGVzdCJ9.dG9rZW4tc2lnbmF0dXJlLXNlY3JldA"
)

type transcript struct {
	t       *testing.T
	out     strings.Builder
	secrets []string // more secrets for the sweep
}

// run runs the CLI and keeps everything it printed for the sweep.
func (tr *transcript) run(args ...string) (int, string, string) {
	tr.t.Helper()
	code, stdout, stderr := run(tr.t, args...)
	tr.out.WriteString(stdout)
	tr.out.WriteString(stderr)
	return code, stdout, stderr
}

// sweep fails if a secret appears in the transcript. keyFiles are private
// key files whose body lines are secrets too.
func (tr *transcript) sweep(keyFiles ...string) {
	tr.t.Helper()
	secrets := append([]string{testPassword, testToken, "dG9rZW4tc2lnbmF0dXJl"}, tr.secrets...)
	for _, f := range keyFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			tr.t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
	}
	all := tr.out.String()
	for _, s := range secrets {
		if strings.Contains(all, s) {
			tr.t.Errorf("a secret appears in the CLI's output: %.12s...", s)
		}
	}
}

// keyPair makes an encrypted key pair with keygen in dir.
func keyPair(tr *transcript, dir, keyType string) (key, pub string) {
	tr.t.Helper()
	tr.t.Setenv(cli.PasswordEnv, testPassword)
	prefix := filepath.Join(dir, "signer-"+keyType)
	code, _, stderr := tr.run("keygen", "--type", keyType, "--out", prefix)
	if code != 0 {
		tr.t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	return prefix + ".key", prefix + ".pub"
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const cdxPredicate = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[]}`

func TestKeygen(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, pub := keyPair(tr, dir, "ecdsa-p256")
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	for path, want := range map[string]string{key: attest.EncryptedKeyPEM, pub: attest.PublicKeyPEM} {
		data, _ := os.ReadFile(path)
		if b, _ := pem.Decode(data); b == nil || b.Type != want {
			t.Errorf("%s: want a %s PEM block", path, want)
		}
	}
	// Never overwrites.
	before, _ := os.ReadFile(key)
	code, _, stderr := tr.run("keygen", "--out", strings.TrimSuffix(key, ".key"))
	if code != cli.ExitUsage || !strings.Contains(stderr, "exists") {
		t.Errorf("second keygen: exit %d, %q", code, stderr)
	}
	if after, _ := os.ReadFile(key); string(after) != string(before) {
		t.Error("keygen overwrote an existing key")
	}
	// An empty password is refused; --no-password is the explicit way.
	t.Setenv(cli.PasswordEnv, "")
	if code, _, stderr := tr.run("keygen", "--out", filepath.Join(dir, "empty")); code != cli.ExitUsage || !strings.Contains(stderr, "--no-password") {
		t.Errorf("empty password: exit %d, %q", code, stderr)
	}
	code, _, stderr = tr.run("keygen", "--no-password", "--out", filepath.Join(dir, "plain"))
	if code != 0 || !strings.Contains(stderr, "UNENCRYPTED") {
		t.Errorf("--no-password: exit %d, %q", code, stderr)
	}
	// Without the variable and without a terminal there is no password.
	os.Unsetenv(cli.PasswordEnv)
	if code, _, stderr := tr.run("keygen", "--out", filepath.Join(dir, "noterm")); code != cli.ExitUsage || !strings.Contains(stderr, cli.PasswordEnv) {
		t.Errorf("no password source: exit %d, %q", code, stderr)
	}
	if code, _, _ := tr.run("keygen", "--type", "rsa", "--out", filepath.Join(dir, "rsa")); code != cli.ExitUsage {
		t.Errorf("rsa: exit %d", code)
	}
	tr.sweep(key)
}

func TestAttestWithKey(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, _ := keyPair(tr, dir, "ed25519")
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	art := writeFile(t, filepath.Join(dir, "plugin.bin"), "plugin bytes")
	out := filepath.Join(dir, "plugin.bundle.json")
	code, stdout, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art, "--key", key, "--bundle", out)
	if code != 0 || stdout != "" {
		t.Fatalf("attest: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	var st attest.Statement
	if err := json.Unmarshal(b.GetDsseEnvelope().GetPayload(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != attest.StatementType || st.PredicateType != attest.PredicateCycloneDX || len(st.Subject) != 1 ||
		st.Subject[0].Name != "plugin.bin" || st.Subject[0].Digest["sha256"] != sha256hex("plugin bytes") {
		t.Fatalf("statement: %+v", st)
	}
	// Without --bundle the bundle goes to standard output.
	code, stdout, _ = tr.run("attest", "--predicate", pred, "--type", "https://example.com/custom/v1", "--subject", dir, "--key", key)
	if code != 0 || !strings.Contains(stdout, attest.BundleMediaType) {
		t.Fatalf("stdout bundle: exit %d, %.80q", code, stdout)
	}
	tr.sweep(key)
}

func TestAttestRejects(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, pub := keyPair(tr, dir, "ecdsa-p256")
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	art := writeFile(t, filepath.Join(dir, "a.txt"), "a")
	notJSON := writeFile(t, filepath.Join(dir, "bad.json"), `{"api_key": "`+testPassword+`", oops}`)
	corrupt := writeFile(t, filepath.Join(dir, "corrupt.key"), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
	base := func(extra ...string) []string {
		return append([]string{"attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art}, extra...)
	}
	cases := []struct {
		name     string
		args     []string
		password *string
		want     string
	}{
		{"wrong password", base("--key", key), ptr("not-the-password-123"), "wrong password"},
		{"public key as --key", base("--key", pub), nil, "this is a public key"},
		{"corrupt key file", base("--key", corrupt), nil, "corrupt.key"},
		{"missing key file", base("--key", filepath.Join(dir, "nope.key")), nil, "no such file"},
		{"no key and not keyless", base(), nil, "--key KEY and --keyless"},
		{"key and keyless", base("--key", key, "--keyless"), nil, "exactly one"},
		{"missing subject", []string{"attest", "--predicate", pred, "--type", "cyclonedx", "--subject", filepath.Join(dir, "missing.bin"), "--key", key}, nil, "no such file"},
		{"bad type", []string{"attest", "--predicate", pred, "--type", "sbom", "--subject", art, "--key", key}, nil, "--type"},
		{"predicate not JSON", []string{"attest", "--predicate", notJSON, "--type", "cyclonedx", "--subject", art, "--key", key}, nil, "not JSON"},
		{"attach without image", base("--key", key, "--attach"), nil, "--attach needs"},
		{"rekor v2 without TSA", base("--key", key, "--rekor-url", "https://log.example", "--rekor-version", "2"), nil, "timestamp authority"},
		{"token with --key", base("--key", key, "--identity-token", testToken), nil, "for --keyless"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(cli.PasswordEnv, testPassword)
			if c.password != nil {
				t.Setenv(cli.PasswordEnv, *c.password)
			}
			code, stdout, stderr := tr.run(c.args...)
			if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", code, stdout, stderr, c.want)
			}
		})
	}
	tr.sweep(key)
	if strings.Contains(tr.out.String(), "not-the-password-123") {
		t.Error("the wrong password was printed")
	}
}

// Keyless signing that the CA refuses must not print the token.
func TestKeylessRefusedKeepsTokenSecret(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	art := writeFile(t, filepath.Join(dir, "a.txt"), "a")
	echo := httptest.NewServer(echoHandler{})
	defer echo.Close()
	tokenFile := writeFile(t, filepath.Join(dir, "token"), testToken+"\n")
	for _, tok := range []string{testToken, tokenFile} {
		code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art, "--keyless",
			"--identity-token", tok, "--fulcio-url", echo.URL, "--rekor-url", echo.URL)
		if code != cli.ExitUsage || !strings.Contains(stderr, "signing") {
			t.Fatalf("exit %d, %q", code, stderr)
		}
	}
	t.Setenv("SIGSTORE_ID_TOKEN", "")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
	code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", art, "--keyless")
	if code != cli.ExitUsage || !strings.Contains(stderr, "identity token") {
		t.Fatalf("no token: exit %d, %q", code, stderr)
	}
	tr.sweep()
}

func TestAttachAndListCLI(t *testing.T) {
	for _, referrers := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers", false: "tag scheme"}[referrers], func(t *testing.T) {
			tr := &transcript{t: t}
			dir := t.TempDir()
			key, _ := keyPair(tr, dir, "ecdsa-p256")
			pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
			ref, _ := testutil.Registry(t, referrers, nil, "ai/gateway:1.0")
			code, stdout, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", ref, "--key", key, "--attach")
			want := map[bool]string{true: "as referrer", false: "as tag"}[referrers]
			if code != 0 || stdout != "" || !strings.Contains(stderr, want) {
				t.Fatalf("attach: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			code, stdout, stderr = tr.run("attestations", ref)
			if code != 0 || !strings.Contains(stdout, "1 attestation(s), not verified") || !strings.Contains(stdout, attest.PredicateCycloneDX) {
				t.Fatalf("list: exit %d, %q %q", code, stdout, stderr)
			}
			code, stdout, _ = tr.run("attestations", "-o", "json", ref)
			var listing struct {
				Verified     bool
				Attestations []struct{ Source, PredicateType, Signer, Digest string }
			}
			if code != 0 || json.Unmarshal([]byte(stdout), &listing) != nil || listing.Verified || len(listing.Attestations) != 1 ||
				!strings.HasPrefix(listing.Attestations[0].Signer, "key ") {
				t.Fatalf("json list: exit %d, %s", code, stdout)
			}
			tr.sweep(key)
		})
	}
}

func ptr(s string) *string { return &s }

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// echoHandler refuses every request and echoes its Authorization header,
// as a careless server might.
type echoHandler struct{}

func (echoHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "refused: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
}

// publicKeyMaterial trusts one PEM public key, under any hint.
func publicKeyMaterial(t *testing.T, pubPEM []byte) root.TrustedMaterial {
	t.Helper()
	pk, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := attest.TrustedKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// A subject that is both an existing path and an image reference is
// refused; ./ makes it a path.
func TestAttestSubjectAmbiguity(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	key, _ := keyPair(tr, dir, "ecdsa-p256")
	pred := writeFile(t, filepath.Join(dir, "bom.json"), cdxPredicate)
	t.Chdir(dir)
	if err := os.MkdirAll("registry.example.com/app:1.0", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, "registry.example.com/app:1.0/file", "x")
	code, _, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", "registry.example.com/app:1.0", "--key", key)
	if code != cli.ExitUsage || !strings.Contains(stderr, "ambiguous") {
		t.Fatalf("ambiguous subject: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", "./registry.example.com/app:1.0", "--key", key)
	if code != 0 || !strings.Contains(stdout, "dsseEnvelope") {
		t.Fatalf("./ path: exit %d, %q", code, stderr)
	}
	// An explicit path that does not exist is never looked up as an image.
	code, _, stderr = tr.run("attest", "--predicate", pred, "--type", "cyclonedx", "--subject", "./build.out/app", "--key", key)
	if code != cli.ExitUsage || !strings.Contains(stderr, "no such file") {
		t.Fatalf("missing ./ path: exit %d, %q", code, stderr)
	}
}

// keygen never replaces a file, and leaves no half pair behind.
func TestKeygenLeavesNoHalfPair(t *testing.T) {
	tr := &transcript{t: t}
	dir := t.TempDir()
	t.Setenv(cli.PasswordEnv, testPassword)
	prefix := filepath.Join(dir, "k")
	writeFile(t, prefix+".pub", "someone else's public key")
	code, _, stderr := tr.run("keygen", "--out", prefix)
	if code != cli.ExitUsage || !strings.Contains(stderr, "exists") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(prefix + ".key"); !os.IsNotExist(err) {
		t.Error("a private key was left without its public key")
	}
	if b, _ := os.ReadFile(prefix + ".pub"); string(b) != "someone else's public key" {
		t.Error("keygen replaced an existing file")
	}
}

// A registry entry cannot forge or hide rows of the listing with control
// characters: they are shown quoted.
func TestAttestationsListingEscapesRegistryText(t *testing.T) {
	tr := &transcript{t: t}
	ref, d := testutil.Registry(t, false, nil, "ai/gateway:1.0")
	evil := "https://x.example/t\n\x1b[1A\x1b[2Kreferrer  https://slsa.dev/provenance/v1  alice@example.com"
	evilJSON, _ := json.Marshal(evil)
	payload := base64.StdEncoding.EncodeToString([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":` + string(evilJSON) + `}`))
	env := `{"payloadType":"application/vnd.in-toto+json","payload":"` + payload + `","signatures":[{"sig":"AAAA"}]}`
	att, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer: static.NewLayer([]byte(env), "application/vnd.dsse.envelope.v1+json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(ref)
	attTag, _ := name.NewTag(tag.Context().String() + ":sha256-" + d.Hex + ".att")
	if err := remote.Write(attTag, att); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := tr.run("attestations", ref)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.ContainsRune(stdout, 0x1b) || strings.Count(stdout, "\n") != 3 || !strings.Contains(stdout, `\x1b[1A`) {
		t.Fatalf("listing not escaped:\n%q", stdout)
	}
}
