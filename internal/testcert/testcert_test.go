package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func TestIssueVerifies(t *testing.T) {
	ca := NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Issue(t, dir, "webhook", "svc.ns.svc")
	if certFile != filepath.Join(dir, "webhook.crt") || keyFile != filepath.Join(dir, "webhook.key") {
		t.Fatalf("files %s, %s", certFile, keyFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			t.Fatal(err)
		}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "svc.ns.svc"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: NewCA(t).Pool(), DNSName: "localhost"}); err == nil {
		t.Error("verified against another CA")
	}
	if block, _ := pem.Decode(ca.PEM()); block == nil || block.Type != "CERTIFICATE" {
		t.Errorf("PEM: %q", ca.PEM())
	}
	for _, f := range []string{certFile, keyFile} {
		if fi, err := os.Stat(f); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode())
		}
	}
}
