// Package yamlx decodes trustgate's YAML documents (stack manifests,
// policies) strictly and remembers where every field was written, so that an
// error can name the field and its line.
//
// Strict means: exactly one document; no unknown fields, duplicate keys,
// anchors, aliases or merge keys; every value of the shape its Go type wants.
// Errors never quote a value from the document, because a document may hold
// a secret by mistake; they name the field path and the line instead.
package yamlx

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kinds of error, matched with errors.Is.
var (
	ErrSyntax       = errors.New("invalid YAML")
	ErrUnknownField = errors.New("unknown field")
	ErrDuplicateKey = errors.New("duplicate key")
	ErrWrongType    = errors.New("wrong type")
	ErrAlias        = errors.New("anchors and aliases are not allowed")
	ErrTooLarge     = errors.New("document too large")
)

// FieldError is an error about one field of a document.
type FieldError struct {
	File  string // the document's file name as the user gave it; may be empty
	Line  int    // 1-based; 0 when unknown
	Field string // path such as "plugins[1].path"; empty for the document
	Err   error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// Index maps field paths to the line they were written on.
type Index struct {
	file  string
	lines map[string]int
}

// Line returns the line of path, or of its nearest recorded parent, or 0.
func (ix *Index) Line(path string) int {
	for p := path; ; {
		if l, ok := ix.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return 0
		}
		p = p[:i]
	}
}

// Errorf returns a FieldError at path wrapping err with a message.
// The message must not contain document values.
func (ix *Index) Errorf(path string, err error, format string, args ...any) *FieldError {
	if format != "" {
		err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, args...))
	}
	return &FieldError{File: ix.file, Line: ix.Line(path), Field: path, Err: err}
}

// MaxDepth bounds how deeply a document may nest. trustgate's documents
// need a handful of levels; the bound keeps hostile nesting cheap.
const MaxDepth = 32

// Document is one parsed YAML document, ready to be scanned and decoded.
type Document struct {
	file string
	root *yaml.Node // nil for an empty document
}

// Parse parses data, a single YAML document of at most maxSize bytes.
// file names the document in errors.
func Parse(file string, data []byte, maxSize int) (*Document, error) {
	if len(data) > maxSize {
		return nil, &FieldError{File: file, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxSize)}
	}
	root, err := parseOne(data)
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, &FieldError{File: file, Line: se.line, Err: err}
		}
		return nil, &FieldError{File: file, Err: err}
	}
	if root != nil {
		if n := tooDeep(root); n != nil {
			return nil, &FieldError{File: file, Line: n.Line, Err: fmt.Errorf("%w: nested more than %d levels", ErrSyntax, MaxDepth)}
		}
	}
	return &Document{file: file, root: root}, nil
}

// Decode decodes the document into v (a pointer to a struct) strictly, and
// returns where each field was.
func (d *Document) Decode(v any) (*Index, error) {
	ix := &Index{file: d.file, lines: map[string]int{}}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("yamlx: Decode needs a pointer to a struct")
	}
	if d.root == nil { // empty document
		return ix, nil
	}
	w := walker{ix: ix}
	if err := w.walk(d.root, rv.Elem().Type(), ""); err != nil {
		return nil, err
	}
	// The walk has checked every key and shape, so decoding the same nodes
	// with yaml.v3 cannot meet an unknown field; its own error text may
	// quote a value, so only the line is kept from it.
	if err := d.root.Decode(v); err != nil {
		return nil, &FieldError{File: d.file, Line: syntaxLine(err), Err: fmt.Errorf("%w: value does not fit its field", ErrWrongType)}
	}
	return ix, nil
}

// Decode is Parse then Document.Decode.
func Decode(file string, data []byte, maxSize int, v any) (*Index, error) {
	d, err := Parse(file, data, maxSize)
	if err != nil {
		return nil, err
	}
	return d.Decode(v)
}

// Text is one piece of text in a document, for scans such as "does anything
// here look like a secret", which run before the strict decode so that they
// win. Path is where it sits; for a key or a comment it is the path of the
// node that holds it, so that the text itself never becomes part of a path.
type Text struct {
	Path  string
	Line  int
	Value string
}

// Texts calls fn for every scalar, key and comment of the document, in
// document order, until fn returns false.
func (d *Document) Texts(fn func(Text) bool) {
	if d.root == nil {
		return
	}
	var visit func(n *yaml.Node, path string) bool
	visit = func(n *yaml.Node, path string) bool {
		for _, c := range []string{n.HeadComment, n.LineComment, n.FootComment, n.Tag, n.Anchor} {
			if c != "" && !fn(Text{Path: path, Line: n.Line, Value: c}) {
				return false
			}
		}
		switch n.Kind {
		case yaml.ScalarNode, yaml.AliasNode:
			return fn(Text{Path: path, Line: n.Line, Value: n.Value})
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if !visit(k, path) {
					return false
				}
				if !visit(n.Content[i+1], join(path, k.Value)) {
					return false
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if !visit(c, fmt.Sprintf("%s[%d]", path, i)) {
					return false
				}
			}
		}
		return true
	}
	visit(d.root, "")
}

// tooDeep returns the first node nested deeper than MaxDepth, or nil.
func tooDeep(root *yaml.Node) *yaml.Node {
	type item struct {
		n     *yaml.Node
		depth int
	}
	stack := []item{{root, 1}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.depth > MaxDepth {
			return it.n
		}
		for _, c := range it.n.Content {
			stack = append(stack, item{c, it.depth + 1})
		}
	}
	return nil
}

func parseOne(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, &syntaxError{line: syntaxLine(err), msg: yamlMessage(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one document", ErrSyntax)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%w: not a single document", ErrSyntax)
	}
	return doc.Content[0], nil
}

