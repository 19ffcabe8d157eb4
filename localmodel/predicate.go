package localmodel

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/oms"

	"github.com/trustgate/trustgate/internal/safetext"
)

// maxIgnorePaths bounds the ignore paths a signature may state.
const maxIgnorePaths = 10_000

// readSignature reads, without verifying it, how an OMS signature (a
// Sigstore bundle) serializes its model, and the resources it lists: what
// Measure needs to serialize the model the same way. Nothing read here is
// trusted: Match compares what a verified statement says.
func readSignature(raw []byte) (oms.Serialization, []oms.Resource, error) {
	b, err := bundle.Parse(raw)
	if err != nil {
		return oms.Serialization{}, nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return oms.Serialization{}, nil, fmt.Errorf("%w: no DSSE envelope (an OMS signature signs an in-toto statement)", ErrSignature)
	}
	top, err := object(env.GetPayload(), "the statement")
	if err != nil {
		return oms.Serialization{}, nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	var pt string
	if err := json.Unmarshal(top["predicateType"], &pt); err != nil || pt != oms.PredicateType {
		return oms.Serialization{}, nil, fmt.Errorf("%w: the predicate type is not %s", ErrSignature, oms.PredicateType)
	}
	ser, res, err := parsePredicate(top["predicate"])
	if err != nil {
		return oms.Serialization{}, nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return ser, res, nil
}

// object decodes one JSON object into its members, by their exact names.
func object(raw []byte, what string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s is not a JSON object", what)
	}
	return m, nil
}

// parsePredicate reads an OMS v1.0 predicate: "serialization" (method,
// hash_type, allow_symlinks, shard_size for shards, ignore_paths) and
// "resources" (name, algorithm, digest), each member by its exact name.
// Package oms checks the parameters again when it serializes.
func parsePredicate(raw []byte) (oms.Serialization, []oms.Resource, error) {
	var s oms.Serialization
	top, err := object(raw, "the predicate")
	if err != nil {
		return s, nil, err
	}
	ser, err := object(top["serialization"], `"serialization"`)
	if err != nil {
		return s, nil, err
	}
	for k, v := range map[string]any{"method": &s.Method, "hash_type": &s.HashType, "allow_symlinks": &s.AllowSymlinks} {
		if err := json.Unmarshal(ser[k], v); err != nil {
			return s, nil, fmt.Errorf("serialization %q is missing or of the wrong type", k)
		}
	}
	if s.Method == oms.MethodShards {
		if s.ShardSize, err = shardSize(ser["shard_size"]); err != nil {
			return s, nil, err
		}
	}
	if raw, ok := ser["ignore_paths"]; ok {
		if err := json.Unmarshal(raw, &s.IgnorePaths); err != nil {
			return s, nil, fmt.Errorf(`serialization "ignore_paths" is not a list of strings`)
		}
		if len(s.IgnorePaths) > maxIgnorePaths {
			return s, nil, fmt.Errorf("%d ignore paths, limit %d", len(s.IgnorePaths), maxIgnorePaths)
		}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(top["resources"], &list); err != nil {
		return s, nil, fmt.Errorf(`"resources" is missing or not a list`)
	}
	if len(list) > oms.MaxResources {
		return s, nil, fmt.Errorf("%d resources, limit %d", len(list), oms.MaxResources)
	}
	res := make([]oms.Resource, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i, item := range list {
		m, err := object(item, fmt.Sprintf("resource %d", i))
		if err != nil {
			return s, nil, err
		}
		var r oms.Resource
		for k, v := range map[string]*string{"name": &r.Name, "algorithm": &r.Algorithm, "digest": &r.Digest} {
			if err := json.Unmarshal(m[k], v); err != nil {
				return s, nil, fmt.Errorf("resource %d: %q is missing or not a string", i, k)
			}
		}
		if seen[r.Name] {
			return s, nil, fmt.Errorf("resource %q listed twice", safetext.Clip(r.Name, 80))
		}
		seen[r.Name] = true
		res = append(res, r)
	}
	return s, res, nil
}

// shardSize reads shard_size, a whole number the reference writes as a
// float (1000000000.0).
func shardSize(raw json.RawMessage) (int64, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf(`serialization by shards without a numeric "shard_size"`)
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f != math.Trunc(f) || f < 1 || f > oms.MaxShardSize {
		return 0, fmt.Errorf("shard size %s, want a whole number from 1 to %d", safetext.Clip(n.String(), 40), int64(oms.MaxShardSize))
	}
	return int64(f), nil
}
