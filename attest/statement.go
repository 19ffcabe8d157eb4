package attest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trustgate/trustgate/internal/safetext"
)

// Formats fixed by DESIGN.md.
const (
	// StatementType is the in-toto Statement v1 type URI.
	StatementType = intoto.StatementTypeUri
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// BundleMediaType is the media type of a Sigstore bundle v0.3 (JSON).
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// Predicate types trustgate writes and reads.
const (
	PredicateCycloneDX      = "https://cyclonedx.org/bom"
	PredicateSLSAProvenance = "https://slsa.dev/provenance/v1"
	PredicateVSA            = "https://slsa.dev/verification_summary/v1"
	PredicatePolicy         = "https://trustgate.dev/policy/v1"
)

// predicateAliases are the short names the CLI takes for --type, as cosign
// spells them.
var predicateAliases = map[string]string{
	"cyclonedx":       PredicateCycloneDX,
	"slsaprovenance":  PredicateSLSAProvenance,
	"slsaprovenance1": PredicateSLSAProvenance,
	"vsa":             PredicateVSA,
	"policy":          PredicatePolicy,
}

// Limits on what a statement may hold, so that neither signing nor reading
// one can be made to use unbounded memory.
const (
	MaxPredicateSize = 64 << 20
	MaxSubjects      = 1024
	maxNameLength    = 4096
)

// Statement errors.
var (
	ErrPredicateType  = errors.New("invalid predicate type")
	ErrPredicate      = errors.New("invalid predicate")
	ErrInvalidSubject = errors.New("invalid subject")
)

// PredicateType resolves a --type value: a short name (cyclonedx,
// slsaprovenance, vsa, policy) or an absolute URI, returned as is.
func PredicateType(s string) (string, error) {
	if full, ok := predicateAliases[strings.ToLower(s)]; ok {
		return full, nil
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || len(s) > maxNameLength {
		return "", fmt.Errorf("%w: %q is neither a known name (cyclonedx, slsaprovenance, vsa, policy) nor an absolute URI", ErrPredicateType, safetext.Clip(s, 80))
	}
	return s, nil
}

// Subject is one artifact a statement is about: a name and its digests,
// keyed by in-toto algorithm name ("sha256" for files and images, "dirHash"
// for directories: the h1 tree digest in hex, see package digest).
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Statement is an in-toto Statement v1. Fields are in the order the
// specification lists them; Predicate holds the predicate's JSON as given.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// NewStatement builds a statement about subjects. predicate must be one JSON
// object (a CycloneDX BOM, a SLSA provenance, ...); it is compacted but
// otherwise kept byte for byte. Subjects are sorted by name so the same
// input gives the same statement.
func NewStatement(predicateType string, predicate []byte, subjects ...Subject) (*Statement, error) {
	if _, err := PredicateType(predicateType); err != nil {
		return nil, err
	}
	if len(predicate) > MaxPredicateSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrPredicate, MaxPredicateSize)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, predicate); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrPredicate, jsonErrorKind(err))
	}
	if compact.Len() == 0 || compact.Bytes()[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrPredicate)
	}
	if len(subjects) == 0 {
		return nil, fmt.Errorf("%w: a statement needs at least one subject", ErrInvalidSubject)
	}
	if len(subjects) > MaxSubjects {
		return nil, fmt.Errorf("%w: %d subjects, more than %d", ErrInvalidSubject, len(subjects), MaxSubjects)
	}
	subs := append([]Subject(nil), subjects...)
	sort.SliceStable(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
	for i, s := range subs {
		if err := s.validate(); err != nil {
			return nil, err
		}
		if i > 0 && subs[i-1].Name == s.Name {
			return nil, fmt.Errorf("%w: %q named twice", ErrInvalidSubject, s.Name)
		}
	}
	st := &Statement{Type: StatementType, Subject: subs, PredicateType: predicateType, Predicate: compact.Bytes()}
	// A second, independent reading by the in-toto reference types: what
	// we write must be what the specification's own code accepts.
	if err := st.checkSpec(); err != nil {
		return nil, err
	}
	return st, nil
}

func (s Subject) validate() error {
	if s.Name == "" || len(s.Name) > maxNameLength || strings.ContainsAny(s.Name, "\x00\n") {
		return fmt.Errorf("%w: name %q is empty, too long or has control characters", ErrInvalidSubject, safetext.Clip(s.Name, 80))
	}
	if len(s.Digest) == 0 {
		return fmt.Errorf("%w: %q has no digest", ErrInvalidSubject, s.Name)
	}
	for alg, v := range s.Digest {
		n := intoto.HashAlgorithm(alg).HexLength()
		if alg != "sha256" && alg != "sha512" && alg != "dirHash" {
			return fmt.Errorf("%w: %q: digest algorithm %q is not one trustgate writes (sha256, sha512, dirHash)", ErrInvalidSubject, s.Name, alg)
		}
		if b, err := hex.DecodeString(v); err != nil || len(b) != n || strings.ToLower(v) != v {
			return fmt.Errorf("%w: %q: %s digest is not %d bytes of lower-case hex", ErrInvalidSubject, s.Name, alg, n)
		}
	}
	return nil
}

// checkSpec parses the statement with the in-toto project's protobuf types
// and runs their validation.
func (st *Statement) checkSpec() error {
	raw, err := st.Bytes()
	if err != nil {
		return err
	}
	var pb intoto.Statement
	// The parser's message may quote the predicate, so it is not passed
	// on: what it refuses here that json.Compact let through is a
	// duplicate key or a number out of range.
	if err := (protojson.UnmarshalOptions{}).Unmarshal(raw, &pb); err != nil {
		return fmt.Errorf("%w: duplicate keys or numbers out of range (the in-toto types refuse it)", ErrPredicate)
	}
	if err := pb.Validate(); err != nil {
		return fmt.Errorf("%w: in-toto validation: %w", ErrInvalidSubject, err)
	}
	return nil
}

// Bytes is the statement's JSON, the DSSE payload: compact, fields in
// declaration order, and the predicate exactly as given (no HTML escaping,
// which encoding/json would otherwise apply to it).
func (st *Statement) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(st); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonErrorKind describes a JSON syntax error by position only, so an error
// never quotes the document (which may be a secret-bearing file given by
// mistake).
func jsonErrorKind(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed"
}
