package attest

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/trustgate/trustgate/internal/testutil"
)

// verifyImageBundle checks b with sigstore-go against k, bound to the image
// subject's manifest digest.
func verifyImageBundle(t *testing.T, b *bundle.Bundle, k *Key, sub Subject) error {
	t.Helper()
	return verifyDigest(t, b, k, sub.Digest["sha256"])
}

// testRegistry serves a real registry on 127.0.0.1 holding one image, and
// returns the image's tag reference.
func testRegistry(t *testing.T, referrers bool) string {
	t.Helper()
	ref, _ := testutil.Registry(t, referrers, nil, "gateway:1.0")
	return ref
}

func signedFor(t *testing.T, _ *Key, sub Subject, predType string) *Statement {
	t.Helper()
	st, err := NewStatement(predType, []byte(testPredicate), sub)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAttachAndList(t *testing.T) {
	for _, c := range []struct {
		name      string
		referrers bool
		source    string
	}{
		{"referrers API", true, SourceReferrer},
		{"cosign tag scheme", false, SourceTag},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			ref := testRegistry(t, c.referrers)
			img, sub, err := ImageSubject(ctx, ref, Registry{})
			if err != nil {
				t.Fatal(err)
			}
			if sub.Name != img.Context().Name() || "sha256:"+sub.Digest["sha256"] != img.DigestStr() {
				t.Fatalf("subject %+v for %s", sub, img)
			}
			k, _ := GenerateKey(ECDSAP256)
			sbomBundle, err := Sign(ctx, signedFor(t, k, sub, PredicateCycloneDX), k, Services{})
			if err != nil {
				t.Fatal(err)
			}
			provBundle, err := Sign(ctx, signedFor(t, k, sub, PredicateSLSAProvenance), k, Services{})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []*bundle.Bundle{sbomBundle, provBundle, sbomBundle} { // the repeat is a no-op
				a, err := Attach(ctx, img, b, Registry{})
				if err != nil {
					t.Fatal(err)
				}
				if a.Source != c.source {
					t.Fatalf("stored as %s, want %s", a.Source, c.source)
				}
			}
			as, err := Attachments(ctx, img, Registry{})
			if err != nil {
				t.Fatal(err)
			}
			if len(as) != 2 {
				t.Fatalf("listed %d attachments, want 2: %+v", len(as), as)
			}
			SortAttachments(as)
			if as[0].PredicateType != PredicateCycloneDX || as[1].PredicateType != PredicateSLSAProvenance {
				t.Fatalf("types: %s, %s", as[0].PredicateType, as[1].PredicateType)
			}
			for _, a := range as {
				if a.Source != c.source || a.Signer != "key "+k.Hint() || !strings.HasPrefix(a.Digest, "sha256:") {
					t.Fatalf("attachment %+v", a)
				}
				// What comes back is the whole bundle: it still verifies.
				b, err := ParseBundle(a.Bundle)
				if err != nil {
					t.Fatal(err)
				}
				if err := verifyImageBundle(t, b, k, sub); err != nil {
					t.Fatalf("%s bundle read back does not verify: %v", a.Source, err)
				}
			}
			if !c.referrers {
				// Stored where cosign looks: sha256-<hex>.att.
				if _, err := remote.Image(CosignTag(img)); err != nil {
					t.Fatalf("no cosign tag: %v", err)
				}
			}
		})
	}
}

func TestListReadsCosignAttestations(t *testing.T) {
	ctx := context.Background()
	ref := testRegistry(t, false)
	img, _, err := ImageSubject(ctx, ref, Registry{})
	if err != nil {
		t.Fatal(err)
	}
	// A layer as cosign's tag scheme writes it: an envelope and a
	// predicateType annotation, no verification material. The annotation
	// lies; the listing reports the signed payload's type.
	payload := base64.StdEncoding.EncodeToString([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"` + PredicateSLSAProvenance + `"}`))
	env := `{"payloadType":"application/vnd.in-toto+json","payload":"` + payload + `","signatures":[{"sig":"AAAA"}]}`
	att, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       static.NewLayer([]byte(env), dsseMediaType),
		Annotations: map[string]string{annCosignPredicateType: PredicateCycloneDX},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(CosignTag(img), att); err != nil {
		t.Fatal(err)
	}
	as, err := Attachments(ctx, img, Registry{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].PredicateType != PredicateSLSAProvenance || as[0].Format != FormatCosign || !strings.Contains(as[0].Signer, "a key") {
		t.Fatalf("listing: %+v", as)
	}
	// The envelope, as the bundle the verifier checks, keyed by a key it
	// leaves unnamed.
	b, err := ParseBundleJSON(as[0].Bundle)
	if err != nil || b.GetDsseEnvelope() == nil || b.GetDsseEnvelope().GetSignatures()[0].GetSig() == nil {
		t.Fatalf("bundle %s: %v", as[0].Bundle, err)
	}
}

func TestListRejectsMalformedReferrer(t *testing.T) {
	ctx := context.Background()
	ref := testRegistry(t, true)
	img, _, err := ImageSubject(ctx, ref, Registry{})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(img)
	if err != nil {
		t.Fatal(err)
	}
	// A referrer that claims to be a bundle but holds garbage must fail the
	// listing, not vanish from it.
	if _, err := pushReferrer(img, desc, []byte("not a bundle"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Attachments(ctx, img, Registry{}); !errors.Is(err, ErrAttachment) {
		t.Fatalf("got %v, want ErrAttachment", err)
	}
}

func TestImageSubjectRejects(t *testing.T) {
	ctx := context.Background()
	ref := testRegistry(t, true)
	host := strings.Split(ref, "/")[0]
	for _, c := range []struct{ name, ref string }{
		{"no tag or digest", host + "/gateway"},
		{"unknown tag", host + "/gateway:2.0"},
		{"unknown repository", host + "/nothing:1.0"},
		{"digest the registry lacks", host + "/gateway@sha256:" + strings.Repeat("0", 64)},
		{"not a reference", "UPPER CASE!"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := ImageSubject(ctx, c.ref, Registry{}); !errors.Is(err, ErrImage) {
				t.Fatalf("got %v, want ErrImage", err)
			}
		})
	}
}
