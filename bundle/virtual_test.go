package bundle

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/testsign"
)

// The keyless unit tests: sigstore-go's in-process Fulcio, Rekor and TSA
// (testsign.Virtual), no peer program. TestAdversarialKeyless runs the same
// kind of cases against the real services.

// caNotYetValid is trust material whose certificate authorities become
// valid only in the future.
type caNotYetValid struct{ root.TrustedMaterial }

func (m caNotYetValid) FulcioCertificateAuthorities() []root.CertificateAuthority {
	var out []root.CertificateAuthority
	for _, ca := range m.TrustedMaterial.FulcioCertificateAuthorities() {
		f := *ca.(*root.FulcioCertificateAuthority)
		f.ValidityPeriodStart = time.Now().Add(24 * time.Hour)
		out = append(out, &f)
	}
	return out
}

// noLogs is trust material that trusts no transparency log.
type noLogs struct{ root.TrustedMaterial }

func (noLogs) RekorLogs() map[string]*root.TransparencyLog { return nil }

func TestVirtualKeyless(t *testing.T) {
	v := testsign.NewVirtual(t)
	const who = "signer@example.com"
	stA := []byte(statementJSON(attest.StatementType, sum("artifact A"), attest.PredicateCycloneDX))
	rawA := v.Keyless(t, who, stA)
	rawB := v.Keyless(t, who, []byte(statementJSON(attest.StatementType, sum("artifact B"), attest.PredicateCycloneDX)))
	a := Artifact{Name: "A", SHA256: sum("artifact A")}
	id, err := NewIdentity(testsign.Issuer, "", who, "")
	if err != nil {
		t.Fatal(err)
	}
	good := Options{Material: v.TrustedMaterial(), PredicateType: attest.PredicateCycloneDX}
	res, err := Verify(rawA, a, Signer{Identity: id}, good)
	if err != nil {
		t.Fatalf("a valid keyless bundle: %v", err)
	}
	if res.SignerID != "identity:"+testsign.Issuer+"\n"+who || len(res.Times) == 0 {
		t.Fatalf("result %+v", res)
	}
	fork, _ := NewIdentity(testsign.Issuer, "", "someone@fork.example", "")
	otherIssuer, _ := NewIdentity("https://token.actions.githubusercontent.com", "", who, "")
	pattern, _ := NewIdentity(testsign.Issuer, "", "", `^.*@example\.com$`)
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	vm := func(m map[string]any) map[string]any { return m["verificationMaterial"].(map[string]any) }
	graft := func(field string) []byte {
		return edit(t, rawA, func(m map[string]any) {
			var mb map[string]any
			_ = json.Unmarshal(rawB, &mb)
			vm(m)[field] = vm(mb)[field]
		})
	}
	for _, c := range []struct {
		name   string
		raw    []byte
		art    Artifact
		signer Signer
		opts   Options
		want   error
	}{
		{"identity of another subject", rawA, a, Signer{Identity: fork}, good, ErrUntrustedSigner},
		{"identity from another issuer", rawA, a, Signer{Identity: otherIssuer}, good, ErrUntrustedSigner},
		{"keyless bundle, key required", rawA, a, Signer{Key: k.Public()}, good, ErrUntrustedSigner},
		{"no trusted root", rawA, a, Signer{Identity: id}, Options{}, ErrNoSigner},
		{"log entry removed", edit(t, rawA, func(m map[string]any) { delete(vm(m), "tlogEntries") }), a, Signer{Identity: id}, good, ErrLog},
		{"log entry of another signature grafted in", graft("tlogEntries"), a, Signer{Identity: id}, good, ErrLog},
		{"certificate of another signature grafted in", graft("certificate"), a, Signer{Identity: id}, good, ErrLog},
		{"certificate authority not yet valid", rawA, a, Signer{Identity: id}, Options{Material: caNotYetValid{v.TrustedMaterial()}}, ErrCertificate},
		{"log not in the trusted root", rawA, a, Signer{Identity: id}, Options{Material: noLogs{v.TrustedMaterial()}}, ErrLog},
		{"CT logs trusted, no SCT in the certificate", rawA, a, Signer{Identity: id}, Options{Material: v.WithCTLogs()}, ErrCertificate},
		{"attestation for A offered for B", rawA, Artifact{Name: "B", SHA256: sum("artifact B")}, Signer{Identity: id}, good, ErrSubject},
		{"another predicate type required", rawA, a, Signer{Identity: id}, Options{Material: v.TrustedMaterial(), PredicateType: attest.PredicateSLSAProvenance}, ErrPredicateType},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Verify(c.raw, c.art, c.signer, c.opts); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// An anchored pattern verifies; the same signer's two bundles (two
	// certificates) have one SignerID.
	r1, err := Verify(rawA, a, Signer{Identity: pattern}, good)
	if err != nil {
		t.Fatalf("anchored pattern: %v", err)
	}
	again := v.Keyless(t, who, stA)
	r2, err := Verify(again, a, Signer{Identity: pattern}, good)
	if err != nil || r1.SignerID != r2.SignerID {
		t.Fatalf("the same signer twice: %v, %q vs %q", err, r1.SignerID, r2.SignerID)
	}
}

// A keyless bundle without a log entry is refused for it, unless the
// identity waives the log explicitly (IgnoreTlog); then an RFC 3161
// timestamp must vouch for the time instead, and the identity is checked
// as ever. Waiving and requiring the log at once is bad input.
func TestKeylessWithoutLog(t *testing.T) {
	v := testsign.NewVirtual(t)
	const who = "signer@example.com"
	a := Artifact{Name: "A", SHA256: sum("artifact A")}
	full := v.Keyless(t, who, []byte(statementJSON(attest.StatementType, a.SHA256, attest.PredicateCycloneDX)))
	strip := func(fields ...string) []byte {
		var m map[string]any
		if err := json.Unmarshal(full, &m); err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			delete(m["verificationMaterial"].(map[string]any), f)
		}
		out, _ := json.Marshal(m)
		return out
	}
	unlogged, bare := strip("tlogEntries"), strip("tlogEntries", "timestampVerificationData")
	id, _ := NewIdentity(testsign.Issuer, "", who, "")
	waiving := *id
	waiving.IgnoreTlog = true
	someone, _ := NewIdentity(testsign.Issuer, "", "someone@example.com", "")
	someone.IgnoreTlog = true
	opts := Options{Material: v.TrustedMaterial()}
	for _, c := range []struct {
		name string
		raw  []byte
		s    *Identity
		opts Options
		want error
	}{
		{"no log, not waived", unlogged, id, opts, ErrLog},
		{"no log, waived", unlogged, &waiving, opts, nil},
		{"no log, waived, another identity", unlogged, someone, opts, ErrUntrustedSigner},
		{"no log and no timestamp, waived", bare, &waiving, opts, ErrTimestamp},
		{"waived and required", unlogged, &waiving, Options{Material: v.TrustedMaterial(), RequireLog: true}, ErrNoSigner},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(c.raw, a, Signer{Identity: c.s}, c.opts)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}
