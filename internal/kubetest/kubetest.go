// Package kubetest runs a real Kubernetes API server for a test: etcd and
// kube-apiserver (built by testtools) as child processes on free ports of
// 127.0.0.1, reached with an admin token over verified TLS.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/trustgate/trustgate/internal/testcert"
	"github.com/trustgate/trustgate/internal/testproc"
	"github.com/trustgate/trustgate/internal/testtools"
)

// ReadyTimeout bounds how long Start waits for etcd, then for the API
// server, to answer.
const ReadyTimeout = 60 * time.Second

// startAttempts is how often a process is started again when a port chosen
// for it was taken before it could bind it.
const startAttempts = 3

// Cluster is an API server and its etcd, killed when the test ends.
type Cluster struct {
	// URL is the API server's https://127.0.0.1:PORT.
	URL string
	// Config is the admin's client configuration: a bearer token in
	// system:masters, and the CA that signed the API server's
	// certificate. Copy it (rest.CopyConfig) before changing it.
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface
	// Dir holds the processes' files and logs.
	Dir string
}

// Start starts etcd and kube-apiserver for t and waits until the API
// server is ready. It skips t (fails it under CI=true) when the binaries
// are not built: see testtools.Need. The processes run in their own
// process groups, which t's cleanup kills; their logs are files in Dir,
// whose tails t logs when it fails.
func Start(t testing.TB) *Cluster {
	t.Helper()
	etcdBin := testtools.Need(t, testtools.Etcd)
	apiBin := testtools.Need(t, testtools.KubeAPIServer)
	dir := t.TempDir()
	ca := testcert.NewCA(t)
	certFile, keyFile := ca.Issue(t, dir, "apiserver")
	saKey, saPub := serviceAccountKey(t, dir)
	token := randomHex(t, 16)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,1,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	etcdURL := startWithRetry(t, "etcd", func(attempt int) (*testproc.Proc, string, error) {
		ports, err := testproc.FreePorts(2)
		if err != nil {
			return nil, "", err
		}
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		data := filepath.Join(dir, fmt.Sprintf("etcd-data-%d", attempt))
		p, err := startProc(t, "etcd", etcdBin, []string{
			"--name", "default",
			"--data-dir", data,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "default=" + peer,
			// Test data: nothing to keep across a power cut.
			"--unsafe-no-fsync",
			"--log-level", "warn",
		}, dir, logFile(dir, "etcd", attempt))
		if err != nil {
			return nil, "", err
		}
		return p, client, waitReady(p, client+"/health", http.DefaultClient, "", func(body []byte) error {
			if !strings.Contains(string(body), `"health":"true"`) {
				return fmt.Errorf("etcd not healthy: %s", body)
			}
			return nil
		})
	})

	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	defer probe.CloseIdleConnections()
	apiURL := startWithRetry(t, "kube-apiserver", func(attempt int) (*testproc.Proc, string, error) {
		ports, err := testproc.FreePorts(1)
		if err != nil {
			return nil, "", err
		}
		p, err := startProc(t, "kube-apiserver", apiBin, []string{
			"--etcd-servers", etcdURL,
			"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[0]),
			// Not the host's address: the test reaches it on 127.0.0.1
			// only. The kubernetes Service's endpoints cannot be a
			// loopback address, so they are not kept.
			"--advertise-address", "127.0.0.1", "--endpoint-reconciler-type", "none",
			"--tls-cert-file", certFile, "--tls-private-key-file", keyFile,
			"--cert-dir", filepath.Join(dir, "apiserver-certs"),
			"--service-account-issuer", "https://kubernetes.default.svc",
			"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
			"--token-auth-file", tokens, "--authorization-mode", "RBAC",
			"--service-cluster-ip-range", "10.0.0.0/24",
			// No service account tokens are mounted into pods (no
			// controller makes the accounts).
			"--disable-admission-plugins", "ServiceAccount",
			"--profiling=false",
		}, dir, logFile(dir, "kube-apiserver", attempt))
		if err != nil {
			return nil, "", err
		}
		url := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		return p, url, waitReady(p, url+"/readyz", probe, token, nil)
	})

	cfg := &rest.Config{
		Host:            apiURL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.PEM()},
		UserAgent:       "trustgate-kubetest",
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{URL: apiURL, Config: cfg, Client: client, Dir: dir}
}

// startWithRetry starts a process with start, again with other ports when
// one it was given was taken meanwhile, and returns the address start
// returned.
func startWithRetry(t testing.TB, name string, start func(attempt int) (*testproc.Proc, string, error)) string {
	t.Helper()
	var err error
	for attempt := range startAttempts {
		var p *testproc.Proc
		var addr string
		p, addr, err = start(attempt)
		if err == nil {
			return addr
		}
		if p != nil {
			p.Stop()
		}
		if !errors.Is(err, testproc.ErrPortInUse) {
			break
		}
	}
	t.Fatalf("starting %s: %v", name, err)
	return ""
}

// logFile is where attempt of process name logs: a file of its own, so
// that what an earlier attempt logged is not read as this one's.
func logFile(dir, name string, attempt int) string {
	if attempt == 0 {
		return filepath.Join(dir, name+".log")
	}
	return filepath.Join(dir, fmt.Sprintf("%s.%d.log", name, attempt))
}

// startProc starts bin (see testproc.Start) and registers with t the
// cleanup that kills its process group, and the one that logs the tail of
// its log when t failed.
func startProc(t testing.TB, name, bin string, args []string, dir, logPath string) (*testproc.Proc, error) {
	p, err := testproc.Start(name, bin, args, dir, logPath, nil)
	if err != nil {
		return nil, err
	}
	// Cleanups run last in, first out: the log is read once the process
	// is gone, and before t's TempDir is removed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log %s (tail):\n%s", name, logPath, p.Tail(6<<10))
		}
	})
	t.Cleanup(p.Stop)
	return p, nil
}

// waitReady polls url with client (and the bearer token, when not "")
// until it answers 200 and check, when not nil, accepts the body; or p
// exits (testproc.ErrPortInUse when over a port taken meanwhile); or
// ReadyTimeout passes.
func waitReady(p *testproc.Proc, url string, client *http.Client, token string, check func([]byte) error) error {
	return p.WaitReady(context.Background(), ReadyTimeout, func(ctx context.Context) error {
		return get(ctx, client, url, token, check)
	})
}

// get is one readiness probe: nil when url answers 200 and check accepts
// the body.
func get(ctx context.Context, client *http.Client, url, token string, check func([]byte) error) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	case check != nil:
		return check(body)
	}
	return nil
}

// serviceAccountKey writes the RSA key the API server signs service
// account tokens with, and its public key.
func serviceAccountKey(t testing.TB, dir string) (keyFile, pubFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	testcert.WritePEM(t, keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	testcert.WritePEM(t, pubFile, "PUBLIC KEY", pub)
	return keyFile, pubFile
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
