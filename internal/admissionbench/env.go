package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustgate/trustgate/admission"
	"github.com/trustgate/trustgate/internal/admissiontest"
	"github.com/trustgate/trustgate/pin"
)

// kitTB is the admissiontest.TB of a program: Fatal panics with a
// kitFailure, which setup turns back into an error; Cleanup and TempDir
// are undone by close.
type kitTB struct {
	mu       sync.Mutex
	cleanups []func()
}

type kitFailure struct{ err error }

func (*kitTB) Helper()                           {}
func (*kitTB) Fatal(args ...any)                 { panic(kitFailure{errors.New(fmt.Sprint(args...))}) }
func (*kitTB) Fatalf(format string, args ...any) { panic(kitFailure{fmt.Errorf(format, args...)}) }

func (t *kitTB) TempDir() string {
	dir, err := os.MkdirTemp("", "admissionbench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (t *kitTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// close runs the cleanups, the last registered first.
func (t *kitTB) close() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// catch turns a kitFailure panic into *err.
func catch(err *error) {
	if v := recover(); v != nil {
		f, ok := v.(kitFailure)
		if !ok {
			panic(v)
		}
		*err = f.err
	}
}

// env is the registry with the signed images, the signed policy and the
// webhook's TLS key pair; everything the scenarios share.
type env struct {
	tb  *kitTB
	kit *admissiontest.Kit
	// host is the registry's host:port.
	host   string
	src    *admission.PolicySource
	images []name.Digest // under host, signed by the release key
	// registryRequests and registryConns count the requests the registry
	// has answered and the connections it has accepted.
	registryRequests atomic.Int64
	registryConns    atomic.Int64
	keyPair          *admission.KeyPair
	roots            *x509.CertPool // trusts the webhook's certificate
}

// newEnv starts the registry (over TLS unless plain), writes and loads the
// signed policy, and pushes and signs n images, perRepo to a repository.
func newEnv(n, perRepo int, plain bool) (e *env, err error) {
	cert, err := sharedCert()
	if err != nil {
		return nil, err
	}
	e = &env{tb: &kitTB{}, roots: cert.roots}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	defer catch(&err)
	// The kit's keys sign, and its policy files hold the policy; the
	// images are in a registry of the same kind as its, served over TLS.
	e.kit = admissiontest.New(e.tb, nil)
	k := e.kit
	e.host = e.startRegistry(plain, cert.Certificate)
	comps := admissiontest.Components(strings.ReplaceAll(string(k.DefaultComponents()), k.Host, e.host))
	k.WritePolicy(k.PolicyText(1, comps, time.Time{}), k.Release)
	e.src = &admission.PolicySource{Path: k.PolicyPath(), Deployment: admissiontest.Deployment, Trust: k.Trust(), StatePath: k.StatePath(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := e.src.Load(time.Now()); err != nil {
		return e, fmt.Errorf("loading the signed policy: %w", err)
	}
	if e.images, err = e.pushSigned(n, max(perRepo, 1)); err != nil {
		return e, err
	}
	e.keyPair = &admission.KeyPair{CertFile: filepath.Join(k.Dir, "tls.crt"), KeyFile: filepath.Join(k.Dir, "tls.key")}
	if err := os.WriteFile(e.keyPair.CertFile, cert.certPEM, 0o600); err != nil {
		return e, err
	}
	if err := os.WriteFile(e.keyPair.KeyFile, cert.keyPEM, 0o600); err != nil {
		return e, err
	}
	return e, e.keyPair.Load()
}

// pushSigned pushes n random images and attaches a release-signed
// attestation to each, a few at a time. They go perRepo to a repository under trustgate/plugins/bench/,
// which the policy's "plugins" entry (enforced, signed by release) names:
// the kit's registry answers a referrers request by decoding every
// manifest of the repository, so with hundreds of images in one
// repository the registry, not the webhook, is what a review waits for (a
// production registry indexes referrers).
func (e *env) pushSigned(n, perRepo int) ([]name.Digest, error) {
	out := make([]name.Digest, n)
	var next atomic.Int64
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			var err error
			defer func() { errs <- err }()
			defer catch(&err)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				img := e.push(fmt.Sprintf("trustgate/plugins/bench/r%04d:1.%d", i/perRepo, i))
				e.kit.Sign(img, e.kit.Release)
				out[i] = img
			}
		}()
	}
	var first error
	for range cap(errs) {
		if err := <-errs; err != nil && first == nil {
			first = fmt.Errorf("pushing and signing the images: %w", err)
		}
	}
	return out, first
}

func (e *env) close() { e.tb.close() }

func (e *env) counters() registryCounters {
	return registryCounters{&e.registryRequests, &e.registryConns}
}

// startRegistry serves go-containerregistry's in-memory registry (with the
// referrers API, as the kit's) on 127.0.0.1, over TLS with cert unless
// plain, until tb's cleanup, counting the requests it answers and the
// connections it accepts; it returns its host:port. Production registries
// speak HTTPS; go-containerregistry, given a plain one on 127.0.0.1,
// tries HTTPS first, on a new connection, at every ping, which is not
// what the webhook does in a cluster.
func (e *env) startRegistry(plain bool, cert tls.Certificate) string {
	reg := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.registryRequests.Add(1)
		reg.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			e.registryConns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if plain {
		srv.Start()
	} else {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	}
	e.tb.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		e.tb.Fatal(err)
	}
	return u.Host
}

