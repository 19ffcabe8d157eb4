package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/trustgate/trustgate/internal/safetext"
)

// ErrSBOM means an SBOM document cannot be read one way only.
var ErrSBOM = errors.New("SBOM is not canonical CycloneDX JSON")

// DecodeSBOM reads a CycloneDX JSON document once, for every rule that
// reads it: the BOM that packages come from, and the same BOM as a JSON
// map (re-encoded from it) for required fields and CEL rules, so that the
// two can never disagree.
//
// encoding/json matches field names without regard to case, so a document
// that spells a key "Components" would give its packages to one reader and
// hide them from another. A key that differs only in case from a
// CycloneDX field name is refused; a key that is no CycloneDX field at all
// is ignored, as CycloneDX readers ignore it.
func DecodeSBOM(raw []byte) (*cdx.BOM, map[string]any, error) {
	var bom cdx.BOM
	if err := json.Unmarshal(raw, &bom); err != nil {
		return nil, nil, fmt.Errorf("%w: not CycloneDX JSON", ErrSBOM)
	}
	canonical, err := json.Marshal(&bom)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSBOM, err)
	}
	var asRead, asMap any
	if err := decodeNumbers(raw, &asRead); err != nil {
		return nil, nil, fmt.Errorf("%w: not JSON", ErrSBOM)
	}
	if err := decodeNumbers(canonical, &asMap); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSBOM, err)
	}
	if path := nonCanonicalKey(asRead, asMap, ""); path != "" {
		return nil, nil, fmt.Errorf("%w: key %s differs only in case from the CycloneDX field", ErrSBOM, path)
	}
	m, _ := asMap.(map[string]any)
	if m == nil {
		return nil, nil, fmt.Errorf("%w: not a JSON object", ErrSBOM)
	}
	return &bom, m, nil
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// nonCanonicalKey walks the document as written beside the same document
// re-encoded from the decoded BOM, and returns the path of the first key
// written in another case than the field it was decoded into ("" if none).
// Where the two differ in shape (a field with its own JSON encoding) the
// walk stops: only keys are compared.
func nonCanonicalKey(read, canon any, at string) string {
	switch r := read.(type) {
	case map[string]any:
		c, ok := canon.(map[string]any)
		if !ok {
			return ""
		}
		for k, rv := range r {
			if cv, ok := c[k]; ok {
				if p := nonCanonicalKey(rv, cv, at+"."+k); p != "" {
					return p
				}
				continue
			}
			for ck := range c {
				if strings.EqualFold(ck, k) {
					return fmt.Sprintf("%s.%s (CycloneDX: %s)", at, safetext.Clip(k, 64), ck)
				}
			}
		}
	case []any:
		c, ok := canon.([]any)
		if !ok || len(c) != len(r) {
			return ""
		}
		for i := range r {
			if p := nonCanonicalKey(r[i], c[i], fmt.Sprintf("%s[%d]", at, i)); p != "" {
				return p
			}
		}
	}
	return ""
}
