package bundle

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"

	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// Errors of an identity, matched with errors.Is.
var (
	// ErrIdentity: an identity gives both or neither of an exact value
	// and a pattern, or a pattern that does not compile.
	ErrIdentity = errors.New("invalid identity")
	// ErrUnanchored: a pattern does not match whole strings only.
	ErrUnanchored = errors.New("regular expression not anchored")
)

// Identity is a keyless signer's certificate identity: an OIDC issuer and a
// certificate subject (SAN), each exact or an anchored regular expression,
// as cosign's --certificate-identity flags. It is the one identity type of
// trustgate: policies, trust roots and flags all build this. The zero
// value matches nothing; Check (or NewIdentity) reports what is wrong with
// one.
type Identity struct {
	Issuer        string `yaml:"issuer,omitempty" json:"issuer,omitempty"`
	IssuerRegexp  string `yaml:"issuerRegexp,omitempty" json:"issuerRegexp,omitempty"`
	Subject       string `yaml:"subject,omitempty" json:"subject,omitempty"`
	SubjectRegexp string `yaml:"subjectRegexp,omitempty" json:"subjectRegexp,omitempty"`
	// IgnoreTlog, an explicit opt-in (cosign's --insecure-ignore-tlog,
	// Kyverno's ignoreTlog), accepts this identity's signatures without a
	// transparency log entry: an RFC 3161 timestamp from a timestamp
	// authority of the trusted root must then vouch for the time the
	// certificate is checked at. Nothing public records such a signature,
	// so a stolen OIDC token leaves no trace.
	IgnoreTlog bool `yaml:"ignoreTlog,omitempty" json:"ignoreTlog,omitempty"`

	issuerRE, subjectRE *regexp.Regexp
}

// IdentityProblem is one thing wrong with an identity: the field (issuer,
// issuerRegexp, subject, subjectRegexp) and an error wrapping ErrIdentity or
// ErrUnanchored.
type IdentityProblem struct {
	Field string
	Err   error
}

// NewIdentity checks and builds an Identity: one of issuer and
// issuerRegexp, one of subject and subjectRegexp, each pattern anchored
// ^...$ as a whole (sigstore-go itself would match them anywhere).
func NewIdentity(issuer, issuerRegexp, subject, subjectRegexp string) (*Identity, error) {
	id := &Identity{Issuer: issuer, IssuerRegexp: issuerRegexp, Subject: subject, SubjectRegexp: subjectRegexp}
	if ps := id.Check(); len(ps) > 0 {
		return nil, fmt.Errorf("%s: %w", ps[0].Field, ps[0].Err)
	}
	return id, nil
}

// Check reports every problem with the identity, and compiles its
// patterns when there is none.
func (id *Identity) Check() []IdentityProblem {
	var out []IdentityProblem
	for _, pr := range []struct {
		field, exact, pattern string
		re                    **regexp.Regexp
	}{
		{"issuer", id.Issuer, id.IssuerRegexp, &id.issuerRE},
		{"subject", id.Subject, id.SubjectRegexp, &id.subjectRE},
	} {
		switch {
		case (pr.exact == "") == (pr.pattern == ""):
			out = append(out, IdentityProblem{pr.field, fmt.Errorf("%w: give exactly one of %s and %sRegexp", ErrIdentity, pr.field, pr.field)})
		case pr.pattern != "":
			re, err := anchored(pr.pattern)
			if err != nil {
				out = append(out, IdentityProblem{pr.field + "Regexp", err})
				continue
			}
			*pr.re = re
		}
	}
	return out
}

// Matches reports whether a certificate's OIDC issuer and subject (SAN)
// are this identity's: equal to the exact values, or matched in full by the
// anchored regular expressions. An identity that was never checked
// matches only by its exact values.
func (id *Identity) Matches(issuer, subject string) bool {
	return matchOne(id.Issuer, id.issuerRE, issuer) && matchOne(id.Subject, id.subjectRE, subject)
}

func matchOne(exact string, re *regexp.Regexp, v string) bool {
	if re != nil {
		return re.MatchString(v)
	}
	return exact != "" && v == exact
}

// String names the identity for messages.
func (id *Identity) String() string {
	s, i := id.Subject, id.Issuer
	if s == "" {
		s = "/" + id.SubjectRegexp + "/"
	}
	if i == "" {
		i = "/" + id.IssuerRegexp + "/"
	}
	if id.IgnoreTlog {
		return s + " (issuer " + i + ", no log required)"
	}
	return s + " (issuer " + i + ")"
}

// certificateIdentity checks the identity and builds sigstore-go's.
func (id *Identity) certificateIdentity() (sgverify.CertificateIdentity, error) {
	if ps := id.Check(); len(ps) > 0 {
		return sgverify.CertificateIdentity{}, fmt.Errorf("%w: %s: %w", ErrNoSigner, ps[0].Field, ps[0].Err)
	}
	return sgverify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegexp, id.Subject, id.SubjectRegexp)
}

// anchored compiles a regular expression that must match a whole string:
// it starts with ^ and ends with an unescaped $. An unanchored pattern
// (github.com/acme/) would also match github.com/acme-fork/.
//
// The check reads the parsed expression, not the text: "^a.*|.*$" starts
// with ^ and ends with $ but is an alternation anchored at neither end as a
// whole, and (?m) turns ^ and $ into line anchors.
func anchored(pattern string) (*regexp.Regexp, error) {
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("%w: does not compile", ErrIdentity)
	}
	tree = tree.Simplify()
	if tree.Op != syntax.OpConcat || len(tree.Sub) < 2 ||
		tree.Sub[0].Op != syntax.OpBeginText || tree.Sub[len(tree.Sub)-1].Op != syntax.OpEndText {
		return nil, fmt.Errorf("%w: write it as ^...$, with alternatives inside a group: ^(?:a|b)$", ErrUnanchored)
	}
	return regexp.Compile(pattern)
}
