package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/gateway/clientkeys"
)

func TestGatewayKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway-keys.json")

	code, stdout, stderr := run(t, "gateway-keys", "add", "--file", file, "--name", "team a")
	if code != cli.ExitOK {
		t.Fatalf("add: exit %d: %s", code, stderr)
	}
	key := strings.TrimSuffix(stdout, "\n")
	if !regexp.MustCompile(`^tgk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$`).MatchString(key) {
		t.Fatalf("add: stdout %q is not one key", stdout)
	}
	id := key[4:16]
	if !strings.Contains(stderr, id) || !strings.Contains(stderr, "shown once") || strings.Contains(stderr, key) {
		t.Errorf("add: stderr %q: want the id and that the key is shown once, not the key", stderr)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	set, err := clientkeys.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := set.Check(key); !ok || got != id {
		t.Fatalf("the printed key does not check: %q, %v", got, ok)
	}
	if code, _, stderr := run(t, "gateway-keys", "add", "--file", file, "--name", "ci"); code != cli.ExitOK {
		t.Fatalf("second add: exit %d: %s", code, stderr)
	}

	code, stdout, stderr = run(t, "gateway-keys", "list", "--file", file)
	if code != cli.ExitOK {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], id) ||
		!strings.Contains(lines[1], "team a") || !strings.HasSuffix(lines[1], "-") {
		t.Fatalf("list:\n%s", stdout)
	}
	if strings.Contains(stdout, key[17:]) {
		t.Fatal("list prints a secret")
	}

	code, _, stderr = run(t, "gateway-keys", "revoke", "--file", file, id)
	if code != cli.ExitOK || !strings.Contains(stderr, "revoked") {
		t.Fatalf("revoke: exit %d: %s", code, stderr)
	}
	if set, _ := clientkeys.Load(file); set == nil {
		t.Fatal("unreadable after revoke")
	} else if _, ok := set.Check(key); ok {
		t.Fatal("a revoked key still checks")
	}
	_, stdout, _ = run(t, "gateway-keys", "list", "--file", file)
	if line := strings.Split(stdout, "\n")[1]; !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s*$`).MatchString(line) {
		t.Errorf("list does not show the revocation time: %q", line)
	}
}

func TestGatewayKeysErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.json")
	_, stdout, _ := run(t, "gateway-keys", "add", "--file", file, "--name", "a")
	key := strings.TrimSpace(stdout)
	unsafe := filepath.Join(dir, "unsafe.json")
	data, _ := os.ReadFile(file)
	if err := os.WriteFile(unsafe, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(unsafe, 0o666); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"add without file", []string{"gateway-keys", "add", "--name", "a"}, `required flag(s) "file" not set`},
		{"add without name", []string{"gateway-keys", "add", "--file", file}, `required flag(s) "name" not set`},
		{"add with a bad name", []string{"gateway-keys", "add", "--file", file, "--name", "a\x1b[2J"}, "bad gateway key name"},
		{"add to an unsafe file", []string{"gateway-keys", "add", "--file", unsafe, "--name", "b"}, "unsafe gateway key file"},
		{"list a missing file", []string{"gateway-keys", "list", "--file", filepath.Join(dir, "none.json")}, "no such file"},
		{"list an unsafe file", []string{"gateway-keys", "list", "--file", unsafe}, "other users may write it"},
		{"revoke an unknown id", []string{"gateway-keys", "revoke", "--file", file, "aaaaaaaaaaaa"}, `unknown gateway key: "aaaaaaaaaaaa"`},
		{"revoke a whole key", []string{"gateway-keys", "revoke", "--file", file, key}, "not a key id"},
		{"revoke without id", []string{"gateway-keys", "revoke", "--file", file}, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if strings.Contains(stderr, key[17:]) {
				t.Errorf("stderr shows a key: %q", stderr)
			}
		})
	}
}
