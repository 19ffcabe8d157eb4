package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/gateway/clientkeys"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
)

// Names in the deployment.
const (
	deploymentName = "gatewaybench"
	gatewayName    = "trustgate-gateway"
	pluginName     = "guardrail"
	credentialEnv  = "OPENAI_API_KEY"
	// providerKey is the fake provider key the gateway attaches upstream.
	providerKey = "sk-bench-not-a-real-key-0123456789"
)

// deployment is what every gateway variant runs from: the gateway and the
// guardrail plugin built into dir/bin, a policy trust key, client keys,
// and a manifest and a signed policy per variant.
type deployment struct {
	dir        string // the manifest's folder
	digests    map[string]string
	trust      *attest.Key
	trustPub   string // the trust key's PEM file, for --trust-key
	clientKeys string
	key        string // a client's gateway key
	upstream   string // the stub's base URL, ending in /v1
}

// moduleRoot is the folder of the module this program belongs to.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the trustgate module (go env GOMOD is %q)", mod)
	}
	return filepath.Dir(mod), nil
}

// buildBinaries builds trustgate-gateway and the example guardrail into
// bin, as the example deployment does (-trimpath, no cgo).
func buildBinaries(ctx context.Context, root, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-o", bin+string(os.PathSeparator),
		"./cmd/trustgate-gateway", "./examples/deployment/cmd/guardrail")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// newDeployment builds the binaries into base/deploy/bin and makes the
