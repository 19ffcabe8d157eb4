package gateway

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/stack"
)

// BenchmarkStartupVerify is the P1 benchmark: start-up verification
// (steps 1 to 4: the gateway's own executable, the signed policy, the
// manifest, then 20 agents of 10 MiB each copied into sealed memory while
// hashed, and verify.Check) against the floor, `openssl dgst -sha256` over
// the same 200 MiB spread over one process per core, timed in the same
// run. Run it with
//
//	go test -run '^$' -bench StartupVerify -benchtime 20x ./gateway
//
// verify-ms and openssl-ms are per operation; ratio is verify/openssl.
// The target is verify <= 1.2 * openssl + 20 ms.
func BenchmarkStartupVerify(b *testing.B) {
	const agents, size = 20, 10 << 20
	if _, err := exec.LookPath("openssl"); err != nil {
		b.Skip("openssl is not installed")
	}
	dir := b.TempDir()
	deploy := filepath.Join(dir, "deploy")
	if err := os.MkdirAll(filepath.Join(deploy, "bin"), 0o755); err != nil {
		b.Fatal(err)
	}
	self, err := measureSelf()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deploy, "bin", "gateway"), []byte("the running test binary is measured"), 0o755); err != nil {
		b.Fatal(err)
	}
	var files, comps, agentList []any
	comps = append(comps, map[string]any{"kind": "gateway", "name": "gw", "digests": []any{self.String()}})
	buf := make([]byte, size)
	for i := range agents {
		if _, err := rand.Read(buf); err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("agent-%02d", i)
		p := filepath.Join(deploy, "bin", name)
		if err := os.WriteFile(p, buf, 0o755); err != nil {
			b.Fatal(err)
		}
		files = append(files, p)
		agentList = append(agentList, map[string]any{"name": name, "role": "compliance", "path": "bin/" + name})
		comps = append(comps, map[string]any{"kind": "agent", "name": name, "digests": []any{digest.FromBytes(buf).String()}})
	}
	manifest, err := yaml.Marshal(map[string]any{"apiVersion": stack.APIVersion, "kind": stack.Kind,
		"metadata": map[string]any{"name": "bench"}, "gateway": map[string]any{"name": "gw", "path": "bin/gateway"}, "agents": agentList})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deploy, "stack.yaml"), manifest, 0o644); err != nil {
		b.Fatal(err)
	}
	key, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	pol, err := yaml.Marshal(map[string]any{"apiVersion": policy.APIVersion, "kind": policy.Kind, "metadata": map[string]any{"name": "bench"},
		"version": 1, "expires": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"manifest": map[string]any{"digests": []any{digest.FromBytes(manifest).String()}}, "components": comps})
	if err != nil {
		b.Fatal(err)
	}
	polPath := filepath.Join(deploy, "policy.yaml")
	p, err := policy.Parse(polPath, pol, policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st, err := policy.Statement("policy.yaml", pol, p)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(polPath, pol, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(polPath+".bundle.json", testsign.Bundle(b, st, key), 0o644); err != nil {
		b.Fatal(err)
	}
	opts := Options{Stack: filepath.Join(deploy, "stack.yaml"), Policy: polPath,
		Trust: policy.TrustRoot{Keys: []crypto.PublicKey{key.Public()}}, DataDir: filepath.Join(dir, "data")}

	// The floor: openssl over the same files, one process per core.
	cores := runtime.NumCPU()
	floor := func() time.Duration {
		start := time.Now()
		var cmds []*exec.Cmd
		for c := range cores {
			args := []string{"dgst", "-sha256"}
			for i := c; i < len(files); i += cores {
				args = append(args, files[i].(string))
			}
			cmd := exec.Command("openssl", args...)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		for _, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	floor() // warm the page cache for both
	var verifyTotal, floorTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		g, err := verified(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		verifyTotal += time.Since(start)
		b.StopTimer()
		g.Close()
		floorTotal += floor()
		b.StartTimer()
	}
	n := float64(b.N)
	v, f := verifyTotal.Seconds()*1000/n, floorTotal.Seconds()*1000/n
	b.ReportMetric(v, "verify-ms")
	b.ReportMetric(f, "openssl-ms")
	b.ReportMetric(v/f, "ratio")
	b.ReportMetric(v-(1.2*f+20), "ms-over-target")
}