// push pushes a new random image as repoTag under e.host and returns its
// reference by digest.
func (e *env) push(repoTag string) name.Digest {
	img, err := random.Image(512, 1)
	if err != nil {
		e.tb.Fatal(err)
	}
	tag, err := name.NewTag(e.host + "/" + repoTag)
	if err != nil {
		e.tb.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		e.tb.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		e.tb.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

// benchCert is the process's one certificate, for 127.0.0.1: the webhook
// and the registry serve it.
type benchCert struct {
	tls.Certificate
	certPEM, keyPEM []byte
	roots           *x509.CertPool
}

var (
	certOnce sync.Once
	theCert  *benchCert
	certErr  error
)

// sharedCert makes the certificate, once, and has this process's system
// roots trust it (and nothing else): the webhook reaches the registry
// with pin.Registry{}, as `trustgate admission serve` does, whose
// transports verify against the system roots. Go reads SSL_CERT_FILE
// when it first loads them, which sharedCert has it do at once, then puts
// the variable back.
func sharedCert() (*benchCert, error) {
	certOnce.Do(func() { theCert, certErr = makeCert() })
	return theCert, certErr
}

func makeCert() (*benchCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "trustgate-admission.trustgate.svc"},
		DNSNames:              []string{"trustgate-admission.trustgate.svc", "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &benchCert{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		certPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		roots:       x509.NewCertPool(),
	}
	c.roots.AddCert(leaf)
	f, err := os.CreateTemp("", "admissionbench-roots-*.pem")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(c.certPEM); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	old, had := os.LookupEnv("SSL_CERT_FILE")
	os.Setenv("SSL_CERT_FILE", f.Name())
	system, err := x509.SystemCertPool()
	if had {
		os.Setenv("SSL_CERT_FILE", old)
	} else {
		os.Unsetenv("SSL_CERT_FILE")
	}
	if err != nil {
		return nil, fmt.Errorf("loading the system roots: %w", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: system, DNSName: "127.0.0.1"}); err != nil {
		return nil, fmt.Errorf("the system roots were loaded before the benchmark could add its certificate: %w", err)
	}
	return c, nil
}

// webhook is one admission.Handler served over HTTPS on 127.0.0.1.
type webhook struct {
	url     string // https://127.0.0.1:PORT/validate
	checker *admission.Checker
	stop    context.CancelFunc
	done    chan error
}

// startWebhook serves a Handler whose checker keeps cacheSize verdicts
// (admission.Config.CacheSize: < 0 none), configured as `trustgate
// admission serve` configures it: the default registry client, metrics,
// and a JSON log of each review (here to io.Discard).
func (e *env) startWebhook(cacheSize int) (*webhook, error) {
	metrics := admission.NewMetrics(e.src)
	c, err := admission.NewChecker(admission.Config{Policy: e.src, Registry: pin.Registry{}, CacheSize: cacheSize, Metrics: metrics})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &admission.Handler{Checker: c, Metrics: metrics, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	ctx, stop := context.WithCancel(context.Background())
	w := &webhook{url: "https://" + ln.Addr().String() + "/validate", checker: c, stop: stop, done: make(chan error, 1)}
	go func() { w.done <- admission.Serve(ctx, ln, h, e.keyPair, nil) }()
	return w, nil
}

// close shuts the server down and waits for it.
func (w *webhook) close() error {
	w.stop()
	return <-w.done
}

// client is a keep-alive HTTPS client of the webhook, trusting its
// certificate, with up to conns connections (HTTP/1.1) or one multiplexed
// connection (HTTP/2).
func (e *env) client(conns int, h2 bool) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: e.roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   h2,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}
