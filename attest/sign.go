package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trustgate/trustgate/internal/safetext"
)

// Signing errors.
var (
	// ErrServices: the services asked for cannot make a verifiable bundle
	// (keyless without a log, Rekor v2 without a timestamp authority, a
	// URL that is not http(s)).
	ErrServices = errors.New("signing services")
	// ErrSign: a signing service refused or failed.
	ErrSign = errors.New("signing")
	// ErrNoIdentityToken: keyless signing was asked for without a token.
	ErrNoIdentityToken = errors.New("keyless signing needs an OIDC identity token")
)

// Log is a transparency log: a Rekor base URL and its major API version (1
// or 2). Rekor v2 entries carry no time, so a bundle with one needs a
// timestamp authority too.
type Log struct {
	URL     string
	Version uint32
}

// Services names the Sigstore services one signing uses. The zero value uses
// none: a key signature with no log entry and no timestamp.
type Services struct {
	// Fulcio is the certificate authority's base URL (keyless only).
	Fulcio string
	// Rekor lists the logs to enter the signature in.
	Rekor []Log
	// TSA lists RFC 3161 timestamp endpoints (full URLs).
	TSA []string
	// Transport carries the requests to Fulcio and the timestamp
	// authorities; nil means http.DefaultTransport. (sigstore-go's Rekor
	// client brings its own.)
	Transport http.RoundTripper
}

// PublicGood is the public Sigstore instance, the default for keyless
// signing: Fulcio and Rekor v1 (whose entries carry a signed time).
var PublicGood = Services{
	Fulcio: "https://fulcio.sigstore.dev",
	Rekor:  []Log{{URL: "https://rekor.sigstore.dev", Version: 1}},
}

// ServicesFromSigningConfig selects services from a Sigstore signing config
// (signing_config.json) as its own rules say, valid at now. Fulcio is taken
// only when keyless is set.
func ServicesFromSigningConfig(sc *root.SigningConfig, keyless bool, now time.Time) (Services, error) {
	var svc Services
	if keyless {
		f, err := root.SelectService(sc.FulcioCertificateAuthorityURLs(), sign.FulcioAPIVersions, now)
		if err != nil {
			return svc, fmt.Errorf("%w: signing config: fulcio: %w", ErrServices, err)
		}
		svc.Fulcio = f.URL
	}
	if len(sc.RekorLogURLs()) > 0 {
		logs, err := root.SelectServices(sc.RekorLogURLs(), sc.RekorLogURLsConfig(), sign.RekorAPIVersions, now)
		if err != nil {
			return svc, fmt.Errorf("%w: signing config: rekor: %w", ErrServices, err)
		}
		for _, l := range logs {
			svc.Rekor = append(svc.Rekor, Log{URL: l.URL, Version: l.MajorAPIVersion})
		}
	}
	if len(sc.TimestampAuthorityURLs()) > 0 {
		tsas, err := root.SelectServices(sc.TimestampAuthorityURLs(), sc.TimestampAuthorityURLsConfig(), sign.TimestampAuthorityAPIVersions, now)
		if err != nil {
			return svc, fmt.Errorf("%w: signing config: timestamp authority: %w", ErrServices, err)
		}
		for _, t := range tsas {
			svc.TSA = append(svc.TSA, t.URL)
		}
	}
	return svc, nil
}

