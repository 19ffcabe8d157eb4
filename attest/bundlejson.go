package attest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"
)

// ParseBundleJSON parses a Sigstore bundle's JSON (at most MaxBundleSize
// bytes) and checks it as sigstore-go does. Its error says what kind of
// problem was found and where (line and column), never what the file
// holds: a file of secrets passed by mistake as a bundle must not end up in
// a report, a log or a SARIF file.
func ParseBundleJSON(raw []byte) (*bundle.Bundle, error) {
	if len(raw) > MaxBundleSize {
		return nil, fmt.Errorf("bundle larger than %d bytes", MaxBundleSize)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("not a Sigstore bundle: %s", bundleProblem(err))
	}
	return &b, nil
}

// bundleSentinels are sigstore-go's own errors, whose text is fixed.
var bundleSentinels = []struct {
	err  error
	text string
}{
	{bundle.ErrUnsupportedMediaType, "unsupported media type"},
	{bundle.ErrEmptyBundle, "empty bundle"},
	{bundle.ErrMissingVerificationMaterial, "missing verification material"},
	{bundle.ErrMissingBundleContent, "missing bundle content"},
	{bundle.ErrMissingEnvelope, "missing DSSE envelope"},
	{bundle.ErrDecodingJSON, "DSSE payload is not JSON"},
	{bundle.ErrDecodingB64, "bad base64"},
}

// jsonProblems are the kinds of problem protojson reports, in the words
// of its messages; what follows them in a message quotes the input.
var jsonProblems = []string{
	"syntax error", "unexpected token", "unknown field", "duplicate field",
	"invalid value", "invalid UTF-8", "unexpected EOF", "required field",
	"inclusion promises missing", "inclusion proof missing", "certificate chain",
	"self-signed certificate", "non-CA certificate", "invalid bundle content",
	"invalid verification material content",
}

var jsonPosition = regexp.MustCompile(`\(line (\d+):(\d+)\)`)

// bundleProblem describes a parse error by kind and position only.
func bundleProblem(err error) string {
	msg := err.Error()
	kind := "invalid content"
	for _, s := range bundleSentinels {
		if errors.Is(err, s.err) {
			kind = s.text
			break
		}
	}
	if kind == "invalid content" {
		for _, p := range jsonProblems {
			if strings.Contains(msg, p) {
				kind = p
				break
			}
		}
	}
	if m := jsonPosition.FindStringSubmatch(msg); m != nil {
		kind += " at line " + m[1] + ", column " + m[2]
	}
	return kind
}
