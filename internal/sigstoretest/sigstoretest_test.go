package sigstoretest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/trustgate/trustgate/internal/sigstoretest"
)

// TestKeylessRoundTrip signs an in-toto statement keyless against the real
// local services and verifies it with sigstore-go, then checks the negative
// cases and the signing config. It runs inside a subtest so that, once the
// Env's cleanups have run, it can check that nothing was left running.
func TestKeylessRoundTrip(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("env", testKeylessRoundTrip)
	if t.Failed() {
		return
	}
	// Every service is killed by now, so the sign clients' idle
	// connections have been closed from the far end; give their
	// goroutines a moment to notice.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines: %d before the Env, %d after its cleanup:\n%s", before, n, buf)
	}
}

func testKeylessRoundTrip(t *testing.T) {
	start := time.Now()
	env := sigstoretest.Start(t)
	t.Logf("services up in %v (TSA mode %s): fulcio %s, rekor %s, tsa %s, issuer %s",
		time.Since(start).Round(time.Millisecond), env.TSAMode, env.FulcioURL, env.RekorURL, env.TSAURL, env.IssuerURL)

	trustedRoot, err := root.NewTrustedRootFromJSON(env.TrustedRootJSON)
	if err != nil {
		t.Fatalf("trusted root: %v\n%s", err, env.TrustedRootJSON)
	}
	if fromFile, err := root.NewTrustedRootFromPath(env.TrustedRootPath); err != nil {
		t.Fatalf("trusted root file: %v", err)
	} else if len(fromFile.RekorLogs()) != 1 {
		t.Fatalf("trusted root file: %d rekor logs", len(fromFile.RekorLogs()))
	}
	if _, ok := trustedRoot.RekorLogs()[hex.EncodeToString(env.RekorLogID)]; !ok {
		t.Fatalf("trusted root has no rekor log with ID %x", env.RekorLogID)
	}

	// An in-toto Statement v1 about one artifact.
	artifact := []byte("sigstoretest artifact\n")
	artifactDigest := sha256.Sum256(artifact)
	payload, err := json.Marshal(map[string]any{
		"_type": "https://in-toto.io/Statement/v1",
		"subject": []map[string]any{{
			"name":   "artifact.txt",
			"digest": map[string]string{"sha256": hex.EncodeToString(artifactDigest[:])},
		}},
		"predicateType": "https://trustgate.example/sigstoretest/v1",
		"predicate":     map[string]any{"note": "self-test"},
	})
	if err != nil {
		t.Fatal(err)
	}

	const identity = sigstoretest.DefaultIdentity
	signStart := time.Now()
	pb, err := signKeyless(t, env, payload, env.Token(t, identity))
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	t.Logf("signed in %v", time.Since(signStart).Round(time.Millisecond))
	b := &bundle.Bundle{Bundle: pb}
	if got := b.GetMediaType(); got == "" {
		t.Fatal("bundle has no media type")
	}
	entries, err := b.TlogEntries()
	if err != nil || len(entries) != 1 {
		t.Fatalf("bundle tlog entries: %d, %v", len(entries), err)
	}
	if !entries[0].IsRekorV2() {
		t.Error("tlog entry is not a Rekor v2 entry")
	}

	verifier, err := sgverify.NewVerifier(trustedRoot,
		sgverify.WithTransparencyLog(1),
		sgverify.WithSignedTimestamps(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	issuer, san := env.Identity(identity)
	if issuer != env.IssuerURL || san != identity {
		t.Fatalf("Identity(%q) = %q, %q", identity, issuer, san)
	}
	policy := func(san string) sgverify.PolicyBuilder {
		t.Helper()
		id, err := sgverify.NewShortCertificateIdentity(issuer, "", san, "")
		if err != nil {
			t.Fatal(err)
		}
		return sgverify.NewPolicy(
			sgverify.WithArtifactDigest("sha256", artifactDigest[:]),
			sgverify.WithCertificateIdentity(id),
		)
	}

	res, err := verifier.Verify(b, policy(san))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res.VerifiedIdentity == nil || res.VerifiedIdentity.SubjectAlternativeName.SubjectAlternativeName != san {
		t.Errorf("verified identity = %+v, want SAN %q", res.VerifiedIdentity, san)
	}
	if res.Signature == nil || res.Signature.Certificate == nil || res.Signature.Certificate.Issuer != env.IssuerURL {
		t.Errorf("certificate summary = %+v, want issuer %q", res.Signature, env.IssuerURL)
	}
	if len(res.VerifiedTimestamps) != 1 || res.VerifiedTimestamps[0].Type != "TimestampAuthority" {
		t.Errorf("verified timestamps = %+v, want one from the TSA", res.VerifiedTimestamps)
	}
	if res.Statement == nil || res.Statement.GetPredicateType() != "https://trustgate.example/sigstoretest/v1" {
		t.Errorf("statement = %v", res.Statement)
	}

	// Negative: another SAN must not verify.
	if _, err := verifier.Verify(b, policy("someone-else@sigstoretest.example.com")); err == nil {
		t.Error("verify with another SAN: no error")
	} else {
		t.Logf("another SAN refused as expected: %v", err)
	}
	// Negative: another issuer must not verify.
	other, err := sgverify.NewShortCertificateIdentity("https://issuer.invalid", "", san, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(b, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", artifactDigest[:]), sgverify.WithCertificateIdentity(other))); err == nil {
		t.Error("verify with another issuer: no error")
	}
	// Negative: a token signed by a key the issuer does not publish is
	// refused by Fulcio.
	if _, err := signKeyless(t, env, payload, env.ForgedToken(t, identity)); err == nil {
		t.Error("signing with a forged token: no error")
	} else if !strings.Contains(err.Error(), "Fulcio returned 400") || !strings.Contains(err.Error(), "identity token") {
		t.Errorf("signing with a forged token: %v, want Fulcio's 400 about the identity token", err)
	} else {
		t.Logf("forged token refused as expected: %v", err)
	}

	checkSigningConfig(t, env)
}

// signKeyless signs payload as a DSSE in-toto envelope with an ephemeral
// key, a Fulcio certificate for token, a Rekor v2 entry and a TSA timestamp.
func signKeyless(t *testing.T, env *sigstoretest.Env, payload []byte, token string) (*protobundle.Bundle, error) {
	t.Helper()
	keypair, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: "application/vnd.in-toto+json"}, keypair, sign.BundleOptions{
		CertificateProvider:        sign.NewFulcio(&sign.FulcioOptions{BaseURL: env.FulcioURL}),
		CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: token},
		TransparencyLogs:           []sign.Transparency{sign.NewRekor(&sign.RekorOptions{BaseURL: env.RekorURL, Version: 2})},
		TimestampAuthorities:       []*sign.TimestampAuthority{sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: env.TSAURL})},
		Context:                    ctx,
	})
}

