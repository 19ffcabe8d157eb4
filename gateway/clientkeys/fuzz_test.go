package clientkeys

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheck: no presented string but the issued key is accepted, and the
// parser accepts only the one spelling of a key.
func FuzzCheck(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "keys.json")
	key, id, err := Add(path, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		f.Fatal(err)
	}
	secret := key[len(Prefix)+idLen+1:]
	for _, seed := range []string{
		key, "", Prefix, key + "=", key[:len(key)-1] + "B", Prefix + id + "_" + strings.Repeat("A", 43),
		Prefix + id + "_" + secret[:20] + "\n" + secret[21:], "TGK_" + key[4:], "Bearer " + key,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, presented string) {
		gotID, ok := s.Check(presented)
		if ok != (presented == key) {
			t.Fatalf("Check(%q) = %v", presented, ok)
		}
		if ok && gotID != id || !ok && gotID != "" {
			t.Fatalf("Check(%q) id %q", presented, gotID)
		}
		pid, psecret, parsed := parseKey(presented)
		if parsed && Prefix+pid+"_"+secretEncoding.EncodeToString(psecret[:]) != presented {
			t.Fatalf("parseKey accepted %q, another spelling of a key", presented)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "keys.json")
	var key string
	for range 100 {
		var err error
		if key, _, err = Add(path, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	s, err := Load(path)
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewReloader(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct{ name, presented string }{
		{"valid", key},
		{"wrong secret", key[:len(key)-2] + "AA"},
		{"unknown id", Prefix + "aaaaaaaaaaaa" + key[len(Prefix)+idLen:]},
		{"malformed", "sk-not-a-gateway-key"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Check(c.presented)
			}
		})
	}
	b.Run("reloader", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Check(key)
			}
		})
	})
}

// TestImportsStayLight: the gateway links this package; it must pull in
// nothing but the standard library and the two small internal helpers.
func TestImportsStayLight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/trustgate/trustgate/gateway/clientkeys":  true,
		"github.com/trustgate/trustgate/internal/atomicfile": true,
		"github.com/trustgate/trustgate/internal/readfile":   true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("clientkeys depends on %s", p)
		}
	}
}
