package sigstoretest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/testproc"
	"github.com/trustgate/trustgate/internal/testtools"
)

// DefaultIdentity is an identity for tests that need just one.
const DefaultIdentity = "signer@sigstoretest.example.com"

// Env is a running set of Sigstore services on 127.0.0.1: an OIDC issuer,
// Fulcio, Rekor v2 and a timestamp authority. See Start.
type Env struct {
	// IssuerURL is the OIDC issuer (no trailing slash). It is also the
	// issuer that Fulcio writes into certificates (see Identity).
	IssuerURL string
	// FulcioURL and RekorURL are base URLs, as sign.FulcioOptions.BaseURL
	// and sign.RekorOptions.BaseURL (with Version 2) want them.
	FulcioURL, RekorURL string
	// TSAURL is the full timestamp endpoint, .../api/v1/timestamp, as
	// sign.TimestampAuthorityOptions.URL wants it.
	TSAURL string

	// TrustedRootJSON is a trusted_root.json
	// (TrustedRootMediaType) for these services: the Fulcio CA chain, the
	// Rekor v2 log (Ed25519 key, log ID RekorLogID) and the TSA chain, all
	// valid from an hour before Start. It names no CT log: this Fulcio
	// issues certificates without SCTs.
	TrustedRootJSON []byte
	// TrustedRootPath is TrustedRootJSON written to a file.
	TrustedRootPath string
	// SigningConfigPath is a signing_config.json (SigningConfigMediaType)
	// naming the local Fulcio, OIDC issuer, Rekor (API version 2) and TSA.
	SigningConfigPath string

	// RekorLogID is the Rekor log's ID (see RekorLogID), as in the trusted
	// root and in every entry the log returns.
	RekorLogID []byte
	// Dir holds the services' logs, keys, configuration and the files
	// above; it is the test's t.TempDir() and goes away with the test.
	Dir string
	// TSAMode says how the TSA's fixed metrics port was kept from
	// colliding with other test processes: "netns" or "lock" (see tsa.go).
	TSAMode string

	iss *issuer
}

