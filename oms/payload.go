package oms

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/trustgate/trustgate/attest"
)

// Payload is the manifest's in-toto statement as model_signing writes it
// into the DSSE envelope, byte for byte: protobuf's MessageToJson of the
// statement (two-space indent, ASCII only, the key order its Struct gives
// the predicate, a shard size printed as a Python float), with no final
// newline. One subject, named for the model, whose SHA-256 is Digest.
func (m *Manifest) Payload() []byte {
	var w jsonWriter
	w.line(0, "{")
	w.field(1, "_type", quote(attest.StatementType), ",")
	w.line(1, `"subject": [`)
	w.line(2, "{")
	w.field(3, "name", quote(m.ModelName), ",")
	w.line(3, `"digest": {`)
	w.field(4, "sha256", quote(m.Digest()), "")
	w.line(3, "}")
	w.line(2, "}")
	w.line(1, "],")
	w.field(1, "predicateType", quote(PredicateType), ",")
	w.line(1, `"predicate": {`)
	m.Serialization.write(&w, 2)
	m.writeResources(&w, 2)
	w.line(1, "}")
	w.b.WriteString("}")
	return []byte(w.b.String())
}

// Statement is the manifest's statement as trustgate's attest package
// builds it, for signing with attest.Sign: the same statement as Payload,
// compact.
func (m *Manifest) Statement() (*attest.Statement, error) {
	st, err := attest.NewStatement(PredicateType, m.predicateJSON(), attest.Subject{Name: m.ModelName, Digest: map[string]string{"sha256": m.Digest()}})
	if err != nil {
		return nil, fmt.Errorf("statement of model %q: %w", m.ModelName, err)
	}
	return st, nil
}

// predicateJSON is the predicate alone, as Payload writes it.
func (m *Manifest) predicateJSON() []byte {
	var w jsonWriter
	w.line(0, "{")
	m.Serialization.write(&w, 1)
	m.writeResources(&w, 1)
	w.b.WriteString("}")
	return []byte(w.b.String())
}

// write writes the "serialization" member at depth d, in the order the
// reference's golden payloads show: method, hash_type, allow_symlinks,
// shard_size, then ignore_paths (absent when empty).
func (s Serialization) write(w *jsonWriter, d int) {
	w.line(d, `"serialization": {`)
	w.field(d+1, "method", quote(s.Method), ",")
	w.field(d+1, "hash_type", quote(s.HashType), ",")
	last := ""
	if s.Method == MethodShards || len(s.IgnorePaths) > 0 {
		last = ","
	}
	w.field(d+1, "allow_symlinks", strconv.FormatBool(s.AllowSymlinks), last)
	if s.Method == MethodShards {
		last = ""
		if len(s.IgnorePaths) > 0 {
			last = ","
		}
		// A Struct number is a double: Python prints 8 as 8.0.
		w.field(d+1, "shard_size", strconv.FormatInt(s.ShardSize, 10)+".0", last)
	}
	if len(s.IgnorePaths) > 0 {
		w.line(d+1, `"ignore_paths": [`)
		for i, p := range s.IgnorePaths {
			w.line(d+2, quote(p)+comma(i, len(s.IgnorePaths)))
		}
		w.line(d+1, "]")
	}
	w.line(d, "},")
}

// writeResources writes the "resources" member at depth d, each
// resource's keys as the reference orders them: algorithm, digest, name.
func (m *Manifest) writeResources(w *jsonWriter, d int) {
	if len(m.Resources) == 0 {
		w.line(d, `"resources": []`)
		return
	}
	w.line(d, `"resources": [`)
	for i, r := range m.Resources {
		w.line(d+1, "{")
		w.field(d+2, "algorithm", quote(r.Algorithm), ",")
		w.field(d+2, "digest", quote(r.Digest), ",")
		w.field(d+2, "name", quote(r.Name), "")
		w.line(d+1, "}"+comma(i, len(m.Resources)))
	}
	w.line(d, "]")
}

func comma(i, n int) string {
	if i < n-1 {
		return ","
	}
	return ""
}

// jsonWriter writes indented JSON line by line.
type jsonWriter struct{ b strings.Builder }

func (w *jsonWriter) line(depth int, s string) {
	w.b.WriteString(strings.Repeat("  ", depth))
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

func (w *jsonWriter) field(depth int, key, value, end string) {
	w.line(depth, quote(key)+": "+value+end)
}

// quote is s as a JSON string the way Python's json module writes it with
// ensure_ascii (protobuf's MessageToJson): short escapes for quote,
// backslash, \n, \r, \t, \b and \f, and \uXXXX (lower-case hex, UTF-16
// surrogate pairs) for every other character outside ' ' to '~'.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			writeRune(&b, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeRune writes a printable ASCII rune as is, and any other as \uXXXX.
func writeRune(b *strings.Builder, r rune) {
	switch {
	case r >= ' ' && r <= '~':
		b.WriteRune(r)
	case r > 0xffff:
		hi, lo := utf16.EncodeRune(r)
		fmt.Fprintf(b, `\u%04x\u%04x`, hi, lo)
	default:
		fmt.Fprintf(b, `\u%04x`, r)
	}
}