func (svc Services) validate(keyless bool) error {
	urls := append([]string{}, svc.TSA...)
	for _, l := range svc.Rekor {
		if l.Version != 1 && l.Version != 2 {
			return fmt.Errorf("%w: rekor %s: API version %d (want 1 or 2)", ErrServices, l.URL, l.Version)
		}
		urls = append(urls, l.URL)
	}
	if keyless {
		if svc.Fulcio == "" {
			return fmt.Errorf("%w: keyless signing needs a Fulcio URL", ErrServices)
		}
		if len(svc.Rekor) == 0 {
			return fmt.Errorf("%w: keyless signing needs a transparency log: a short-lived certificate proves nothing without one", ErrServices)
		}
		// The identity token goes to Fulcio: never in the clear, except
		// to this machine.
		if p, err := url.Parse(svc.Fulcio); err == nil && p.Scheme == "http" && !isLoopback(p.Hostname()) {
			return fmt.Errorf("%w: Fulcio URL %q is plain http; the identity token is sent only over https (or to loopback)", ErrServices, safetext.Clip(svc.Fulcio, 80))
		}
		urls = append(urls, svc.Fulcio)
	}
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil {
			return fmt.Errorf("%w: %q is not an http(s) URL without credentials", ErrServices, safetext.Clip(u, 80))
		}
	}
	if len(svc.TSA) == 0 {
		for _, l := range svc.Rekor {
			if l.Version == 2 {
				return fmt.Errorf("%w: rekor v2 (%s) records no time; add a timestamp authority", ErrServices, l.URL)
			}
		}
	}
	return nil
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (svc Services) options(ctx context.Context) sign.BundleOptions {
	opts := sign.BundleOptions{Context: ctx}
	for _, u := range svc.TSA {
		opts.TimestampAuthorities = append(opts.TimestampAuthorities, sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{
			URL: u, Timeout: 30 * time.Second, Retries: 1, Transport: svc.Transport,
		}))
	}
	for _, l := range svc.Rekor {
		opts.TransparencyLogs = append(opts.TransparencyLogs, sign.NewRekor(&sign.RekorOptions{
			BaseURL: l.URL, Timeout: 90 * time.Second, Retries: 1, Version: l.Version,
		}))
	}
	return opts
}

// Sign signs st with key into a Sigstore bundle whose verification material
// names the key by its hint, with a log entry and timestamps from svc if it
// names any.
func Sign(ctx context.Context, st *Statement, key *Key, svc Services) (*bundle.Bundle, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: no key", ErrSign)
	}
	if err := svc.validate(false); err != nil {
		return nil, err
	}
	return signStatement(ctx, st, key, svc.options(ctx))
}

// SignKeyless signs st with a fresh in-memory key certified by Fulcio for
// the identity in idToken, enters it in svc's logs and timestamps it. The
// private key never leaves this call; the token is sent only to Fulcio and
// never appears in an error.
func SignKeyless(ctx context.Context, st *Statement, idToken string, svc Services) (*bundle.Bundle, error) {
	idToken = strings.TrimSpace(idToken)
	if idToken == "" {
		return nil, ErrNoIdentityToken
	}
	if err := svc.validate(true); err != nil {
		return nil, err
	}
	key, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, err
	}
	opts := svc.options(ctx)
	opts.CertificateProvider = sign.NewFulcio(&sign.FulcioOptions{
		BaseURL: svc.Fulcio, Timeout: 30 * time.Second, Retries: 1, Transport: svc.Transport,
	})
	opts.CertificateProviderOptions = &sign.CertificateProviderOptions{IDToken: idToken}
	b, err := signStatement(ctx, st, key, opts)
	return b, Redact(err, idToken)
}

func signStatement(ctx context.Context, st *Statement, key sign.Keypair, opts sign.BundleOptions) (*bundle.Bundle, error) {
	if st == nil {
		return nil, fmt.Errorf("%w: no statement", ErrSign)
	}
	payload, err := st.Bytes()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: PayloadType}, key, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	return bundle.NewBundle(pb)
}

// MarshalBundle encodes b as indented JSON with stable formatting (protojson
// varies its whitespace on purpose; this does not).
func MarshalBundle(b *bundle.Bundle) ([]byte, error) {
	raw, err := protojson.Marshal(b.Bundle)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Redact returns err with every occurrence of each non-empty secret in its
// message replaced by "[REDACTED]". errors.Is still sees the chain. It is
// the last guard at the places where a secret (a token, a password) was in
// scope when a library produced the error.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Is lets errors.Is match the sentinels in the hidden chain without
// exposing the hidden message through Unwrap.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
