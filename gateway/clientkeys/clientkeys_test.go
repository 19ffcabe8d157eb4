package clientkeys

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var keyShape = regexp.MustCompile(`^tgk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$`)

func keyFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "gateway-keys.json")
}

func mustAdd(t *testing.T, path, name string) (key, id string) {
	t.Helper()
	key, id, err := Add(path, name)
	if err != nil {
		t.Fatalf("Add(%q): %v", name, err)
	}
	return key, id
}

func mustLoad(t *testing.T, path string) *Set {
	t.Helper()
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func TestAddCheckRevokeList(t *testing.T) {
	path := keyFile(t)
	k1, id1 := mustAdd(t, path, "team a")
	k2, id2 := mustAdd(t, path, "ci runner")
	for _, k := range []string{k1, k2} {
		if !keyShape.MatchString(k) {
			t.Fatalf("key %q does not have the documented shape", k)
		}
	}
	if id1 == id2 || !strings.HasPrefix(k1, Prefix+id1+"_") {
		t.Fatalf("ids %q %q for key %q", id1, id2, k1)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	for _, k := range []string{k1, k2} {
		secretText := k[len(Prefix)+idLen+1:]
		raw, _ := secretEncoding.DecodeString(secretText)
		for _, form := range []string{secretText, base64.StdEncoding.EncodeToString(raw), string(raw)} {
			if strings.Contains(string(data), form) {
				t.Fatalf("the key file holds a secret")
			}
		}
	}

	s := mustLoad(t, path)
	if id, ok := s.Check(k1); !ok || id != id1 {
		t.Errorf("Check(k1) = %q, %v; want %q, true", id, ok, id1)
	}
	if id, ok := s.Check(k2); !ok || id != id2 {
		t.Errorf("Check(k2) = %q, %v; want %q, true", id, ok, id2)
	}
	if s.Len() != 2 || s.ModTime().IsZero() {
		t.Errorf("Len %d ModTime %v", s.Len(), s.ModTime())
	}

	if err := Revoke(path, id1); err != nil {
		t.Fatal(err)
	}
	s = mustLoad(t, path)
	if id, ok := s.Check(k1); ok || id != "" {
		t.Errorf("revoked key: Check = %q, %v", id, ok)
	}
	if _, ok := s.Check(k2); !ok {
		t.Error("revoking one key refused the other")
	}

	entries, err := List(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].ID != id1 || entries[0].Name != "team a" || entries[1].ID != id2 || entries[1].Name != "ci runner" {
		t.Fatalf("List = %+v", entries)
	}
	if entries[0].Revoked.IsZero() || !entries[1].Revoked.IsZero() || entries[0].Created.IsZero() {
		t.Errorf("List times = %+v", entries)
	}
	first := entries[0].Revoked
	if err := Revoke(path, id1); err != nil {
		t.Fatalf("revoking again: %v", err)
	}
	if entries, _ := List(path); !entries[0].Revoked.Equal(first) {
		t.Errorf("revoking again moved the revocation time")
	}
}

func TestRevokeUnknown(t *testing.T) {
	path := keyFile(t)
	key, _ := mustAdd(t, path, "a")
	for _, id := range []string{"aaaaaaaaaaaa", "", "AAAAAAAAAAAA", "short", key} {
		err := Revoke(path, id)
		if !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Revoke(%q) = %v, want ErrUnknownKey", id, err)
		}
		if err != nil && strings.Contains(err.Error(), key[len(Prefix)+idLen:]) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
	if err := Revoke(keyFile(t), "aaaaaaaaaaaa"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Revoke on a missing file = %v, want ErrUnknownKey", err)
	}
}

func TestAddRefusesBadNames(t *testing.T) {
	path := keyFile(t)
	for _, name := range []string{"", strings.Repeat("n", MaxNameLen+1), "a\nb", "a\tb", "evil\u202e", "zero\u200bwidth", "\xff"} {
		if _, _, err := Add(path, name); !errors.Is(err, ErrBadName) {
			t.Errorf("Add(%q) = %v, want ErrBadName", name, err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a refused Add wrote the file")
	}
	if _, _, err := Add(path, "Équipe données 1"); err != nil {
		t.Errorf("a plain non-ASCII name: %v", err)
	}
}

func TestCheckRefuses(t *testing.T) {
	path := keyFile(t)
	key, _ := mustAdd(t, path, "a")
	other, otherID := mustAdd(t, path, "b")
	s := mustLoad(t, path)
	id := key[len(Prefix) : len(Prefix)+idLen]
	secret := key[len(Prefix)+idLen+1:]
	flip := func(c byte) byte {
		if c == 'A' {
			return 'B'
		}
		return 'A'
	}
	wrongSecret := []byte(key)
	wrongSecret[len(Prefix)+idLen+1] = flip(wrongSecret[len(Prefix)+idLen+1])
	// The last character carries 4 bits of the secret and 2 padding bits:
	// setting a padding bit gives the same bytes, spelled otherwise.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", key[len(key)-1])
	nonCanonical := key[:len(key)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])

	cases := map[string]string{
		"wrong secret":               string(wrongSecret),
		"unknown id":                 Prefix + "aaaaaaaaaaaa_" + secret,
		"other key's id":             Prefix + otherID + "_" + secret,
		"other key's secret":         Prefix + id + "_" + other[len(Prefix)+idLen+1:],
		"empty":                      "",
		"prefix only":                Prefix,
		"id only":                    Prefix + id,
		"no secret":                  Prefix + id + "_",
		"one more character":         key + "A",
		"one less character":         key[:len(key)-1],
		"padded":                     key + "=",
		"upper-case prefix":          "TGK_" + key[len(Prefix):],
		"other prefix":               "tgx_" + key[len(Prefix):],
		"dash separator":             Prefix + id + "-" + secret,
		"upper-case id":              Prefix + strings.ToUpper(id) + "_" + secret,
		"id with 0 and 1":            Prefix + "a01aaaaaaaaa_" + secret,
		"id with 8":                  Prefix + "aaaaaaaaaaa8_" + secret,
		"std base64 characters":      Prefix + id + "_+" + secret[1:],
		"slash in secret":            Prefix + id + "_/" + secret[1:],
		"padding bits set":           nonCanonical,
		"newline in secret":          Prefix + id + "_" + secret[:10] + "\n" + secret[11:],
		"CRLF in secret":             Prefix + id + "_" + secret[:10] + "\r\n" + secret[12:],
		"space in secret":            Prefix + id + "_" + secret[:10] + " " + secret[11:],
		"leading space":              " " + key[1:],
		"bearer prefix kept":         "Bearer " + key,
		"non-ASCII":                  Prefix + id + "_" + secret[:41] + "é",
		"NUL":                        Prefix + id + "_" + secret[:42] + "\x00",
		"provider key shape":         "sk-proj-" + strings.Repeat("a", 52),
		"key twice":                  key + key,
		"the hash from the file":     Prefix + id + "_" + strings.Repeat("A", 43),
		"id and secret swapped ends": Prefix + secret[:12] + "_" + id + secret[12:],
	}
	if nonCanonical == key {
		t.Fatal("the non-canonical spelling is the key")
	}
	for name, presented := range cases {
		t.Run(name, func(t *testing.T) {
			if presented == key {
				t.Fatal("the case is the key itself")
			}
			if got, ok := s.Check(presented); ok || got != "" {
				t.Errorf("Check = %q, %v; want refused", got, ok)
			}
		})
	}
	if _, ok := s.Check(key); !ok {
		t.Fatal("the key itself is refused")
	}
	var nilSet *Set
	if _, ok := nilSet.Check(key); ok {
		t.Error("a nil Set accepted a key")
	}
	if _, ok := (&Set{}).Check(key); ok {
		t.Error("a zero Set accepted a key")
	}
}

// validFile is a key file with one key, for the adversarial cases to
// break one thing each.
func validFile(t *testing.T) (path, content, key string) {
	t.Helper()
	path = keyFile(t)
	key, _ = mustAdd(t, path, "a")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, string(data), key
}

func TestLoadRefusesMalformedFiles(t *testing.T) {
	_, content, _ := validFile(t)
	var rec struct{ id, salt, hash, created string }
	for _, f := range []struct {
		name string
		dst  *string
	}{{"id", &rec.id}, {"salt", &rec.salt}, {"hash", &rec.hash}, {"created", &rec.created}} {
		m := regexp.MustCompile(`"` + f.name + `": ("[^"]*")`).FindStringSubmatch(content)
		if m == nil {
			t.Fatalf("no %q in %s", f.name, content)
		}
		*f.dst = m[1]
	}
	record := content[strings.Index(content, "    {") : strings.LastIndex(content, "}\n  ]")+1]

	cases := []struct {
		name, old, new string
	}{
		{"empty file", content, ""},
		{"only white space", content, " \n"},
		{"not JSON", content, "version: 1\n"},
		{"truncated", content, content[:len(content)/2]},
		{"top-level array", content, "[" + content + "]"},
		{"trailing data", content, content + "{}"},
		{"two objects", content, content + content},
		{"unknown top-level field", `"version": 1,`, `"version": 1, "admin": true,`},
		{"unknown key field", `"name": "a",`, `"name": "a", "scopes": ["*"],`},
		{"field name in another case", `"id":`, `"ID":`},
		{"repeated field", `"revoked": null`, `"revoked": "2026-01-01T00:00:00Z", "revoked": null`},
		{"repeated version", `"version": 1,`, `"version": 1, "version": 1,`},
		{"duplicate id", record, record + ",\n" + record},
		{"version 2", `"version": 1`, `"version": 2`},
		{"version as a string", `"version": 1`, `"version": "1"`},
		{"no version", `"version": 1,`, ``},
		{"no keys", `,` + content[strings.Index(content, "\n  \"keys\""):len(content)-2], ``},
		{"keys null", content, `{"version": 1, "keys": null}`},
		{"bad id", rec.id, `"AAAAAAAAAAAA"`},
		{"no id", `"id": ` + rec.id + `,`, ``},
		{"empty name", `"name": "a"`, `"name": ""`},
		{"name with a newline", `"name": "a"`, `"name": "a\nb"`},
		{"bad base64 salt", rec.salt, `"!!!!"`},
		{"salt without padding", rec.salt, strings.TrimRight(rec.salt, `="`) + `"`},
		{"salt with a line break", rec.salt, rec.salt[:5] + `\n` + rec.salt[5:]},
		{"short salt", rec.salt, `"AAAA"`},
		{"no salt", `"salt": ` + rec.salt + `,`, ``},
		{"bad base64 hash", rec.hash, `"` + strings.Repeat("*", 44) + `"`},
		{"short hash", rec.hash, `"` + base64.StdEncoding.EncodeToString(make([]byte, 31)) + `"`},
		{"no hash", `"hash": ` + rec.hash + `,`, ``},
		{"hash as a number", rec.hash, `1`},
		{"bad created", rec.created, `"yesterday"`},
		{"no created", `"created": ` + rec.created + `,`, ``},
		{"revoked zero time", `"revoked": null`, `"revoked": "0001-01-01T00:00:00Z"`},
		{"revoked not a time", `"revoked": null`, `"revoked": true`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(content, c.old) {
				t.Fatalf("%q is not in the fixture", c.old)
			}
			bad := strings.Replace(content, c.old, c.new, 1)
			path := keyFile(t)
			if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Load(path)
			if !errors.Is(err, ErrMalformedFile) || s != nil {
				t.Fatalf("Load = %v, %v; want ErrMalformedFile\n%s", s, err, bad)
			}
			if _, _, err := Add(path, "b"); !errors.Is(err, ErrMalformedFile) {
				t.Errorf("Add = %v, want ErrMalformedFile", err)
			}
			if after, _ := os.ReadFile(path); string(after) != bad {
				t.Error("Add rewrote a malformed file")
			}
		})
	}
}

func TestLoadEmptySet(t *testing.T) {
	path := keyFile(t)
	if err := os.WriteFile(path, []byte(`{"version":1,"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustLoad(t, path)
	if s.Len() != 0 {
		t.Fatalf("Len = %d", s.Len())
	}
	key, _, _ := newKey()
	if _, ok := s.Check(key); ok {
		t.Error("an empty set accepted a key")
	}
	k, _ := mustAdd(t, path, "first")
	if _, ok := mustLoad(t, path).Check(k); !ok {
		t.Error("a key added to an empty set is refused")
	}
}

func TestLoadRefusesUnsafeFiles(t *testing.T) {
	for _, mode := range []os.FileMode{0o666, 0o620, 0o602} {
		path, content, _ := validFile(t)
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); !errors.Is(err, ErrUnsafeFile) {
			t.Errorf("mode %o: Load = %v, want ErrUnsafeFile", mode, err)
		}
		if _, _, err := Add(path, "b"); !errors.Is(err, ErrUnsafeFile) {
			t.Errorf("mode %o: Add = %v, want ErrUnsafeFile", mode, err)
		}
		if data, _ := os.ReadFile(path); string(data) != content {
			t.Errorf("mode %o: Add rewrote an unsafe file", mode)
		}
	}
	path, _, key := validFile(t)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustLoad(t, path).Check(key); !ok {
		t.Error("a file that others may only read is refused")
	}

	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrUnsafeFile) {
		t.Errorf("folder: Load = %v, want ErrUnsafeFile", err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(fifo); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnsafeFile) {
			t.Errorf("FIFO: Load = %v, want ErrUnsafeFile", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load hangs on a FIFO")
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: Load = %v, want fs.ErrNotExist", err)
	}
	big := keyFile(t)
	if err := os.WriteFile(big, []byte(`{"version":1,"keys":[]}`+strings.Repeat(" ", MaxFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrMalformedFile) {
		t.Errorf("over MaxFileSize: Load = %v, want ErrMalformedFile", err)
	}
}

func TestLoadFollowsALink(t *testing.T) {
	// Kubernetes mounts secrets as links into a folder it swaps.
	path, _, key := validFile(t)
	link := filepath.Join(t.TempDir(), "keys.json")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustLoad(t, link).Check(key); !ok {
		t.Error("the key is refused through a link")
	}
}
