package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/testutil"
)

var lintNow = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

var sentinels = map[string]error{
	"ErrSyntax": ErrSyntax, "ErrUnknownField": ErrUnknownField, "ErrDuplicateKey": ErrDuplicateKey,
	"ErrWrongType": ErrWrongType, "ErrRequired": ErrRequired, "ErrInvalid": ErrInvalid,
	"ErrDuplicate": ErrDuplicate, "ErrUnanchored": ErrUnanchored, "ErrUnknownSigner": ErrUnknownSigner,
	"ErrUnboundCredential": ErrUnboundCredential, "ErrCEL": ErrCEL, "ErrVersionRange": ErrVersionRange,
	"ErrExpired": ErrExpired,
}

func TestGoodPolicyLintsClean(t *testing.T) {
	p, err := Load("testdata/policies/good.yaml", lintNow)
	if err != nil {
		t.Fatalf("good policy has problems:\n%v", err)
	}
	if p.Version != 3 || len(p.Components) != 2 || p.Source().Digest.IsZero() {
		t.Fatalf("loaded %+v", p)
	}
}

// Each file of testdata/policies/bad breaks one thing of good.yaml; lint
// reports exactly that problem, with its kind, line and field.
func TestBadPolicies(t *testing.T) {
	files, err := filepath.Glob("testdata/policies/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no bad policies")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			kind, line, field := testutil.ReadWant(t, f)
			want, ok := sentinels[kind]
			if !ok {
				t.Fatalf("unknown kind %s", kind)
			}
			// Bad fixtures live one folder down; keyFile paths are
			// relative to good.yaml's folder.
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dir, _ := filepath.Abs("testdata/policies")
			_, err = Parse(f, data, Options{Dir: dir, Now: lintNow})
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("got %v, want Problems", err)
			}
			if len(ps) != 1 {
				t.Fatalf("%d problems, want exactly 1:\n%v", len(ps), ps)
			}
			p := ps[0]
			if !errors.Is(p, want) || p.Line != line || p.Field != field {
				t.Fatalf("got %q (line %d, field %q), want %s at line %d, field %q", p, p.Line, p.Field, kind, line, field)
			}
			if !strings.HasPrefix(p.Error(), f+":") {
				t.Errorf("problem %q does not name the file", p)
			}
		})
	}
}

// Lint reports every problem, not only the first.
func TestLintReportsEveryProblem(t *testing.T) {
	data, err := os.ReadFile("testdata/policies/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.NewReplacer(
		`expires: "2099-01-01T00:00:00Z"`, `expires: "2020-01-01T00:00:00Z"`,
		`anyOf: [release, ci]`, `anyOf: [release, nobody]`,
		`baseURLs: [https://api.openai.com/v1]`, `baseURLs: []`,
	).Replace(string(data))
	dir, _ := filepath.Abs("testdata/policies")
	_, err = Parse("p.yaml", []byte(broken), Options{Dir: dir, Now: lintNow})
	for _, want := range []error{ErrExpired, ErrUnknownSigner, ErrUnboundCredential} {
		if !errors.Is(err, want) {
			t.Errorf("lint missed %v in:\n%v", want, err)
		}
	}
}

func TestIdentityMatches(t *testing.T) {
	p, err := Load("testdata/policies/good.yaml", lintNow)
	if err != nil {
		t.Fatal(err)
	}
	ci := p.Signers[1].Keyless
	const iss = "https://token.actions.githubusercontent.com"
	const ok = "https://github.com/acme/gateway/.github/workflows/release.yml@refs/heads/main"
	for _, c := range []struct {
		issuer, subject string
		want            bool
	}{
		{iss, ok, true},
		{iss, "https://github.com/acme-fork/gateway/.github/workflows/release.yml@refs/heads/main", false},
		{iss, ok + "x", false},
		{iss, "x" + ok, false},
		{iss, "https://github.com/acme/gateway/.github/workflows/release.yml@refs/heads/feature", false},
		{"https://accounts.google.com", ok, false},
		{"", "", false},
	} {
		if got := ci.Matches(c.issuer, c.subject); got != c.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", c.issuer, c.subject, got, c.want)
		}
	}
	if p.Signers[0].PublicKey() == nil || p.Signers[1].PublicKey() != nil {
		t.Error("PublicKey: want the key signer's key, and nil for keyless")
	}
}

// default takes the words a component's mode takes; deny, the earlier word
// for enforce, still loads.
func TestDefaultWords(t *testing.T) {
	good, err := os.ReadFile("testdata/policies/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata/policies")
	for word, ok := range map[string]bool{"enforce": true, "audit": true, "deny": true, "allow": false, "Enforce": false} {
		_, err := Parse("p.yaml", append(append([]byte{}, good...), []byte("\ndefault: "+word+"\n")...), Options{Dir: dir})
		if (err == nil) != ok || (!ok && !errors.Is(err, ErrInvalid)) {
			t.Errorf("default: %s: %v", word, err)
		}
	}
}
