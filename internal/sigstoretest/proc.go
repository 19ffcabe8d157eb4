package sigstoretest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trustgate/trustgate/internal/testproc"
)

// readyTimeout bounds how long Start waits for one service to answer.
const readyTimeout = 60 * time.Second

// proc is one service process (see testproc: its own process group, which
// stop kills as a whole; its output in a log file).
type proc struct {
	*testproc.Proc
	// tailShown is set when an error returned has the log's tail in it.
	tailShown bool
}

// startProc starts bin with args, its working directory and HOME set to dir
// and its output appended to logPath. attr, when non-nil, is used as the
// process attributes; Setpgid and Pdeathsig are always set.
func startProc(name, bin string, args []string, dir, logPath string, attr *syscall.SysProcAttr) (*proc, error) {
	p, err := testproc.Start(name, bin, args, dir, logPath, attr)
	if err != nil {
		return nil, err
	}
	return &proc{Proc: p}, nil
}

// waitReady polls url until check accepts the response (nil check: a 200),
// the process exits, or readyTimeout passes.
func (p *proc) waitReady(ctx context.Context, url string, check func(*http.Response, []byte) error) error {
	err := p.WaitReady(ctx, readyTimeout, func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := harnessClient.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case err != nil:
			return err
		case check != nil:
			return check(resp, body)
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	})
	if err != nil {
		p.tailShown = true // WaitReady's errors quote the log
	}
	return err
}

// logPathFor names service's log file in dir (attempt counts retries).
func logPathFor(dir, service string, attempt int) string {
	if attempt <= 1 {
		return filepath.Join(dir, service+".log")
	}
	return filepath.Join(dir, fmt.Sprintf("%s.%d.log", service, attempt))
}
