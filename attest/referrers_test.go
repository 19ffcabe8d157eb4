package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/trustgate/trustgate/internal/testutil"
)

// registryWith serves a real registry (referrers API on) behind wrap, which
// may change how the referrers endpoint answers, and pushes one image.
func registryWith(t *testing.T, wrap func(inner http.Handler) http.Handler) name.Digest {
	t.Helper()
	ref, _ := testutil.Registry(t, true, wrap, "gateway:1.0")
	d, _, err := ImageSubject(context.Background(), ref, Registry{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func isReferrersRequest(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/referrers/")
}

func keyBundleFor(t *testing.T, img name.Digest, predType string) *bundle.Bundle {
	t.Helper()
	k, _ := GenerateKey(ECDSAP256)
	st, err := NewStatement(predType, []byte(testPredicate), Subject{Name: img.Context().Name(), Digest: map[string]string{"sha256": strings.TrimPrefix(img.DigestStr(), "sha256:")}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Sign(context.Background(), st, k, Services{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A registry that answers the referrers endpoint with a login page (200,
// HTML), or with a redirect, has no referrers API: the bundle goes to the
// cosign tag, and the listing finds it there.
func TestReferrersAPIMustBeReal(t *testing.T) {
	for name, answer := range map[string]http.HandlerFunc{
		"login page": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<html>please sign in</html>")
		},
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/login", http.StatusFound)
		},
		"method not allowed": func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusMethodNotAllowed)
		},
	} {
		t.Run(name, func(t *testing.T) {
			img := registryWith(t, func(inner http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isReferrersRequest(r) {
						answer(w, r)
						return
					}
					inner.ServeHTTP(w, r)
				})
			})
			a, err := Attach(context.Background(), img, keyBundleFor(t, img, PredicateCycloneDX), Registry{})
			if err != nil {
				t.Fatal(err)
			}
			if a.Source != SourceTag {
				t.Fatalf("stored as %s, want %s", a.Source, SourceTag)
			}
			as, err := Attachments(context.Background(), img, Registry{})
			if err != nil || len(as) != 1 || as[0].Source != SourceTag {
				t.Fatalf("listing: %+v, %v", as, err)
			}
		})
	}
}

// A registry that takes a referrer but never lists it: Attach says so
// instead of reporting success.
func TestAttachFailsWhenReferrerIsNotIndexed(t *testing.T) {
	img := registryWith(t, func(inner http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isReferrersRequest(r) {
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				fmt.Fprint(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
				return
			}
			inner.ServeHTTP(w, r)
		})
	})
	_, err := Attach(context.Background(), img, keyBundleFor(t, img, PredicateCycloneDX), Registry{})
	if !errors.Is(err, ErrRegistry) || !strings.Contains(err.Error(), "does not list it") {
		t.Fatalf("got %v, want ErrRegistry saying the referrer is not listed", err)
	}
}

// A registry that pages its referrers list, one per page: the listing
// follows the Link headers and finds every attestation.
func TestReferrersPagination(t *testing.T) {
	img := registryWith(t, func(inner http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isReferrersRequest(r) {
				inner.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			q := *r
			u := *r.URL
			u.RawQuery = ""
			q.URL = &u
			inner.ServeHTTP(rec, &q)
			var idx v1.IndexManifest
			if err := json.Unmarshal(rec.Body.Bytes(), &idx); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			all := idx.Manifests
			idx.Manifests = nil
			if page < len(all) {
				idx.Manifests = all[page : page+1]
			}
			if page+1 < len(all) {
				w.Header().Set("Link", fmt.Sprintf(`<%s?page=%d>; rel="next"`, r.URL.Path, page+1))
			}
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			_ = json.NewEncoder(w).Encode(idx)
		})
	})
	ctx := context.Background()
	for _, pt := range []string{PredicateCycloneDX, PredicateSLSAProvenance, PredicateVSA} {
		if _, err := Attach(ctx, img, keyBundleFor(t, img, pt), Registry{}); err != nil {
			t.Fatal(err)
		}
	}
	as, err := Attachments(ctx, img, Registry{})
	if err != nil || len(as) != 3 {
		t.Fatalf("listed %d (%v), want 3 across 3 pages", len(as), err)
	}
}

// What sits at the tags the listing reads must be what the schemes say: an
// index at the OCI referrers tag, an image manifest at the cosign tag.
// Anything else fails the listing rather than being skipped.
func TestListRejectsWrongKindAtTags(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		tag  func(img name.Digest) name.Tag
	}{
		{"image at the OCI referrers tag", func(img name.Digest) name.Tag {
			return img.Context().Tag(strings.Replace(img.DigestStr(), ":", "-", 1))
		}},
		{"index at the cosign tag", CosignTag},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref, _ := testutil.Registry(t, false, nil, "gateway:1.0")
			img, _, err := ImageSubject(ctx, ref, Registry{})
			if err != nil {
				t.Fatal(err)
			}
			var pushErr error
			if strings.Contains(c.name, "index") {
				idx, _ := random.Index(64, 1, 1)
				pushErr = remote.WriteIndex(c.tag(img), idx)
			} else {
				im, _ := random.Image(64, 1)
				pushErr = remote.Write(c.tag(img), im)
			}
			if pushErr != nil {
				t.Fatal(pushErr)
			}
			if _, err := Attachments(ctx, img, Registry{}); !errors.Is(err, ErrAttachment) {
				t.Fatalf("got %v, want ErrAttachment", err)
			}
		})
	}
}
