// Package kubetest runs a real Kubernetes API server for a test: etcd and
// kube-apiserver (built by testtools) as child processes on free ports of
// 127.0.0.1, reached with an admin token over verified TLS.
package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
	ca := NewCA(t)
	certFile, keyFile := ca.Issue(t, dir, "apiserver")
	saKey, saPub := serviceAccountKey(t, dir)
	token := randomHex(t, 16)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,1,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	etcdURL := startWithRetry(t, "etcd", func(attempt int) (*proc, string, error) {
		ports, err := freePorts(2)
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
		return p, client, p.waitReady(client+"/health", http.DefaultClient, "", func(body []byte) error {
			if !strings.Contains(string(body), `"health":"true"`) {
				return fmt.Errorf("etcd not healthy: %s", body)
			}
			return nil
		})
	})

	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	defer probe.CloseIdleConnections()
	apiURL := startWithRetry(t, "kube-apiserver", func(attempt int) (*proc, string, error) {
		ports, err := freePorts(1)
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
		return p, url, p.waitReady(url+"/readyz", probe, token, nil)
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
func startWithRetry(t testing.TB, name string, start func(attempt int) (*proc, string, error)) string {
	t.Helper()
	var err error
	for attempt := range startAttempts {
		var p *proc
		var addr string
		p, addr, err = start(attempt)
		if err == nil {
			return addr
		}
		if p != nil {
			p.stop()
		}
		if !errors.Is(err, errPortInUse) {
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

// proc is one child process, in its own process group, its output in a
// log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once it has exited and been reaped
	err     error         // Wait's result, valid after done
}

// startProc starts bin in dir, its output appended to logPath, and
// registers with t the cleanup that kills its process group, and the one
// that logs the tail of its log when t failed.
func startProc(t testing.TB, name, bin string, args []string, dir, logPath string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "### %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "TMPDIR=" + dir, "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that the cleanup reaches whatever it
	// starts; killed by the kernel should the test binary die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	// Cleanups run last in, first out: the log is read once the process
	// is gone, and before t's TempDir is removed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log %s (tail):\n%s", name, logPath, fileTail(logPath, 6<<10))
		}
	})
	t.Cleanup(p.stop)
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop kills the process group and reaps the process.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	// Setpgid made the group's id the process's.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second): // unkillable: do not hang the run
	}
}

// errPortInUse means the process exited because a port it was given had
// been taken since it was chosen.
var errPortInUse = errors.New("port taken")

// waitReady polls url with client (and the bearer token, when not "")
// until it answers 200 and check, when not nil, accepts the body; or the
// process exits; or ReadyTimeout passes.
func (p *proc) waitReady(url string, client *http.Client, token string, check func([]byte) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			tail := fileTail(p.logPath, 8<<10)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%s exited: %w", p.name, errPortInUse)
			}
			return fmt.Errorf("%s exited before it was ready (%w); log %s:\n%s", p.name, p.err, p.logPath, tail)
		}
		if last = get(ctx, client, url, token, check); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (last: %w); log %s:\n%s", p.name, ReadyTimeout, last, p.logPath, fileTail(p.logPath, 8<<10))
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
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

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago (another process may still take one first: errPortInUse).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // held until all n are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// fileTail returns the last n bytes of the file at path.
func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := max(fi.Size()-n, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if off > 0 {
		return "...\n" + string(b)
	}
	return string(b)
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
	writePEM(t, keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	writePEM(t, pubFile, "PUBLIC KEY", pub)
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

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// CA is a certificate authority made for one test, to issue serving
// certificates for 127.0.0.1.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA makes a CA valid for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "kubetest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// PEM is the CA's certificate, as a webhook's caBundle takes it.
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.pem...) }

// Pool is a pool holding the CA's certificate alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue writes DIR/NAME.crt and DIR/NAME.key: a serving certificate for
// 127.0.0.1 and localhost signed by the CA, and its key.
func (ca *CA) Issue(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
