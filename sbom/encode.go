package sbom

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// SpecVersions are the CycloneDX versions Write can produce, by name.
var SpecVersions = map[string]cdx.SpecVersion{
	"1.5": cdx.SpecVersion1_5,
	"1.6": cdx.SpecVersion1_6,
	"1.7": cdx.SpecVersion1_7,
}

// DefaultSpecVersion is the CycloneDX version written when none is asked for.
const DefaultSpecVersion = cdx.SpecVersion1_6

// Marshal encodes bom as CycloneDX JSON of the given spec version, and sets
// its serial number to a UUID derived from the content (the SHA-256 of the
// encoding without a serial number, as an RFC 9562 version 8 UUID), so that
// the same inventory always has the same serial number.
func Marshal(bom *cdx.BOM, v cdx.SpecVersion) ([]byte, error) {
	bom.SerialNumber = ""
	unnumbered, err := encode(bom, v)
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = contentUUID(unnumbered)
	return encode(bom, v)
}

func encode(bom *cdx.BOM, v cdx.SpecVersion) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, v); err != nil {
		return nil, fmt.Errorf("encoding CycloneDX %s: %w", v, err)
	}
	return buf.Bytes(), nil
}

func contentUUID(b []byte) string {
	s := sha256.Sum256(b)
	u := s[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
