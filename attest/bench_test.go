package attest

import (
	"context"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/sigstoretest"
)

// benchStatement is a statement the size of a small SBOM predicate (about
// 100 KiB) about one artifact.
func benchStatement(b *testing.B) *Statement {
	b.Helper()
	pred := `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[` +
		strings.TrimSuffix(strings.Repeat(`{"type":"library","name":"pkg","version":"1.0.0","purl":"pkg:pypi/pkg@1.0.0"},`, 1300), ",") + `]}`
	st, err := NewStatement(PredicateCycloneDX, []byte(pred), Subject{Name: "artifact", Digest: map[string]string{"sha256": sha("x")}})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkSignWithKey: one key signature (DSSE over the statement) into a
// bundle, no log and no timestamp.
func BenchmarkSignWithKey(b *testing.B) {
	st := benchStatement(b)
	for _, kt := range KeyTypes {
		b.Run(string(kt), func(b *testing.B) {
			k, err := GenerateKey(kt)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Sign(context.Background(), st, k, Services{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignWithKeyAndTimestamp: the same, plus an RFC 3161 timestamp
// from the real timestamp-authority process on 127.0.0.1 (one HTTP round
// trip per signature).
func BenchmarkSignWithKeyAndTimestamp(b *testing.B) {
	env := sigstoretest.Start(b)
	st := benchStatement(b)
	k, err := GenerateKey(ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	svc := Services{TSA: []string{env.TSAURL}}
	b.ReportAllocs()
	for b.Loop() {
		bundle, err := Sign(context.Background(), st, k, svc)
		if err != nil {
			b.Fatal(err)
		}
		if len(bundle.GetVerificationMaterial().GetTimestampVerificationData().GetRfc3161Timestamps()) != 1 {
			b.Fatal("no timestamp in the bundle")
		}
	}
}
