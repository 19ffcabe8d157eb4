package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrTokenSource means the identity token could not be obtained.
var ErrTokenSource = errors.New("identity token")

const maxTokenSize = 64 << 10

// GitHubActionsToken asks the GitHub Actions runtime for an OIDC token with
// the given audience ("sigstore" for Fulcio), using the request URL and
// bearer token the runner puts in ACTIONS_ID_TOKEN_REQUEST_URL and
// ACTIONS_ID_TOKEN_REQUEST_TOKEN (the job needs `permissions: id-token:
// write`). ok is false when those variables are not set, that is, when not
// running in GitHub Actions with that permission.
func GitHubActionsToken(ctx context.Context, audience string, client *http.Client) (token string, ok bool, err error) {
	reqURL, bearer := os.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), os.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	if reqURL == "" || bearer == "" {
		return "", false, nil
	}
	u, err := url.Parse(reqURL)
	if err != nil || !(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return "", true, fmt.Errorf("%w: ACTIONS_ID_TOKEN_REQUEST_URL is not an https URL", ErrTokenSource)
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", true, fmt.Errorf("%w: %w", ErrTokenSource, err)
	}
	req.Header.Set("Authorization", "bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", true, Redact(fmt.Errorf("%w: GitHub Actions token request: %w", ErrTokenSource, err), bearer)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenSize+1))
	if err != nil {
		return "", true, fmt.Errorf("%w: GitHub Actions token response: %w", ErrTokenSource, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", true, fmt.Errorf("%w: GitHub Actions token request answered %s", ErrTokenSource, resp.Status)
	}
	if len(body) > maxTokenSize {
		return "", true, fmt.Errorf("%w: GitHub Actions token response larger than %d bytes", ErrTokenSource, maxTokenSize)
	}
	var r struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &r); err != nil || strings.TrimSpace(r.Value) == "" {
		return "", true, fmt.Errorf("%w: GitHub Actions token response holds no token", ErrTokenSource)
	}
	return strings.TrimSpace(r.Value), true, nil
}
