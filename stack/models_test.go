package stack_test

import (
	"testing"

	"github.com/trustgate/trustgate/internal/testutil"
	"github.com/trustgate/trustgate/stack"
)

// A model may be served from a folder, with its OMS signature inside it or
// beside it.
func TestModelFolderWithSignature(t *testing.T) {
	dir := testutil.StackDir(t)
	for _, sig := range []string{"plugins/py/pkg/main.py", "models/m.gguf"} {
		s, err := stack.Parse("stack.yaml", dir, []byte(`apiVersion: trustgate.dev/v1
kind: Stack
metadata: {name: models}
gateway: {name: gw, path: bin/gateway}
models:
  - name: folder
    file: plugins/py
    signature: `+sig+`
`))
		if err != nil {
			t.Fatalf("signature %s: %v", sig, err)
		}
		if m := s.Models[0]; m.File != "plugins/py" || m.Signature != sig {
			t.Errorf("loaded %+v", m)
		}
	}
}
