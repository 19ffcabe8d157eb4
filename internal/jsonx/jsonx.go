// Package jsonx reads JSON strictly, for formats whose readers disagree on
// what a lenient document means: no key twice, bounded nesting, no unknown
// field, nothing after the value.
package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// NoDuplicateKeys walks a JSON document and fails on an object with a key
// twice (keys compared ignoring ASCII case, and only printable ASCII
// allowed in keys), or on nesting deeper than maxDepth.
func NoDuplicateKeys(data []byte, maxDepth int) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj     bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) > 0 {
				return errors.New("not valid JSON: it ends inside an object or array")
			}
			return nil
		}
		if err != nil {
			return errors.New("not valid JSON")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.obj {
					top.wantKey = true
				}
				if len(stack) == maxDepth {
					return fmt.Errorf("nested deeper than %d", maxDepth)
				}
				stack = append(stack, &frame{obj: t == '{', keys: map[string]bool{}, wantKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].wantKey = true
				}
			}
		case string:
			if top != nil && top.obj && top.wantKey {
				// encoding/json matches field names without regard to
				// case (and folds some non-ASCII letters onto ASCII ones),
				// so "predicateType" and "PredicateType" are the same key
				// to one reader and two to another. Keys are ASCII here.
				for _, r := range t {
					if r > 0x7e || r < 0x20 {
						return fmt.Errorf("an object key at byte %d is not printable ASCII", dec.InputOffset())
					}
				}
				k := strings.ToLower(t)
				if top.keys[k] {
					return fmt.Errorf("a key given twice (ignoring case) at byte %d", dec.InputOffset())
				}
				top.keys[k] = true
				top.wantKey = false
				continue
			}
			if top != nil && top.obj {
				top.wantKey = true
			}
		default:
			if top != nil && top.obj {
				top.wantKey = true
			}
		}
	}
}

// DecodeStrict decodes raw, one JSON value, into v: no key twice (as
// NoDuplicateKeys, nested at most maxDepth), no field v does not have,
// nothing after the value.
func DecodeStrict(raw []byte, v any, maxDepth int) error {
	if err := NoDuplicateKeys(raw, maxDepth); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
