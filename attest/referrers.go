package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxReferrerPages bounds how many pages of a referrers list are followed.
const maxReferrerPages = 16

// errNoReferrersAPI: the registry does not serve the OCI 1.1 referrers API.
var errNoReferrersAPI = errors.New("registry has no referrers API")

// referrers lists img's referrers through the OCI 1.1 referrers API,
// following Link pagination, or returns errNoReferrersAPI. Attach and the
// listing both decide through this one function, so an attestation is
// never stored where the listing will not look.
//
// The API counts as present only when the registry answers 200, without a
// redirect, with an OCI image index (by Content-Type and by body). A
// redirect to a login page, a 404, 400, 405 or 406 mean it is absent.
func referrers(ctx context.Context, img name.Digest, reg Registry) ([]v1.Descriptor, error) {
	client, err := registryClient(ctx, reg, img.Context())
	if err != nil {
		return nil, err
	}
	repo := img.Context()
	next := fmt.Sprintf("%s://%s/v2/%s/referrers/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), img.DigestStr())
	var out []v1.Descriptor
	for page := 0; next != ""; page++ {
		if page == maxReferrerPages {
			return nil, fmt.Errorf("%w: referrers of %s run past %d pages", ErrAttachment, img, maxReferrerPages)
		}
		descs, link, err := referrersPage(ctx, client, next, page == 0)
		if err != nil {
			return nil, err
		}
		out = append(out, descs...)
		if len(out) > maxReferrers {
			return nil, fmt.Errorf("%w: %s has more than %d referrers", ErrAttachment, img, maxReferrers)
		}
		next = link
	}
	return out, nil
}

// referrersPage fetches one page and returns its descriptors and the next
// page's URL ("" for the last).
func referrersPage(ctx context.Context, client *http.Client, u string, first bool) ([]v1.Descriptor, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrRegistry, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("%w: reading referrers: %w", ErrRegistry, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusOK && mt == string(types.OCIImageIndex):
	case first && (resp.StatusCode == http.StatusOK || isNoAPIStatus(resp.StatusCode)):
		// A 200 that is not an index (a login page), or a redirect
		// (not followed), is no referrers API.
		return nil, "", errNoReferrersAPI
	default:
		return nil, "", fmt.Errorf("%w: referrers request answered %s (%s)", ErrRegistry, resp.Status, clean(mt))
	}
	if len(body) > maxManifestSize {
		return nil, "", fmt.Errorf("%w: referrers page larger than %d bytes", ErrAttachment, maxManifestSize)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(body, &idx); err != nil || idx.SchemaVersion != 2 {
		return nil, "", fmt.Errorf("%w: referrers answer is not an OCI image index", ErrAttachment)
	}
	next, err := nextLink(resp)
	if err != nil {
		return nil, "", err
	}
	return idx.Manifests, next, nil
}

func isNoAPIStatus(code int) bool {
	switch code {
	case http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotAcceptable,
		http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// nextLink reads an RFC 5988 Link header's rel="next" target, resolved
// against the request URL; it must stay on the same host.
func nextLink(resp *http.Response) (string, error) {
	for _, l := range resp.Header.Values("Link") {
		target, params, ok := strings.Cut(l, ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.Trim(strings.TrimSpace(target), "<>")
		u, err := resp.Request.URL.Parse(target)
		if err != nil || u.Host != resp.Request.URL.Host {
			return "", fmt.Errorf("%w: referrers Link header points elsewhere", ErrRegistry)
		}
		return u.String(), nil
	}
	return "", nil
}

// client is an HTTP client for the registry API of repo, authenticated as
// the keychain says, that never follows redirects.
func registryClient(ctx context.Context, r Registry, repo name.Repository) (*http.Client, error) {
	kc := r.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	auth, err := kc.Resolve(repo)
	if err != nil {
		return nil, fmt.Errorf("%w: credentials for %s: %w", ErrRegistry, repo, err)
	}
	base := r.Transport
	if base == nil {
		// The transport the other registry calls use (go-containerregistry's:
		// 50 idle connections per host, not net/http's 2), so that
		// concurrent verifications against one registry reuse connections.
		base = remote.DefaultTransport
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRegistry, repo.Registry, err)
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// clean makes registry-supplied text safe to put in an error: printable
// ASCII only, at most 80 characters.
func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 80 {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
