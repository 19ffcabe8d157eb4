package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustgate/trustgate/audit"
	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
)

// auditLog writes a log of five entries, a checkpoint every two (lines:
// e1 e2 cp e3 e4 cp e5 cp), and the PEM public key that verifies it.
func auditLog(t *testing.T) (log, pub string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, pub = filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.pub")
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pemKey, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := audit.Open(log, key, audit.Options{Every: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"alpha", "beta", "gamma", "delta", "epsilon"} {
		if err := w.Append(map[string]any{"model": model, "status": 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return log, pub
}

// editLog rewrites the log's lines with edit.
func editLog(t *testing.T, path string, edit func(lines []string) []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(edit(lines), "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerify(t *testing.T) {
	_, otherPub := auditLog(t)
	tests := []struct {
		name   string
		edit   func(l []string) []string
		other  bool // verify with another key
		code   int
		stdout string
	}{
		{"untouched", nil, false, cli.ExitOK,
			"OK: 5 entries, 3 checkpoints, last checkpoint at seq 8\n"},
		{"cut after a checkpoint", func(l []string) []string { return l[:5] }, false, cli.ExitOK,
			"OK: 4 entries, 1 checkpoints, last checkpoint at seq 3\n" +
				"WARNING: the last 2 entries (seq 4 to 5) follow the last checkpoint: no signature covers them\n"},
		{"an entry edited", func(l []string) []string {
			l[3] = strings.Replace(l[3], "gamma", "gammb", 1)
			return l
		}, false, cli.ExitDenied, "FAIL line 4 (seq 4): changed: "},
		{"an entry removed", func(l []string) []string { return append(l[:1:1], l[2:]...) }, false, cli.ExitDenied,
			"FAIL line 2 (seq 3): missing: seq 2 is not in the log: the entry was removed\n"},
		{"two entries swapped", func(l []string) []string {
			l[3], l[4] = l[4], l[3]
			return l
		}, false, cli.ExitDenied, "FAIL line 4 (seq 5): reordered: "},
		{"another key", nil, true, cli.ExitDenied, "FAIL line 3 (seq 3): forged checkpoint: signed by key "},
		{"no checkpoint", func(l []string) []string { return l[:2] }, false, cli.ExitDenied,
			"FAIL line 1 (seq 1): unsigned: no checkpoint signs the log (2 entries)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, pub := auditLog(t)
			if tt.edit != nil {
				editLog(t, log, tt.edit)
			}
			if tt.other {
				pub = otherPub
			}
			code, stdout, stderr := run(t, "audit", "verify", log, "--key", pub)
			if code != tt.code || !strings.HasPrefix(stdout, tt.stdout) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and stdout %q", code, stdout, stderr, tt.code, tt.stdout)
			}
			if code == cli.ExitDenied && strings.Count(stdout, "\n") != 1 {
				t.Errorf("stdout %q: want one FAIL line", stdout)
			}
		})
	}
}

func TestAuditVerifyBadInput(t *testing.T) {
	log, pub := auditLog(t)
	notKey := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notKey, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{"audit", "verify", log}, `required flag(s) "key" not set`},
		{"key missing", []string{"audit", "verify", log, "--key", pub + ".missing"}, "--key"},
		{"key not PEM", []string{"audit", "verify", log, "--key", notKey}, "not a PEM public key"},
		{"log missing", []string{"audit", "verify", log + ".missing", "--key", pub}, "no such file"},
		{"log is a folder", []string{"audit", "verify", filepath.Dir(log), "--key", pub}, "directory"},
		{"two logs", []string{"audit", "verify", log, log, "--key", pub}, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, no output, and %q", code, stdout, stderr, tt.want)
			}
		})
	}
}
