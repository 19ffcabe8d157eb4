package localmodel

import (
	"testing"

	"github.com/trustgate/trustgate/oms"
)

// FuzzParsePredicate: whatever a signature's predicate holds, reading it
// never panics, and what it accepts is within the limits.
func FuzzParsePredicate(f *testing.F) {
	f.Add([]byte(`{"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false, "ignore_paths": ["model.sig"]},
 "resources": [{"algorithm": "sha256", "digest": "0000000000000000000000000000000000000000000000000000000000000000", "name": "config.json"}]}`))
	f.Add([]byte(`{"serialization": {"method": "shards", "hash_type": "sha256", "allow_symlinks": true, "shard_size": 1000000000.0}, "resources": []}`))
	f.Add([]byte(`{"serialization": {"method": "shards", "hash_type": "sha256", "allow_symlinks": false, "shard_size": 1e300}, "resources": []}`))
	f.Add([]byte(`{"Serialization": {}, "resources": [{"name": "a"}, {"name": "a"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, res, err := parsePredicate(raw)
		if err != nil {
			return
		}
		if s.Method == oms.MethodShards && (s.ShardSize < 1 || s.ShardSize > oms.MaxShardSize) {
			t.Fatalf("accepted shard size %d", s.ShardSize)
		}
		if len(res) > oms.MaxResources || len(s.IgnorePaths) > maxIgnorePaths {
			t.Fatalf("accepted %d resources and %d ignore paths", len(res), len(s.IgnorePaths))
		}
		seen := map[string]bool{}
		for _, r := range res {
			if seen[r.Name] {
				t.Fatalf("accepted %q twice", r.Name)
			}
			seen[r.Name] = true
		}
	})
}

// FuzzReadSignature: whatever the signature file holds, reading it never
// panics; what is not an OMS signature is ErrSignature.
func FuzzReadSignature(f *testing.F) {
	f.Add([]byte(`{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": {"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}}`))
	f.Add([]byte("not json"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _, _ = readSignature(raw)
	})
}
