package oms

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/trustgate/trustgate/attest"
)

// FuzzPredicate: predicates come from signatures of models downloaded from
// anywhere (read only once the signature verifies, yet the signer may be
// careless). Parsing any bytes never panics, refuses with one of the
// package's errors, and what it accepts is a serialization this package
// implements, resources that say what they are, and a predicate that
// reads back the same once written.
func FuzzPredicate(f *testing.F) {
	goldens, _ := filepath.Glob("../testdata/model-transparency/tests/_signing/testdata/signing/TestPayload/*")
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			f.Fatal(err)
		}
		var st attest.Statement
		if json.Unmarshal(data, &st) == nil {
			f.Add([]byte(st.Predicate))
		}
	}
	f.Add([]byte(`{"serialization":{"method":"shards","hash_type":"sha256","allow_symlinks":false,"shard_size":1e3,"ignore_paths":["a/../b"]},"resources":[]}`))
	f.Add([]byte(`{"serialization":{"method":"files","hash_type":"sha256","allow_symlinks":null},"resources":[{"name":"a","algorithm":"sha256","digest":"x"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, rs, err := parsePredicate(raw)
		if err != nil {
			if !errors.Is(err, ErrPredicate) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooMany) {
				t.Fatalf("refused with an error of no kind: %v", err)
			}
			return
		}
		if s.check() != nil {
			t.Fatalf("accepted an unsupported serialization %+v", s)
		}
		for _, r := range rs {
			if r.Algorithm != algorithmName(s) || !isHexDigest(r.Digest) || r.Name == "" {
				t.Fatalf("accepted resource %+v", r)
			}
		}
		m := &Manifest{Serialization: s, Resources: rs}
		s2, rs2, err := parsePredicate(m.predicateJSON())
		if err != nil || !reflect.DeepEqual(s, s2) || !(len(rs) == 0 && len(rs2) == 0 || reflect.DeepEqual(rs, rs2)) {
			t.Fatalf("written back, the predicate reads %+v %+v (%v), not %+v %+v", s2, rs2, err, s, rs)
		}
	})
}

// FuzzLegacyKeyBundle: the one rewrite made before a bundle is verified
// never panics, and changes a bundle only by dropping the public key
// members of its verification material.
func FuzzLegacyKeyBundle(f *testing.F) {
	for _, d := range []string{"v1.0.1-elliptic-key", "v1.1.0-elliptic-key", "v1.1.0-sigstore"} {
		data, err := os.ReadFile(filepath.Join("../testdata/model-transparency/scripts/tests", d, "model.sig"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := LegacyKeyBundle(raw)
		if string(out) == string(raw) {
			return
		}
		top, err := members(out)
		if err != nil {
			t.Fatalf("rewrote into something that is no JSON object: %v", err)
		}
		vm, _ := members(top[only(top, "verificationMaterial")].value)
		pk, _ := members(vm[only(vm, "publicKey")].value)
		for _, m := range pk {
			if m.key != "hint" {
				t.Fatalf("rewritten public key still has %q", m.key)
			}
		}
		orig, _ := members(raw)
		if len(orig) != len(top) {
			t.Fatalf("rewrite changed the bundle's members: %d, then %d", len(orig), len(top))
		}
	})
}
