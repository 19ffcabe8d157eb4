package verify

import (
	"os/exec"
	"strings"
	"testing"
)

// The verifier's packages are what the admission webhook and the gateway
// link: none may pull in the SBOM generator (syft) or trustgate's sbom
// package, or the CLI (DESIGN.md, Layout). The gateway binary, its runtime
// and the plugin protocol are held to the same, and none but the webhook
// links the Kubernetes client.
func TestNoHeavyImports(t *testing.T) {
	for _, pkg := range []string{"verifier", "verify", "bundle", "policy", "gather", "pin", "sbomprop", "digest", "stack",
		"gateway", "gateway/clientkeys", "audit", "seal", "plugin", "plugin/sdk", "cmd/trustgate-gateway", "admission"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/trustgate/trustgate/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			heavy := strings.HasPrefix(dep, "github.com/anchore/syft") || strings.HasPrefix(dep, "github.com/anchore/stereoscope") ||
				dep == "github.com/trustgate/trustgate/sbom" || strings.HasPrefix(dep, "github.com/trustgate/trustgate/cmd/trustgate/")
			if pkg != "admission" && (strings.HasPrefix(dep, "k8s.io/client-go") || dep == "github.com/trustgate/trustgate/admission") {
				heavy = true
			}
			if heavy {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}
