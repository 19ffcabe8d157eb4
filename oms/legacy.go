package oms

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"

	"github.com/trustgate/trustgate/attest"
)

// LegacyKeyBundle undoes a quirk of model_signing v0.3 to v1.0.1's key
// signer: it wrote the public key itself ("rawBytes", "keyDetails") where
// a Sigstore bundle holds only a key hint, so that no strict bundle
// parser (sigstore-go's included) reads the bundle. The two members are
// unsigned, and trustgate never uses a key a bundle carries (the caller's
// key verifies), so they are dropped and every other byte is kept: the
// result goes through the bundle verifier as any bundle does. Anything
// else, or anything unexpected, is returned as given, for the verifier to
// judge.
func LegacyKeyBundle(raw []byte) []byte {
	if len(raw) > attest.MaxBundleSize {
		return raw
	}
	top, err := members(raw)
	if err != nil {
		return raw
	}
	vmAt := only(top, "verificationMaterial")
	if vmAt < 0 {
		return raw
	}
	vm, err := members(top[vmAt].value)
	if err != nil {
		return raw
	}
	pkAt := only(vm, "publicKey")
	if pkAt < 0 {
		return raw
	}
	pk, err := members(vm[pkAt].value)
	if err != nil {
		return raw
	}
	kept := slices.DeleteFunc(slices.Clone(pk), func(m jsonMember) bool {
		return m.key == "rawBytes" || m.key == "keyDetails"
	})
	if len(kept) == len(pk) || len(kept) > 1 || (len(kept) == 1 && kept[0].key != "hint") {
		return raw
	}
	vm[pkAt].value = encodeMembers(kept)
	top[vmAt].value = encodeMembers(vm)
	return encodeMembers(top)
}

// jsonMember is one member of a JSON object, its value as written.
type jsonMember struct {
	key   string
	value json.RawMessage
}

// members lists the members of one JSON object in order, duplicates
// included (the verifier then refuses them as it would have).
func members(raw []byte) ([]jsonMember, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []jsonMember
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, jsonMember{k, v})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return out, nil
}

// only is the index of the one member named key, or -1 when there is
// none or more than one.
func only(ms []jsonMember, key string) int {
	at := -1
	for i, m := range ms {
		if m.key == key {
			if at >= 0 {
				return -1
			}
			at = i
		}
	}
	return at
}

// encodeMembers writes members back as a JSON object.
func encodeMembers(ms []jsonMember) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}
