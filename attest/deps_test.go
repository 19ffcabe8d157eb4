package attest

import (
	"os/exec"
	"strings"
	"testing"
)

// attest sits below verify and the gateway: it must not pull in the SBOM
// generator (syft) or trustgate's sbom package (DESIGN.md, Layout).
func TestNoHeavyImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/trustgate/trustgate/attest").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/anchore/") || dep == "github.com/trustgate/trustgate/sbom" || strings.HasPrefix(dep, "github.com/trustgate/trustgate/cmd/") {
			t.Errorf("attest imports %s", dep)
		}
	}
}
