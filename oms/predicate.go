package oms

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trustgate/trustgate/attest"
)

// maxIgnorePaths bounds the ignore paths a predicate may state.
const maxIgnorePaths = 10_000

// signedManifest reads a verified OMS statement: its one subject (the
// model's name and SHA-256) and its predicate. It refuses a statement
// whose resources do not hash to its subject, as the reference does.
func signedManifest(st *attest.Statement) (*Manifest, error) {
	if len(st.Subject) != 1 {
		return nil, fmt.Errorf("%w: %d subjects, want exactly one (the model)", ErrPredicate, len(st.Subject))
	}
	sub := st.Subject[0]
	want := sub.Digest["sha256"]
	if !isHexDigest(want) {
		return nil, fmt.Errorf("%w: the subject has no SHA-256 in lower-case hex", ErrPredicate)
	}
	s, rs, err := parsePredicate(st.Predicate)
	if err != nil {
		return nil, err
	}
	m := &Manifest{ModelName: sub.Name, Serialization: s, Resources: rs}
	if got := m.Digest(); got != want {
		return nil, fmt.Errorf("%w: its %d resources hash to sha256:%s, and its subject says sha256:%s", ErrPredicate, len(rs), got, want)
	}
	return m, nil
}

// parsePredicate reads an OMS v1.0 predicate: "serialization" and
// "resources", exactly spelled. Other members of the predicate are
// ignored, as the predicate's specification says; an unknown member of
// the serialization or of a resource, which might change what the
// digests mean, is refused (ErrUnsupported).
func parsePredicate(raw []byte) (Serialization, []Resource, error) {
	var s Serialization
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return s, nil, fmt.Errorf("%w: the predicate is not a JSON object", ErrPredicate)
	}
	ser, ok := top["serialization"]
	if !ok {
		return s, nil, fmt.Errorf("%w: no \"serialization\"", ErrPredicate)
	}
	s, err := parseSerialization(ser)
	if err != nil {
		return s, nil, err
	}
	res, ok := top["resources"]
	if !ok {
		return s, nil, fmt.Errorf("%w: no \"resources\"", ErrPredicate)
	}
	rs, err := parseResources(res, s)
	return s, rs, err
}

// parseSerialization reads the "serialization" member and checks it is
// one this package implements.
func parseSerialization(raw json.RawMessage) (Serialization, error) {
	var s Serialization
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return s, fmt.Errorf("%w: \"serialization\" is not a JSON object", ErrPredicate)
	}
	for k := range m {
		switch k {
		case "method", "hash_type", "allow_symlinks", "ignore_paths", "shard_size":
		default:
			return s, fmt.Errorf("%w: serialization parameter %q", ErrUnsupported, clip(k))
		}
	}
	if err := member(m, "method", &s.Method); err != nil {
		return s, err
	}
	if err := member(m, "hash_type", &s.HashType); err != nil {
		return s, err
	}
	if err := member(m, "allow_symlinks", &s.AllowSymlinks); err != nil {
		return s, err
	}
	if err := s.readShardSize(m["shard_size"]); err != nil {
		return s, err
	}
	if err := s.readIgnorePaths(m["ignore_paths"]); err != nil {
		return s, err
	}
	return s, s.check()
}

// member decodes the required member key of m into v, which must have
// v's JSON type (a string or a boolean here).
func member(m map[string]json.RawMessage, key string, v any) error {
	raw, ok := m[key]
	if !ok {
		return fmt.Errorf("%w: serialization has no %q", ErrPredicate, key)
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, v) != nil {
		want := "string"
		if _, ok := v.(*bool); ok {
			want = "boolean"
		}
		return fmt.Errorf("%w: serialization %q is not a %s", ErrPredicate, key, want)
	}
	return nil
}

