package attest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// testStatement is a statement about one artifact with the given content.
func testStatement(t testing.TB, content string) *Statement {
	t.Helper()
	st, err := NewStatement(PredicateCycloneDX, []byte(testPredicate),
		Subject{Name: "artifact", Digest: map[string]string{"sha256": sha(content)}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// verifyWithKey checks b with sigstore-go's verifier, trusting only pub
// (under its hint), bound to the artifact with the given content.
func verifyWithKey(t testing.TB, b *bundle.Bundle, k *Key, content string) error {
	t.Helper()
	return verifyDigest(t, b, k, sha(content))
}

// verifyDigest checks b with sigstore-go's verifier, trusting only k's
// public key under its hint, bound to the sha256 digest hexDigest.
func verifyDigest(t testing.TB, b *bundle.Bundle, k *Key, hexDigest string) error {
	t.Helper()
	v, err := signature.LoadDefaultVerifier(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	tm := root.NewTrustedPublicKeyMaterial(func(hint string) (root.TimeConstrainedVerifier, error) {
		if hint != k.Hint() {
			return nil, fmt.Errorf("unknown key hint %q", hint)
		}
		return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
	})
	verifier, err := sgverify.NewVerifier(tm, sgverify.WithNoObserverTimestamps())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := hex.DecodeString(hexDigest)
	_, err = verifier.Verify(b, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", d), sgverify.WithKey()))
	return err
}

func TestSignWithKeyVerifies(t *testing.T) {
	for _, kt := range KeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			k, err := GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Sign(context.Background(), testStatement(t, "artifact v1"), k, Services{})
			if err != nil {
				t.Fatal(err)
			}
			if got := b.GetVerificationMaterial().GetPublicKey().GetHint(); got != k.Hint() {
				t.Fatalf("bundle names key %q, want hint %q", got, k.Hint())
			}
			if env := b.GetDsseEnvelope(); env.GetPayloadType() != PayloadType {
				t.Fatalf("payload type %q", env.GetPayloadType())
			}
			if err := verifyWithKey(t, b, k, "artifact v1"); err != nil {
				t.Fatalf("own bundle does not verify: %v", err)
			}
			// The same bundle is refused for another artifact, and under
			// another key.
			if err := verifyWithKey(t, b, k, "artifact v2"); err == nil {
				t.Fatal("bundle verified for an artifact it does not name")
			}
			other, _ := GenerateKey(kt)
			other.hint = k.hint // same name, different key: the signature decides
			if err := verifyWithKey(t, b, other, "artifact v1"); err == nil {
				t.Fatal("bundle verified under another key")
			}
			// Round trip through JSON keeps it verifiable.
			raw, err := MarshalBundle(b)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseBundle(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyWithKey(t, back, k, "artifact v1"); err != nil {
				t.Fatalf("after JSON round trip: %v", err)
			}
		})
	}
}

func TestServicesRejects(t *testing.T) {
	st := testStatement(t, "x")
	k, _ := GenerateKey(ECDSAP256)
	ctx := context.Background()
	cases := []struct {
		name string
		svc  Services
	}{
		{"rekor v2 without timestamp authority", Services{Rekor: []Log{{URL: "https://log.example", Version: 2}}}},
		{"unknown rekor version", Services{Rekor: []Log{{URL: "https://log.example", Version: 3}}}},
		{"not http", Services{TSA: []string{"ftp://tsa.example/ts"}}},
		{"credentials in URL", Services{TSA: []string{"https://user:pw@tsa.example/ts"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Sign(ctx, st, k, c.svc); !errors.Is(err, ErrServices) {
				t.Fatalf("got %v, want ErrServices", err)
			}
		})
	}
	if _, err := SignKeyless(ctx, st, "a.b.c", Services{Fulcio: "https://fulcio.example"}); !errors.Is(err, ErrServices) {
		t.Fatalf("keyless without a log: got %v, want ErrServices", err)
	}
	if _, err := SignKeyless(ctx, st, "a.b.c", Services{Rekor: []Log{{URL: "https://log.example", Version: 1}}}); !errors.Is(err, ErrServices) {
		t.Fatalf("keyless without fulcio: got %v, want ErrServices", err)
	}
	plain := Services{Fulcio: "http://fulcio.example", Rekor: []Log{{URL: "https://log.example", Version: 1}}}
	if _, err := SignKeyless(ctx, st, "a.b.c", plain); !errors.Is(err, ErrServices) || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("token to plain-http Fulcio: got %v, want ErrServices", err)
	}
	if _, err := SignKeyless(ctx, st, "  ", PublicGood); !errors.Is(err, ErrNoIdentityToken) {
		t.Fatalf("keyless without a token: got %v, want ErrNoIdentityToken", err)
	}
}

// A Fulcio that refuses and echoes the token back must not get the token
// into the error.
func TestKeylessErrorNeverHoldsToken(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdG9rZW4ifQ.c2lnbmF0dXJl"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad token: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
	}))
	defer echo.Close()
	svc := Services{Fulcio: echo.URL, Rekor: []Log{{URL: echo.URL, Version: 1}}}
	_, err := SignKeyless(context.Background(), testStatement(t, "x"), token, svc)
	if !errors.Is(err, ErrSign) {
		t.Fatalf("got %v, want ErrSign", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "c2lnbmF0dXJl") {
		t.Fatalf("error holds the token: %v", err)
	}
}

func TestRedact(t *testing.T) {
	base := fmt.Errorf("%w: server said hunter2-Zq9x was wrong", ErrSign)
	err := Redact(base, "hunter2-Zq9x", "")
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("not redacted: %v", err)
	}
	if !errors.Is(err, ErrSign) {
		t.Fatal("redaction lost the sentinel")
	}
	if errors.Unwrap(err) != nil {
		t.Fatal("redacted error exposes the original through Unwrap")
	}
	if Redact(nil, "x") != nil {
		t.Fatal("Redact(nil) != nil")
	}
}

func TestGitHubActionsToken(t *testing.T) {
	const bearer = "runtime-bearer-123456"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer "+bearer || r.URL.Query().Get("audience") != "sigstore" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		fmt.Fprint(w, `{"value":"header.payload.sig"}`)
	}))
	defer srv.Close()

	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
	if _, ok, err := GitHubActionsToken(context.Background(), "sigstore", nil); ok || err != nil {
		t.Fatalf("outside Actions: ok=%v err=%v", ok, err)
	}

	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", srv.URL+"/token?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", bearer)
	tok, ok, err := GitHubActionsToken(context.Background(), "sigstore", srv.Client())
	if err != nil || !ok || tok != "header.payload.sig" {
		t.Fatalf("got %q ok=%v err=%v", tok, ok, err)
	}

	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong-bearer-654321")
	_, ok, err = GitHubActionsToken(context.Background(), "sigstore", srv.Client())
	if !ok || !errors.Is(err, ErrTokenSource) || strings.Contains(err.Error(), "wrong-bearer") {
		t.Fatalf("refused request: ok=%v err=%v", ok, err)
	}
}