// keys.
func newDeployment(ctx context.Context, root, base, upstream string) (*deployment, error) {
	d := &deployment{dir: filepath.Join(base, "deploy"), digests: map[string]string{}, upstream: upstream + "/v1"}
	bin := filepath.Join(d.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	if err := buildBinaries(ctx, root, bin); err != nil {
		return nil, err
	}
	for name, file := range map[string]string{gatewayName: "trustgate-gateway", pluginName: "guardrail"} {
		sum, err := fileDigest(filepath.Join(bin, file))
		if err != nil {
			return nil, err
		}
		d.digests[name] = sum
	}
	var err error
	if d.trust, err = attest.GenerateKey(attest.ECDSAP256); err != nil {
		return nil, err
	}
	pub, err := d.trust.MarshalPublic()
	if err != nil {
		return nil, err
	}
	d.trustPub = filepath.Join(base, "trust.pub")
	if err := os.WriteFile(d.trustPub, pub, 0o644); err != nil {
		return nil, err
	}
	d.clientKeys = filepath.Join(base, "client-keys.json")
	if d.key, _, err = clientkeys.Add(d.clientKeys, "bench"); err != nil {
		return nil, fmt.Errorf("client keys: %w", err)
	}
	return d, nil
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %q: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// gatewaySetup is what one gateway variant adds to the bare deployment.
type gatewaySetup struct {
	name   string // file names: stack-NAME.yaml, policy-NAME.yaml
	plugin bool   // the guardrail, granted pre_request
	audit  string // when set, the folder of the audit log and its key
}

// write writes the variant's manifest (listening on listen) and its policy,
// signed with the trust key; it returns their paths.
func (d *deployment) write(ctx context.Context, s gatewaySetup, listen string) (manifest, pol string, err error) {
	gc := map[string]any{"listen": listen, "clientKeys": d.clientKeys, "recheckInterval": "1h"}
	if s.audit != "" {
		if gc["auditLog"], gc["auditKey"], err = auditFiles(s.audit); err != nil {
			return "", "", err
		}
	}
	m := map[string]any{
		"apiVersion": stack.APIVersion, "kind": stack.Kind,
		"metadata": map[string]any{"name": deploymentName},
		"gateway":  map[string]any{"name": gatewayName, "path": "bin/trustgate-gateway"},
		"providers": []any{map[string]any{"name": "openai", "baseURL": d.upstream,
			"credential": map[string]any{"env": credentialEnv}}},
		"models":        []any{map[string]any{"name": model, "provider": "openai"}},
		"gatewayConfig": gc,
	}
	comps := []any{map[string]any{"kind": "gateway", "name": gatewayName, "digests": []any{d.digests[gatewayName]}},
		map[string]any{"kind": "model", "name": model, "provider": "openai"}}
	if s.plugin {
		m["plugins"] = []any{map[string]any{"name": pluginName, "role": "guardrail", "path": "bin/guardrail",
			"args": []any{"--deny", "NEVER-MATCHES"}}}
		comps = append(comps, map[string]any{"kind": "plugin", "name": pluginName, "digests": []any{d.digests[pluginName]},
			"capabilities": map[string]any{"hooks": []any{"pre_request"}}})
	}
	raw, err := yaml.Marshal(m)
	if err != nil {
		return "", "", err
	}
	manifest = filepath.Join(d.dir, "stack-"+s.name+".yaml")
	if err := os.WriteFile(manifest, raw, 0o644); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(raw)
	doc := map[string]any{
		"apiVersion": policy.APIVersion, "kind": policy.Kind,
		"metadata": map[string]any{"name": deploymentName},
		"version":  1, "expires": time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339),
		"manifest":   map[string]any{"digests": []any{"sha256:" + hex.EncodeToString(sum[:])}},
		"components": comps,
		"providers": []any{map[string]any{"name": "openai", "credential": "env:" + credentialEnv,
			"baseURLs": []any{d.upstream}}},
	}
	pol = filepath.Join(d.dir, "policy-"+s.name+".yaml")
	return manifest, pol, d.sign(ctx, pol, doc)
}

// sign writes the policy doc to file and its bundle beside it, signed
// with the trust key as trustgate policy sign does.
func (d *deployment) sign(ctx context.Context, file string, doc map[string]any) error {
	data, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	p, err := policy.Parse(file, data, policy.Options{})
	if err != nil {
		return fmt.Errorf("the benchmark's policy: %w\n%s", err, data)
	}
	st, err := policy.Statement(file, data, p)
	if err != nil {
		return err
	}
	b, err := attest.Sign(ctx, st, d.trust, attest.Services{})
	if err != nil {
		return fmt.Errorf("signing the policy: %w", err)
	}
	bundle, err := attest.MarshalBundle(b)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(file+".bundle.json", bundle, 0o644)
}

// auditFiles makes dir and a fresh unencrypted checkpoint key in it
// (mode 0600); it returns the log's and the key's paths.
func auditFiles(dir string) (log, key string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	k, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		return "", "", err
	}
	pem, err := k.MarshalPrivate(nil)
	if err != nil {
		return "", "", err
	}
	key = filepath.Join(dir, "audit.key")
	if err := os.WriteFile(key, pem, 0o600); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, "audit.log"), key, nil
}

// startGateway starts the real gateway binary on the variant's manifest
// and policy, with a private data folder, and waits for /readyz.
func (d *deployment) startGateway(ctx context.Context, base string, s gatewaySetup) (*proc, string, error) {
	listen, err := freePort()
	if err != nil {
		return nil, "", err
	}
	manifest, pol, err := d.write(ctx, s, listen)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(filepath.Join(d.dir, "bin", "trustgate-gateway"), "--stack", manifest, "--policy", pol,
		"--trust-key", d.trustPub, "--data-dir", filepath.Join(base, "data-"+s.name), "--log-format", "json")
	cmd.Env = []string{credentialEnv + "=" + providerKey, "PATH=/usr/bin:/bin"}
	p, err := startProc("trustgate-gateway ("+s.name+")", cmd, filepath.Join(base, "gateway-"+s.name+".log"))
	if err != nil {
		return nil, "", err
	}
	if err := p.waitReady(ctx, "http://"+listen+"/readyz", 90*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	p.track()
	return p, "http://" + listen, nil
}
