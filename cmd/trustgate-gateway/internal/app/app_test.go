package app_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/cmd/trustgate-gateway/internal/app"
	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/internal/tuftest"
	"github.com/trustgate/trustgate/tufroot"
)

// The gateway reads a trusted root from a TUF cache filled beforehand,
// never from the network: a cache whose mirror is down serves, an empty
// one stops the gateway before anything starts, and --trusted-root with
// --tuf-cache is refused.
func TestTUFCacheIsReadNeverFetched(t *testing.T) {
	trusted := []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
	repo := tuftest.New(t, map[string][]byte{tufroot.TargetName: trusted})
	filled := t.TempDir()
	if _, _, err := tufroot.Update(context.Background(), filled, &tufroot.Repository{Mirror: repo.URL, Root: repo.Anchor()}); err != nil {
		t.Fatal(err)
	}
	repo.Close()
	dir := t.TempDir()
	_, key := testsign.PublicKeyFile(t, filepath.Join(dir, "trust.pub"))
	for _, tc := range []struct {
		name  string
		flags []string
		want  string // in stderr; "" means the trust flags were accepted
	}{
		{"filled cache, mirror down", []string{"--tuf-cache", filled}, ""},
		{"empty cache", []string{"--tuf-cache", t.TempDir()}, "no trusted root in the TUF cache"},
		{"both", []string{"--tuf-cache", filled, "--trusted-root", key}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"--stack", filepath.Join(dir, "missing-stack.yaml"), "--policy", filepath.Join(dir, "missing-policy.yaml"),
				"--trust-key", key, "--data-dir", filepath.Join(dir, "data")}, tc.flags...)
			code := app.Main(context.Background(), args, &out, &errb, app.Embedded{})
			if tc.want != "" {
				if code != app.ExitUsage || !strings.Contains(errb.String(), tc.want) {
					t.Fatalf("exit %d, stderr %s", code, errb.String())
				}
				return
			}
			// Accepted: the gateway goes on to the stack, which is missing.
			if code == app.ExitUsage && strings.Contains(errb.String(), "trusted root") {
				t.Fatalf("exit %d, stderr %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), "missing-stack.yaml") {
				t.Fatalf("exit %d, stderr %s: not past the trust flags", code, errb.String())
			}
		})
	}
}