// Start starts the OIDC issuer, Fulcio, Rekor v2 and the TSA, waits until
// each answers, and returns them as an Env. The service binaries come from
// testtools (built once, cached). Everything is stopped, and the processes
// killed, in t.Cleanup; if the test failed, the tail of each service's log
// is printed.
//
// Start calls t.Fatal when a service does not come up, and skips the test
// when a service is not built (see testtools.Need). Use it from the test's
// goroutine.
func Start(t testing.TB) *Env {
	t.Helper()
	bins := map[string]string{
		"fulcio": testtools.Need(t, testtools.Fulcio),
		"rekor":  testtools.Need(t, testtools.Rekor),
		"tsa":    testtools.Need(t, testtools.TSA),
	}
	dir := t.TempDir() // before the cleanups below, so removed after them
	e := &Env{Dir: dir}

	e.iss = newIssuer(t) // Fulcio reads the issuer's discovery at startup
	e.IssuerURL = e.iss.url

	var (
		mu     sync.Mutex
		procs  []*proc
		others []func()
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range others {
			c()
		}
		for _, p := range procs {
			p.Stop()
		}
		if t.Failed() {
			for _, p := range procs {
				if p.tailShown {
					continue // already in the error that failed the test
				}
				t.Logf("sigstoretest: %s log (%s), tail:\n%s", p.Name, p.LogPath, p.Tail(6<<10))
			}
		}
	})
	addProc := func(p *proc) {
		mu.Lock()
		procs = append(procs, p)
		mu.Unlock()
	}

	ctx := context.Background()
	rekorPub, rekorKeyPath, err := writeRekorKey(dir)
	if err != nil {
		t.Fatal(err)
	}

	// The three services start in parallel; each retries on a port race.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	var tsa *tsaInstance
	wg.Add(3)
	go func() {
		defer wg.Done()
		errs[0] = retryPorts(t, "fulcio", func(attempt int) error {
			p, url, err := startFulcio(ctx, bins["fulcio"], dir, e.IssuerURL, attempt)
			if p != nil {
				addProc(p)
			}
			e.FulcioURL = url
			return err
		})
	}()
	go func() {
		defer wg.Done()
		errs[1] = retryPorts(t, "rekor", func(attempt int) error {
			p, url, err := startRekor(ctx, bins["rekor"], dir, rekorKeyPath, attempt)
			if p != nil {
				addProc(p)
			}
			e.RekorURL = url
			return err
		})
	}()
	go func() {
		defer wg.Done()
		errs[2] = retryPorts(t, "tsa", func(attempt int) error {
			ti, err := startTSA(ctx, bins["tsa"], dir, attempt)
			if err != nil {
				return err
			}
			// The TSA's cleanup includes its forwarder or lock, so it is
			// registered whole; its proc is listed for the log tail.
			mu.Lock()
			others = append(others, ti.close)
			mu.Unlock()
			addProc(ti.proc)
			tsa = ti
			return nil
		})
	}()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("sigstoretest: %v", err)
		}
	}
	e.TSAURL = tsa.baseURL + "/api/v1/timestamp"
	e.TSAMode = tsa.mode
	if tsa.why != "" {
		t.Logf("sigstoretest: TSA in lock mode (serialized with other processes' TSAs): %s", tsa.why)
	}

	fulcioCerts, err := fulcioChain(ctx, e.FulcioURL)
	if err != nil {
		t.Fatalf("sigstoretest: %v", err)
	}
	tsaCerts, err := tsaChain(ctx, tsa.baseURL)
	if err != nil {
		t.Fatalf("sigstoretest: %v", err)
	}
	in := &trustInputs{
		issuerURL:   e.IssuerURL,
		fulcioURL:   e.FulcioURL,
		rekorURL:    e.RekorURL,
		tsaURL:      e.TSAURL,
		rekorOrigin: rekorOrigin,
		rekorKey:    rekorPub,
		fulcioChain: fulcioCerts,
		tsaChain:    tsaCerts,
		validFrom:   time.Now().Add(-time.Hour).Truncate(time.Second),
	}
	e.RekorLogID = RekorLogID(rekorOrigin, rekorPub)
	if e.TrustedRootJSON, err = in.trustedRoot(); err != nil {
		t.Fatal(err)
	}
	sc, err := in.signingConfig()
	if err != nil {
		t.Fatal(err)
	}
	e.TrustedRootPath = filepath.Join(dir, "trusted_root.json")
	e.SigningConfigPath = filepath.Join(dir, "signing_config.json")
	if err := os.WriteFile(e.TrustedRootPath, e.TrustedRootJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.SigningConfigPath, sc, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// Token returns a fresh OIDC ID token (RS256, aud "sigstore", valid for
// ten minutes) from the Env's issuer for identity, an email address, with
// email_verified true. Fulcio accepts it and issues a certificate whose
// SAN is identity; see Identity.
func (e *Env) Token(t testing.TB, identity string) string {
	t.Helper()
	tok, err := e.iss.token(identity, false)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ForgedToken returns a token like Token's, claiming the Env's issuer, but
// signed with a key the issuer does not publish in its JWKS. Fulcio refuses
// it: HTTP 400, "There was an error processing the identity token" (its log
// says "failed to verify id token signature").
func (e *Env) ForgedToken(t testing.TB, identity string) string {
	t.Helper()
	tok, err := e.iss.token(identity, true)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Identity returns what a verifier should require of a certificate that
// Fulcio issued for a Token(identity): the OIDC issuer (the Fulcio issuer
// extension, OID 1.3.6.1.4.1.57264.1.8) and the SAN. The issuer is of
// Fulcio type "email", so the SAN is the email address identity itself
// (an rfc822Name). With sigstore-go:
//
//	issuer, san := env.Identity(id)
//	sgverify.NewShortCertificateIdentity(issuer, "", san, "")
func (e *Env) Identity(identity string) (issuer, san string) {
	return e.IssuerURL, identity
}

// retryPorts runs start up to three times while it fails because a port
// chosen for the service was taken before the service bound it.
func retryPorts(t testing.TB, name string, start func(attempt int) error) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = start(attempt); err == nil || !isPortInUse(err) {
			return err
		}
		t.Logf("sigstoretest: %s lost a port race (attempt %d): retrying", name, attempt)
	}
	return err
}

func isPortInUse(err error) bool { return errors.Is(err, testproc.ErrPortInUse) }

// Fulcio

func startFulcio(ctx context.Context, bin, dir, issuerURL string, attempt int) (*proc, string, error) {
	// Fulcio's issuer configuration: one issuer of type "email" (the
	// certificate SAN is the token's email claim, which must come with
	// email_verified true), with the client ID Sigstore uses.
	cfg := map[string]any{"OIDCIssuers": map[string]any{
		issuerURL: map[string]any{"IssuerURL": issuerURL, "ClientID": Audience, "Type": "email"},
	}}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, "", err
	}
	cfgPath := filepath.Join(dir, "fulcio-config.json")
	if err := os.WriteFile(cfgPath, cfgJSON, 0o644); err != nil {
		return nil, "", err
	}
	ports, err := testproc.FreePorts(1)
	if err != nil {
		return nil, "", err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	// Every port is explicit: the defaults (8080, 8081, 2112 and the
	// abstract socket @fulcio-legacy-grpc-socket) collide with other
	// services and with a second Fulcio. Port 0 is fine where nothing
	// connects from outside (Fulcio's own HTTP gateway learns the real gRPC
	// port).
	args := []string{
		"serve",
		// An in-memory self-signed CA, made at startup.
		"--ca=ephemeralca",
		// No CT log: certificates carry no SCT.
		"--ct-log-url=",
		// The OIDC issuer above.
		"--config-path=" + cfgPath,
		"--host=127.0.0.1",
		"--port=" + strconv.Itoa(ports[0]),
		"--grpc-host=127.0.0.1",
		"--grpc-port=0",
		"--metrics-port=0",
		"--legacy-unix-domain-socket=" + legacySocketName(),
		"--log_type=dev",
	}
	p, err := startProc("fulcio", bin, args, dir, logPathFor(dir, "fulcio", attempt), nil)
	if err != nil {
		return nil, "", err
	}
	err = p.waitReady(ctx, url+"/healthz", func(resp *http.Response, body []byte) error {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "SERVING") {
			return fmt.Errorf("fulcio /healthz: %s: %s", resp.Status, body)
		}
		return nil
	})
	if err != nil {
		return p, "", err
	}
	return p, url, nil
}

