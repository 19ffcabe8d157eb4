package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/admissiontest"
	"github.com/trustgate/trustgate/internal/testutil"
)

// exampleCluster is examples/kubernetes made real: its images pushed to a
// registry of the test's own (their digests are fixed) and signed as
// workloads.yaml describes, its policy signed with a key of the test's,
// the registry host written into both.
type exampleCluster struct {
	kit                           *admissiontest.Kit
	policy, pub, workloads, state string
}

func newExampleCluster(t *testing.T) exampleCluster {
	t.Helper()
	k := admissiontest.New(t, nil)
	for _, im := range []struct {
		repo, image string
		signer      *attest.Key
	}{
		{"trustgate/gateway:0.1.0", "gateway", k.Release},
		{"trustgate/plugins/guardrail:0.1.0", "guardrail", k.Release},
		{"tools/tool:1", "tool", k.Release},
		{"trustgate/audit-agent:0.1.0", "audit-agent", nil},
		{"tools/fetch:1", "fetch", nil},
		{"trustgate/plugins/rogue:6.6.6", "rogue", k.Other},
	} {
		d := k.PushImage(im.repo, admissiontest.ExampleImage(im.image))
		if im.signer != nil {
			k.Sign(d, im.signer)
		}
	}
	dir := filepath.Join(testutil.RepoRoot(t), "examples", "kubernetes")
	text := readFile(t, filepath.Join(dir, "policy.yaml"))
	pub, err := k.Release.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`(?s)-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----`)
	indented := strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")
	text = key.ReplaceAll(text, []byte(indented))
	text = bytes.ReplaceAll(text, []byte("localhost:5000"), []byte(k.Host))
	k.WritePolicy(text, k.Release)
	c := exampleCluster{kit: k, policy: k.PolicyPath(), pub: filepath.Join(k.Dir, "release.pub"),
		workloads: filepath.Join(k.Dir, "workloads.yaml"), state: filepath.Join(k.Dir, "check-state.json")}
	writeFile(t, c.pub, string(pub))
	writeFile(t, c.workloads, strings.ReplaceAll(string(readFile(t, filepath.Join(dir, "workloads.yaml"))), "localhost:5000", k.Host))
	return c
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c exampleCluster) flags() []string {
	return []string{"--policy", c.policy, "--deployment", "ai-gateway-cluster", "--trust-root", c.pub}
}

// serve runs `trustgate admission serve` until the test ends and returns
// its URL and a client that trusts its certificate.
func (c exampleCluster) serve(t *testing.T) (string, *http.Client) {
	t.Helper()
	cert, key, ca := admissiontest.ServingCert(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	args := append([]string{"admission", "serve", "--listen", addr, "--tls-cert", cert, "--tls-key", key,
		"--state", filepath.Join(t.TempDir(), "serve-state.json"), "--pull-secrets=false"}, c.flags()...)
	go func() { done <- cli.Execute(ctx, args, &bytes.Buffer{}, &stderr) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("admission serve: exit %d", code)
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url, client
			}
		}
		select {
		case code := <-done:
			t.Fatalf("admission serve exited %d", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("admission serve not ready: %v", err)
		}
	}
}

// document is one object of workloads.yaml.
type document struct {
	Kind, Name, Expect string
	gvk                schema.GroupVersionKind
	json               []byte
}

func documents(t *testing.T, path string) []document {
	t.Helper()
	var out []document
	for _, part := range strings.Split(string(readFile(t, path)), "\n---\n") {
		raw, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			APIVersion, Kind string
			Metadata         struct {
				Name        string
				Annotations map[string]string
			}
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			t.Fatal(err)
		}
		gv, err := schema.ParseGroupVersion(head.APIVersion)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, document{Kind: head.Kind, Name: head.Metadata.Name, Expect: head.Metadata.Annotations["trustgate.dev/expect"], gvk: gv.WithKind(head.Kind), json: raw})
	}
	return out
}

