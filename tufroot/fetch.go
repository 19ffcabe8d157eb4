package tufroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// fetchTimeout bounds one download.
const fetchTimeout = 30 * time.Second

// errFetch: a download failed below HTTP (connection, timeout).
var errFetch = errors.New("download failed")

var rootFileName = regexp.MustCompile(`^([1-9][0-9]{0,18})\.root\.json$`)

// fetcher is go-tuf's Fetcher over net/http, bounded in time and size, that
// keeps every root version it fetched: the root chain Load walks again.
// go-tuf's own DefaultFetcher has no timeout.
type fetcher struct {
	ctx    context.Context
	client *http.Client
	roots  map[int64][]byte
}

func newFetcher(ctx context.Context) *fetcher {
	return &fetcher{ctx: ctx, client: &http.Client{Timeout: fetchTimeout}, roots: map[int64][]byte{}}
}

// DownloadFile implements go-tuf's fetcher.Fetcher.
func (f *fetcher) DownloadFile(rawURL string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: rawURL}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errFetch, rawURL, err)
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is longer than the %d bytes expected", rawURL, maxLength)}
	}
	if u, err := url.Parse(rawURL); err == nil {
		if m := rootFileName.FindStringSubmatch(path.Base(u.Path)); m != nil {
			if v, err := strconv.ParseInt(m[1], 10, 64); err == nil {
				f.roots[v] = data
			}
		}
	}
	return data, nil
}