var legacySocketSeq struct {
	sync.Mutex
	n int
}

// legacySocketName is a Linux abstract socket name (leading @) unique to
// this process and call: Fulcio's default, @fulcio-legacy-grpc-socket, would
// make a second Fulcio on the machine fail.
func legacySocketName() string {
	legacySocketSeq.Lock()
	defer legacySocketSeq.Unlock()
	legacySocketSeq.n++
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("@trustgate-sigstoretest-fulcio-%d-%d-%x", os.Getpid(), legacySocketSeq.n, r)
}

// Rekor

// rekorOrigin is Rekor's --hostname: the origin line of its checkpoints and
// the key name of its signed notes. sigstore-go takes the key name from the
// host of the log's base_url in the trusted root, so the two must agree.
const rekorOrigin = "127.0.0.1"

// writeRekorKey makes the log's Ed25519 checkpoint-signing key, as the
// PKCS#8 PEM file rekor-server's --signer-filepath wants.
func writeRekorKey(dir string) (ed25519.PublicKey, string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "rekor-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, "", err
	}
	return pub, path, nil
}

func startRekor(ctx context.Context, bin, dir, keyPath string, attempt int) (*proc, string, error) {
	ports, err := testproc.FreePorts(2)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + rekorOrigin + ":" + strconv.Itoa(ports[0])
	storage := filepath.Join(dir, fmt.Sprintf("rekor-log.%d", attempt))
	// Every port is explicit (the defaults, 3000, 3001 and 2112, collide).
	// rekor-server refuses port 0 for HTTP and gRPC, so those are chosen
	// free ports; the metrics port may be 0.
	args := []string{
		"serve",
		"--hostname=" + rekorOrigin,
		"--http-address=127.0.0.1",
		"--http-port=" + strconv.Itoa(ports[0]),
		"--grpc-address=127.0.0.1",
		"--grpc-port=" + strconv.Itoa(ports[1]),
		"--http-metrics-port=0",
		"--storage-dir=" + storage,
		"--signer-filepath=" + keyPath,
		// A write returns once its entry is in a published checkpoint.
		// The defaults (batches of up to 250ms, a checkpoint every 10s)
		// make that up to 10s; these make it about 1s (Rekor polls for
		// the checkpoint once a second).
		"--batch-max-age=100ms",
		"--checkpoint-interval=500ms",
		"--log-level=info",
	}
	p, err := startProc("rekor", bin, args, dir, logPathFor(dir, "rekor", attempt), nil)
	if err != nil {
		return nil, "", err
	}
	err = p.waitReady(ctx, url+"/healthz", func(resp *http.Response, body []byte) error {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "SERVING") {
			return fmt.Errorf("rekor /healthz: %s: %s", resp.Status, body)
		}
		return nil
	})
	if err != nil {
		return p, "", err
	}
	return p, url, nil
}
