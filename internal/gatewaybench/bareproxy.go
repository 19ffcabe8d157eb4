package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// bareProxyFlag makes this program the floor: a bare reverse proxy.
const bareProxyFlag = "-bare-proxy"

// bareProxyArgs reports whether args (os.Args[1:]) ask for the bare
// proxy, and to which upstream. The smoke test's TestMain uses it, since
// the test binary is what re-executes itself there.
func bareProxyArgs(args []string) (string, bool) {
	if len(args) == 2 && (args[0] == bareProxyFlag || args[0] == "-"+bareProxyFlag) {
		return args[1], true
	}
	return "", false
}

// serveBareProxy is the floor for a Go gateway: httputil.ReverseProxy with
// Rewrite to the upstream and nothing else. Its transport keeps as many
// idle connections per host as the gateway's (64) rather than the default
// 2, so that neither of the two opens a connection per request under
// load. It prints "listening ADDR" once bound and serves until SIGTERM or
// SIGINT.
func serveBareProxy(target string, stdout, stderr io.Writer) int {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(stderr, "bare proxy: upstream %q: want http://HOST:PORT\n", target)
		return 2
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 64
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: tr}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "bare proxy:", err)
		return 1
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err := <-done:
		fmt.Fprintln(stderr, "bare proxy:", err)
		return 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return 0
}