// checkSigningConfig parses the signing config with sigstore-go and checks
// that selecting services from it yields the Env's URLs.
func checkSigningConfig(t *testing.T, env *sigstoretest.Env) {
	t.Helper()
	data, err := os.ReadFile(env.SigningConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := root.NewSigningConfigFromJSON(data)
	if err != nil {
		t.Fatalf("signing config: %v\n%s", err, data)
	}
	now := time.Now()
	fulcio, err := root.SelectService(sc.FulcioCertificateAuthorityURLs(), sign.FulcioAPIVersions, now)
	if err != nil || fulcio.URL != env.FulcioURL {
		t.Errorf("fulcio service = %+v, %v; want %s", fulcio, err, env.FulcioURL)
	}
	oidc, err := root.SelectService(sc.OIDCProviderURLs(), []uint32{1}, now)
	if err != nil || oidc.URL != env.IssuerURL {
		t.Errorf("oidc service = %+v, %v; want %s", oidc, err, env.IssuerURL)
	}
	rekors, err := root.SelectServices(sc.RekorLogURLs(), sc.RekorLogURLsConfig(), sign.RekorAPIVersions, now)
	if err != nil || len(rekors) != 1 || rekors[0].URL != env.RekorURL || rekors[0].MajorAPIVersion != 2 {
		t.Errorf("rekor services = %+v, %v; want %s (v2)", rekors, err, env.RekorURL)
	}
	tsas, err := root.SelectServices(sc.TimestampAuthorityURLs(), sc.TimestampAuthorityURLsConfig(), sign.TimestampAuthorityAPIVersions, now)
	if err != nil || len(tsas) != 1 || tsas[0].URL != env.TSAURL {
		t.Errorf("tsa services = %+v, %v; want %s", tsas, err, env.TSAURL)
	}

	// The services are really where the config says.
	for _, u := range []string{fulcio.URL + "/healthz", rekors[0].URL + "/healthz", oidc.URL + "/.well-known/openid-configuration"} {
		if _, err := url.Parse(u); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	if !bytes.HasPrefix([]byte(env.TSAURL), []byte("http://127.0.0.1:")) {
		t.Errorf("TSAURL %s is not on 127.0.0.1", env.TSAURL)
	}
}

// TestTwoEnvsAtOnce runs two Envs side by side in one process: nothing may
// bind a fixed port or socket name.
func TestTwoEnvsAtOnce(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := sigstoretest.Start(t)
			identity := name + "@sigstoretest.example.com"
			keypair, err := sign.NewEphemeralKeypair(nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			der, err := sign.NewFulcio(&sign.FulcioOptions{BaseURL: env.FulcioURL}).
				GetCertificate(ctx, keypair, &sign.CertificateProviderOptions{IDToken: env.Token(t, identity)})
			if err != nil {
				t.Fatalf("fulcio: %v", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if _, san := env.Identity(identity); len(cert.EmailAddresses) != 1 || cert.EmailAddresses[0] != san {
				t.Errorf("certificate SAN = %v, want %s", cert.EmailAddresses, san)
			}
			ts, err := sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: env.TSAURL}).GetTimestamp(ctx, []byte("signature"))
			if err != nil || len(ts) == 0 {
				t.Errorf("tsa: %d bytes, %v", len(ts), err)
			}
		})
	}
}