// readShardSize reads shard_size: required for shards (a whole number,
// which the reference writes as a float: 1000000000.0), refused for
// files.
func (s *Serialization) readShardSize(raw json.RawMessage) error {
	if raw == nil {
		if s.Method == MethodShards {
			return fmt.Errorf("%w: serialization by shards has no \"shard_size\"", ErrPredicate)
		}
		return nil
	}
	if s.Method != MethodShards {
		return fmt.Errorf("%w: \"shard_size\" with method %q", ErrUnsupported, clip(s.Method))
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return fmt.Errorf("%w: \"shard_size\" is not a number", ErrPredicate)
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f != math.Trunc(f) || f < 1 || f > MaxShardSize {
		return fmt.Errorf("%w: shard size %s, want a whole number from 1 to %d", ErrUnsupported, clip(n.String()), int64(MaxShardSize))
	}
	s.ShardSize = int64(f)
	return nil
}

// readIgnorePaths reads ignore_paths (optional): relative paths inside
// the model.
func (s *Serialization) readIgnorePaths(raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	var ps []string
	if err := json.Unmarshal(raw, &ps); err != nil {
		return fmt.Errorf("%w: \"ignore_paths\" is not a list of strings", ErrPredicate)
	}
	if len(ps) > maxIgnorePaths {
		return fmt.Errorf("%w: %d ignore paths, limit %d", ErrTooMany, len(ps), maxIgnorePaths)
	}
	for _, p := range ps {
		c, err := cleanIgnorePath(p)
		if err != nil {
			return err
		}
		s.IgnorePaths = append(s.IgnorePaths, c)
	}
	return nil
}

// resourceJSON is one resource of the predicate.
type resourceJSON struct {
	Name      *string `json:"name"`
	Algorithm *string `json:"algorithm"`
	Digest    *string `json:"digest"`
}

// parseResources reads the "resources" list: at most MaxResources, each
// with exactly a name, an algorithm (the one the serialization implies)
// and a SHA-256 digest in lower-case hex, no name twice.
func parseResources(raw json.RawMessage, s Serialization) ([]Resource, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%w: \"resources\" is not a list", ErrPredicate)
	}
	if len(list) > MaxResources {
		return nil, fmt.Errorf("%w: %d resources, limit %d", ErrTooMany, len(list), MaxResources)
	}
	alg := algorithmName(s)
	out := make([]Resource, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i, r := range list {
		res, err := parseResource(r, i)
		if err != nil {
			return nil, err
		}
		if res.Algorithm != alg {
			return nil, fmt.Errorf("%w: resource %q has algorithm %q, and the serialization implies %q", ErrUnsupported, res.Name, clip(res.Algorithm), alg)
		}
		if seen[res.Name] {
			return nil, fmt.Errorf("%w: resource %q listed twice", ErrPredicate, res.Name)
		}
		seen[res.Name] = true
		out = append(out, res)
	}
	return out, nil
}

// parseResource reads resource i of the list.
func parseResource(raw json.RawMessage, i int) (Resource, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Resource{}, fmt.Errorf("%w: resource %d is not a JSON object", ErrPredicate, i)
	}
	for k := range m {
		if k != "name" && k != "algorithm" && k != "digest" {
			return Resource{}, fmt.Errorf("%w: resource %d has field %q", ErrUnsupported, i, clip(k))
		}
	}
	var r resourceJSON
	if err := json.Unmarshal(raw, &r); err != nil || r.Name == nil || r.Algorithm == nil || r.Digest == nil {
		return Resource{}, fmt.Errorf("%w: resource %d needs a name, an algorithm and a digest, as strings", ErrPredicate, i)
	}
	name := *r.Name
	if name == "" || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return Resource{}, fmt.Errorf("%w: resource %d has an empty or invalid name", ErrPredicate, i)
	}
	if !isHexDigest(*r.Digest) {
		return Resource{}, fmt.Errorf("%w: resource %q: digest is not a SHA-256 in lower-case hex", ErrPredicate, clip(name))
	}
	return Resource{Name: name, Algorithm: *r.Algorithm, Digest: *r.Digest}, nil
}

// isHexDigest reports whether s is a SHA-256 digest in lower-case hex.
func isHexDigest(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// resourcePath is the file path of a resource name: the name itself for
// files, the name without ":start:end" for shards.
func resourcePath(name, method string) string {
	if method != MethodShards {
		return name
	}
	for range 2 {
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			name = name[:i]
		}
	}
	return name
}