var quoted = regexp.MustCompile("'[^']*'|\"[^\"]*\"|`[^`]*`|%[0-9A-Fa-f]{2}|#[xX][0-9A-Fa-f]+")

type walker struct{ ix *Index }

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

func (w walker) walk(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return w.ix.errAt(n, path, ErrAlias)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return w.ix.errAt(n, path, fmt.Errorf("%w: explicit tags are not allowed", ErrWrongType))
	}
	if path != "" {
		if _, seen := w.ix.lines[path]; !seen {
			w.ix.lines[path] = n.Line
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an explicit null leaves the zero value
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // the type checks itself
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if err := w.scalar(n, path, "a string"); err != nil {
			return err
		}
		// Parse it here, so that a bad value is reported at its line and
		// field (the type's own message may quote the value; it is dropped).
		if reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)) != nil {
			return w.ix.errAt(n, path, fmt.Errorf("%w: not a valid value for this field", ErrWrongType))
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.walk(n, t.Elem(), path)
	case reflect.Struct:
		return w.mapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return w.ix.errAt(n, path, fmt.Errorf("%w: want a list", ErrWrongType))
		}
		for i, c := range n.Content {
			if err := w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return w.ix.errAt(n, path, fmt.Errorf("%w: want a mapping", ErrWrongType))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if err := w.key(k, path, seen); err != nil {
				return err
			}
			if err := w.walk(val, t.Elem(), join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		return w.scalar(n, path, "a string")
	case reflect.Bool:
		if err := w.scalar(n, path, "true or false"); err != nil {
			return err
		}
		if n.ShortTag() != "!!bool" {
			return w.ix.errAt(n, path, fmt.Errorf("%w: want true or false", ErrWrongType))
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if err := w.scalar(n, path, "an integer"); err != nil {
			return err
		}
		if _, err := strconv.ParseInt(n.Value, 0, t.Bits()); err != nil || n.ShortTag() != "!!int" {
			return w.ix.errAt(n, path, fmt.Errorf("%w: want an integer", ErrWrongType))
		}
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if err := w.scalar(n, path, "a non-negative integer"); err != nil {
			return err
		}
		if _, err := strconv.ParseUint(n.Value, 0, t.Bits()); err != nil || n.ShortTag() != "!!int" {
			return w.ix.errAt(n, path, fmt.Errorf("%w: want a non-negative integer", ErrWrongType))
		}
		return nil
	case reflect.Interface:
		return nil
	default:
		return w.scalar(n, path, "a scalar")
	}
}

func (w walker) scalar(n *yaml.Node, path, want string) error {
	if n.Kind != yaml.ScalarNode {
		return w.ix.errAt(n, path, fmt.Errorf("%w: want %s", ErrWrongType, want))
	}
	return nil
}

func (w walker) mapping(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.MappingNode {
		return w.ix.errAt(n, path, fmt.Errorf("%w: want a mapping", ErrWrongType))
	}
	fields := yamlFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if err := w.key(k, path, seen); err != nil {
			return err
		}
		ft, ok := fields[k.Value]
		if !ok {
			p := join(path, k.Value)
			return &FieldError{File: w.ix.file, Line: k.Line, Field: p, Err: ErrUnknownField}
		}
		if err := w.walk(val, ft, join(path, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

func (w walker) key(k *yaml.Node, path string, seen map[string]bool) error {
	if k.Kind == yaml.AliasNode || k.Anchor != "" {
		return w.ix.errAt(k, path, ErrAlias)
	}
	if k.Kind != yaml.ScalarNode || k.Style&yaml.TaggedStyle != 0 {
		return w.ix.errAt(k, path, fmt.Errorf("%w: keys must be plain strings", ErrWrongType))
	}
	if k.Value == "<<" && k.ShortTag() == "!!merge" {
		return w.ix.errAt(k, path, fmt.Errorf("%w: merge keys", ErrAlias))
	}
	p := join(path, k.Value)
	if seen[k.Value] {
		return &FieldError{File: w.ix.file, Line: k.Line, Field: p, Err: ErrDuplicateKey}
	}
	seen[k.Value] = true
	w.ix.lines[p] = k.Line
	return nil
}

func (ix *Index) errAt(n *yaml.Node, path string, err error) *FieldError {
	return &FieldError{File: ix.file, Line: n.Line, Field: path, Err: err}
}

// yamlFields maps the YAML names of t's fields (as yaml.v3 names them,
// inline structs flattened) to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// join appends a key to a field path. A key that is not a short plain
// word is written quoted and cut short, so that a path is always one line of
// printable text whatever the document holds.
func join(path, key string) string {
	if !plainKey(key) {
		if len(key) > 32 {
			key = key[:32] + "..."
		}
		return path + "[" + strconv.QuoteToASCII(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, c := range k {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// syntaxError is a YAML syntax error with its line taken out of the text.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return ErrSyntax.Error() + ": " + e.msg }
func (e *syntaxError) Unwrap() error { return ErrSyntax }

// yamlMessage is yaml.v3's error text without its "yaml: " and "line N: "
// prefixes, and with anything it quotes from the document (an anchor name,
// a character) replaced by "...", since the document may hold a secret.
func yamlMessage(err error) string {
	s := quoted.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "...")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if _, err := strconv.Atoi(rest[:i]); err == nil {
				s = rest[i+2:]
			}
		}
	}
	return s
}

// syntaxLine pulls "line N" out of a yaml.v3 error, which has no field for it.
func syntaxLine(err error) int {
	s := err.Error()
	i := strings.Index(s, "line ")
	if i < 0 {
		return 0
	}
	s = s[i+len("line "):]
	j := 0
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(s[:j])
	return n
}