// TestAdmissionCheckMatchesServer: `trustgate admission check -f` on the
// example workloads gives, object by object, the answer `trustgate
// admission serve` gives the same objects in AdmissionReviews over HTTPS,
// and both are what the examples say.
func TestAdmissionCheckMatchesServer(t *testing.T) {
	c := newExampleCluster(t)
	url, client := c.serve(t)

	served := map[string]bool{}
	docs := documents(t, c.workloads)
	for _, d := range docs {
		if d.Expect == "" {
			continue // runs no containers: the webhook is not sent it
		}
		body := admissiontest.Review("uid-"+d.Name, d.gvk.Group+"/"+d.gvk.Version+"/"+d.gvk.Kind, d.json, false)
		resp, err := client.Post(url+"/validate", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var r admissionv1.AdmissionReview
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || r.Response == nil || string(r.Response.UID) != "uid-"+d.Name {
			t.Fatalf("%s %s: no answer: %v", d.Kind, d.Name, err)
		}
		served[d.Kind+"/"+d.Name] = r.Response.Allowed
		if want := d.Expect == "admit"; r.Response.Allowed != want {
			t.Errorf("server: %s %s allowed=%v, the example expects %s: %+v", d.Kind, d.Name, r.Response.Allowed, d.Expect, r.Response.Result)
		}
	}
	if len(served) < 6 {
		t.Fatalf("only %d workloads in the example", len(served))
	}

	code, stdout, stderr := run(t, append([]string{"admission", "check", "-f", c.workloads, "-o", "json", "--state", c.state}, c.flags()...)...)
	if code != cli.ExitDenied {
		t.Fatalf("admission check: exit %d, want %d (some are denied): %s", code, cli.ExitDenied, stderr)
	}
	var checked []struct {
		Kind, Name, Message string
		Allowed, Skipped    bool
		Warnings            []string
	}
	if err := json.Unmarshal([]byte(stdout), &checked); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	seen := 0
	for _, v := range checked {
		want, ok := served[v.Kind+"/"+v.Name]
		switch {
		case v.Skipped:
			if ok {
				t.Errorf("check skipped %s %s, which the webhook judges", v.Kind, v.Name)
			}
			continue
		case !ok:
			t.Errorf("check judged %s %s, which the example does not list", v.Kind, v.Name)
		case v.Allowed != want:
			t.Errorf("%s %s: check says allowed=%v, the server %v: %s", v.Kind, v.Name, v.Allowed, want, v.Message)
		}
		seen++
		if v.Kind == "DaemonSet" && (len(v.Warnings) == 0 || !strings.Contains(v.Warnings[0], "audit mode")) {
			t.Errorf("the audit agent was admitted without a warning: %+v", v)
		}
	}
	if seen != len(served) {
		t.Errorf("check judged %d workloads, the server %d", seen, len(served))
	}

	// The text output names each verdict and exits the same way.
	code, stdout, _ = run(t, append([]string{"admission", "check", "-f", c.workloads, "--state", c.state}, c.flags()...)...)
	if code != cli.ExitDenied || !strings.Contains(stdout, "DENY") || !strings.Contains(stdout, "ADMIT") || !strings.Contains(stdout, "SKIP") {
		t.Fatalf("text output (exit %d):\n%s", code, stdout)
	}
}

func TestAdmissionCheckUsage(t *testing.T) {
	c := newExampleCluster(t)
	for _, args := range [][]string{
		{"admission", "check", "--policy", c.policy, "--deployment", "ai-gateway-cluster", "--trust-root", c.pub},
		{"admission", "check", "-f", c.workloads, "--trust-root", c.pub, "--deployment", "ai-gateway-cluster"},
		{"admission", "check", "-f", c.workloads, "--policy", c.policy, "--trust-root", c.pub},
		{"admission", "check", "-f", c.workloads, "--policy", c.policy, "--deployment", "ai-gateway-cluster"},
		{"admission", "check", "-f", c.workloads, "-o", "yaml", "--policy", c.policy, "--deployment", "ai-gateway-cluster", "--trust-root", c.pub},
		{"admission", "serve", "--policy", c.policy, "--deployment", "ai-gateway-cluster", "--trust-root", c.pub},
	} {
		if code, _, stderr := run(t, args...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, cli.ExitUsage, stderr)
		}
	}
	// A policy for another deployment is a denial, before anything is read.
	if code, _, stderr := run(t, "admission", "check", "-f", c.workloads, "--policy", c.policy, "--deployment", "staging", "--trust-root", c.pub, "--state", c.state); code != cli.ExitDenied || !strings.Contains(stderr, "another deployment") {
		t.Errorf("another deployment: exit %d: %s", code, stderr)
	}
}
