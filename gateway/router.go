package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/trustgate/trustgate/gateway/clientkeys"
	"github.com/trustgate/trustgate/internal/readfile"
	"github.com/trustgate/trustgate/stack"
)

// Limits of the routing path.
const (
	// MaxRequestBody bounds a client's request body (413 beyond).
	MaxRequestBody = 8 << 20
	// MaxResponseBody bounds an upstream answer that response hooks must
	// see whole.
	MaxResponseBody = 32 << 20
	// DefaultUpstreamTimeout bounds one upstream request when the provider
	// gives no timeout.
	DefaultUpstreamTimeout = 120 * time.Second
	// maxCredential bounds a credential file.
	maxCredential = 64 << 10
	// attempts per provider (one try and retries) before falling back.
	attemptsPerProvider = 2
)

// upstream is one provider as the gateway calls it. Its base URL comes
// from the verified manifest, whose providers the policy binds to their
// credentials; nothing in a request can change it.
type upstream struct {
	name    string
	api     string
	base    *url.URL
	key     string // read once at start-up; never logged
	keyErr  string // why there is no key (the reference, never a value)
	timeout time.Duration
}

// route is a model and the providers that serve it, in order.
type route struct {
	model     string
	upstreams []*upstream
	// served is the model as verified: a request waits on nothing, it is
	// refused once the model's files drifted.
	served *model
}

// router serves the OpenAI-compatible API.
type router struct {
	g         *Gateway
	log       *slog.Logger
	upstreams map[string]*upstream
	routes    map[string]*route
	models    []string
	// notNamed are the models the stack serves through a provider and the
	// policy does not name (a default of audit let them through
	// verification): never routed.
	notNamed  map[string]bool
	keys      *clientkeys.Reloader // nil: no client keys configured, every request refused
	proxy     *httputil.ReverseProxy
	transport *http.Transport
}

// newRouter reads every provider's credential once and builds the routes.
// A credential that cannot be read leaves its provider unavailable (and
// says so in the log), not the gateway stopped: a deployment may name a
// provider it does not use everywhere.
func newRouter(g *Gateway) (*router, error) {
	rt := &router{g: g, log: g.log, upstreams: map[string]*upstream{}, routes: map[string]*route{}, notNamed: map[string]bool{}}
	for _, p := range g.stack.Providers {
		base, err := url.Parse(strings.TrimSuffix(p.BaseURL, "/"))
		if err != nil {
			return nil, fmt.Errorf("provider %q: %w", p.Name, err)
		}
		u := &upstream{name: p.Name, api: p.API, base: base, timeout: DefaultUpstreamTimeout}
		if u.api == "" {
			u.api = stack.APIOpenAI
		}
		if p.Timeout != "" {
			u.timeout = g.stack.GatewayConfig.Duration(p.Timeout, DefaultUpstreamTimeout)
		}
		u.key, u.keyErr = readCredential(g.env, p.Credential)
		if u.keyErr != "" {
			g.log.Warn("provider unavailable: no credential", "provider", p.Name, "credential", p.Credential.String(), "reason", u.keyErr)
		}
		rt.upstreams[p.Name] = u
	}
	for _, m := range g.models {
		if m.spec.Provider == "" {
			continue
		}
		if m.pol == nil {
			g.log.Warn("model not routed: the policy does not name it", "model", m.spec.Name, "provider", m.spec.Provider)
			rt.notNamed[m.spec.Name] = true
			continue
		}
		r := &route{model: m.spec.Name, served: m}
		for _, name := range append([]string{m.spec.Provider}, m.spec.Fallbacks...) {
			r.upstreams = append(r.upstreams, rt.upstreams[name])
		}
		rt.routes[m.spec.Name] = r
		rt.models = append(rt.models, m.spec.Name)
	}
	if path := g.stack.GatewayConfig.ClientKeys; path != "" {
		keys, err := clientkeys.NewReloader(path, g.log)
		if err != nil {
			return nil, fmt.Errorf("client keys: %w", err)
		}
		rt.keys = keys
	} else {
		g.log.Warn("no gatewayConfig.clientKeys: every API request is refused")
	}
	rt.transport = &http.Transport{
		Proxy:                 nil, // never the environment's proxy: it would see where keys go
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the provider's timeout
	}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite:        rt.rewrite,
		Transport:      failover{rt},
		ModifyResponse: rt.modifyResponse,
		ErrorHandler:   rt.proxyError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return rt, nil
}

// readCredential reads a credential reference where the gateway runs:
// the variable's value, or the file's content without surrounding space.
func readCredential(env map[string]string, ref stack.CredentialRef) (key, why string) {
	if ref.Env != "" {
		v, ok := env[ref.Env]
		if !ok || v == "" {
			return "", "the environment variable is not set"
		}
		return v, ""
	}
	data, err := readfile.Read(ref.File, maxCredential)
	if err != nil {
		return "", "the file cannot be read"
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", "the file is empty"
	}
	return v, ""
}

// register adds the API's routes to mux.
func (rt *router) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { rt.serve(w, r, kindChat) })
	mux.HandleFunc("POST /v1/embeddings", func(w http.ResponseWriter, r *http.Request) { rt.serve(w, r, kindEmbeddings) })
	mux.HandleFunc("GET /v1/models", rt.listModels)
}

type kind int

const (
	kindChat kind = iota
	kindEmbeddings
)

func (k kind) String() string {
	if k == kindEmbeddings {
		return "embeddings"
	}
	return "chat"
}

// statusWriter remembers the status code written, for the metrics; Unwrap
// lets http.ResponseController (the proxy's flushes) reach the real writer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// call is one client request on its way through the proxy.
type call struct {
	id           string
	kind         kind
	route        *route
	body         []byte
	stream       bool
	includeUsage bool
	client       string // the client key's id
	// served is the upstream that answered, set by the transport.
	served *upstream
	start  time.Time
	// ctx is the client's request's: response hooks run under it, not
	// under the upstream attempt's, which ends with the upstream's body.
	ctx context.Context
	// verdicts are the plugins' answers, "plugin:hook:verdict", for the
	// audit trail.
	verdicts []string
}

type callKey struct{}

func (rt *router) serve(rw http.ResponseWriter, r *http.Request, k kind) {
	c := &call{id: requestID(), kind: k, start: time.Now(), ctx: r.Context()}
	w := &statusWriter{ResponseWriter: rw, code: http.StatusOK}
	defer func() {
		model := ""
		if c.route != nil {
			model = c.route.model // a configured name: never what the client sent
		}
		latency := time.Since(c.start)
		rt.g.metrics.answered(k.String(), model, servedName(c), w.code, latency.Seconds())
		rt.g.emit("request", map[string]any{"request": c.id, "client": c.client, "route": k.String(), "model": model,
			"provider": servedName(c), "status": w.code, "stream": c.stream, "latencyMs": float64(latency.Microseconds()) / 1000,
			"verdicts": c.verdicts})
	}()
	w.Header().Set("X-Request-Id", c.id)
	if !rt.g.audit.usable() {
		w.Header().Set("x-should-retry", "false")
		writeError(w, http.StatusServiceUnavailable, "The gateway's audit log cannot be written, and its policy refuses requests until it can.", "api_error", "", "audit_unavailable")
		return
	}
	id, ok := rt.authenticate(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "Incorrect API key provided. Use a gateway key, never a provider key.", "invalid_request_error", "", "invalid_api_key")
		return
	}
	c.client = id
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than %d bytes.", MaxRequestBody), "invalid_request_error", "", "request_too_large")
			return
		}
		writeError(w, http.StatusBadRequest, "The request body could not be read.", "invalid_request_error", "", "")
		return
	}
	var head struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		writeError(w, http.StatusBadRequest, "The request body is not a JSON object of the expected shape.", "invalid_request_error", "", "")
		return
	}
	c.route = rt.routes[head.Model]
	if c.route == nil && rt.notNamed[head.Model] {
		rt.log.Warn("refused: the policy does not name the model", "request", c.id, "model", head.Model)
		w.Header().Set("x-should-retry", "false")
		writeError(w, http.StatusForbidden, fmt.Sprintf("The model `%s` is not served: the gateway's policy does not name it.", clipText(head.Model)), "invalid_request_error", "model", "model_not_allowed")
		return
	}
	if c.route == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", clipText(head.Model)), "invalid_request_error", "model", "model_not_found")
		return
	}
	if ok, why := c.route.served.routable(); !ok {
		rt.log.Warn("refused: the model is unavailable", "request", c.id, "model", c.route.model, "reason", why)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("The model `%s` is unavailable: its files no longer match what the gateway verified.", c.route.model), "api_error", "model", "model_unavailable")
		return
	}
	c.stream = head.Stream && k == kindChat
	c.includeUsage = c.stream && head.StreamOptions != nil && head.StreamOptions.IncludeUsage
	body, refusal := rt.requestHooks(r.Context(), c, r, body)
	if refusal != nil {
		refusal.write(w)
		return
	}
	c.body = body
	rt.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
}

// authenticate checks the client's gateway key (Authorization: Bearer, or
// x-api-key).
func (rt *router) authenticate(r *http.Request) (string, bool) {
	if rt.keys == nil {
		return "", false
	}
	presented, ok := clientkeys.FromHeader(r.Header)
	if !ok {
		return "", false
	}
	return rt.keys.Check(presented)
}

func (rt *router) listModels(w http.ResponseWriter, r *http.Request) {
	if _, ok := rt.authenticate(r); !ok {
		writeError(w, http.StatusUnauthorized, "Incorrect API key provided. Use a gateway key, never a provider key.", "invalid_request_error", "", "invalid_api_key")
		return
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range rt.models {
		out.Data = append(out.Data, model{ID: m, Object: "model", OwnedBy: rt.routes[m].upstreams[0].name})
	}
	writeJSON(w, http.StatusOK, out)
}

// rewrite builds the outgoing request's fixed parts; the destination and
// the credential are set per attempt by the failover transport, from the
// verified configuration only. Nothing of the client's headers goes
// upstream but the content type.
func (rt *router) rewrite(pr *httputil.ProxyRequest) {
	c := pr.In.Context().Value(callKey{}).(*call)
	out := pr.Out
	out.Header = http.Header{"Content-Type": {"application/json"}}
	if c.stream {
		out.Header.Set("Accept", "text/event-stream")
	} else {
		out.Header.Set("Accept", "application/json")
	}
	up := c.route.upstreams[0]
	out.URL = &url.URL{Scheme: up.base.Scheme, Host: up.base.Host, Path: up.base.Path}
	out.Host = ""
	out.Body = io.NopCloser(bytes.NewReader(c.body))
	out.ContentLength = int64(len(c.body))
}

// failover is the proxy's transport: it sends the call to each provider of
// its route in turn, retrying a provider once with backoff and jitter, and
// answers with the first response that is not a retryable failure. All of
// it happens before the first byte reaches the client.
type failover struct{ rt *router }

func (f failover) RoundTrip(req *http.Request) (*http.Response, error) {
	c := req.Context().Value(callKey{}).(*call)
	var last error
	var lastResp *http.Response
	for _, up := range c.route.upstreams {
		if up.key == "" {
			last = fmt.Errorf("provider %q has no credential", up.name)
			continue
		}
		for attempt := range attemptsPerProvider {
			if attempt > 0 {
				if err := sleepCtx(req.Context(), backoffDelay(attempt)); err != nil {
					return nil, err
				}
			}
			resp, err := f.rt.send(req, c, up)
			if err == nil && !retryable(resp.StatusCode) {
				c.served = up
				if lastResp != nil {
					lastResp.Body.Close()
				}
				return resp, nil
			}
			if lastResp != nil {
				lastResp.Body.Close()
				lastResp = nil
			}
			if err != nil {
				last = err
				if req.Context().Err() != nil {
					return nil, err
				}
				f.rt.log.Warn("upstream failed", "request", c.id, "provider", up.name, "attempt", attempt+1, "error", err.Error())
				f.rt.g.metrics.upstreamError(up.name)
				continue
			}
			f.rt.log.Warn("upstream failed", "request", c.id, "provider", up.name, "attempt", attempt+1, "status", resp.StatusCode)
			f.rt.g.metrics.upstreamError(up.name)
			lastResp, last = resp, nil
		}
	}
	if lastResp != nil {
		c.served = nil
		return lastResp, nil
	}
	if last == nil {
		last = errors.New("no provider answered")
	}
	return nil, last
}

// send makes one attempt at up: the path for the call's kind under up's
// base URL, up's credential, the body in up's protocol. The credential is
// attached only when the request's destination is up's own base URL.
func (rt *router) send(in *http.Request, c *call, up *upstream) (*http.Response, error) {
	body, path := c.body, "/chat/completions"
	if c.kind == kindEmbeddings {
		path = "/embeddings"
	}
	if up.api == stack.APIAnthropic {
		if c.kind != kindChat {
			return nil, fmt.Errorf("provider %q speaks Anthropic's API, which has no embeddings", up.name)
		}
		var err error
		if body, _, err = anthropicRequest(c.body); err != nil {
			return nil, fmt.Errorf("translating for provider %q: %w", up.name, err)
		}
		path = "/v1/messages"
	}
	ctx, cancel := context.WithTimeout(in.Context(), up.timeout)
	out := in.Clone(ctx)
	out.URL = &url.URL{Scheme: up.base.Scheme, Host: up.base.Host, Path: up.base.Path + path}
	out.Host = up.base.Host
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = nil
	if !boundTo(out.URL, up.base) {
		cancel()
		return nil, fmt.Errorf("refusing to send provider %q's credential to %s", up.name, out.URL.Redacted())
	}
	switch up.api {
	case stack.APIAnthropic:
		out.Header.Set("x-api-key", up.key)
		out.Header.Set("anthropic-version", "2023-06-01")
	default:
		out.Header.Set("Authorization", "Bearer "+up.key)
	}
	resp, err := rt.transport.RoundTrip(out)
	if err != nil {
		cancel()
		return nil, scrub(err, up)
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// boundTo reports whether u is under base: same scheme, same host and
// port, and a path below base's. It is the last check before a credential
// leaves, whatever built the request.
func boundTo(u, base *url.URL) bool {
	if u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil {
		return false
	}
	return u.Path == base.Path || strings.HasPrefix(u.Path, strings.TrimSuffix(base.Path, "/")+"/")
}

// scrub keeps a transport error from carrying anything of the request but
// the provider's name (url.Error holds the URL; it holds no header).
func scrub(err error, up *upstream) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("provider %q: %s: %w", up.name, ue.Op, ue.Err)
	}
	return fmt.Errorf("provider %q: %w", up.name, err)
}

// cancelBody releases the attempt's timeout when the answer is read.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// backoffDelay is 100 ms times 2^(attempt-1), plus up to as much again of
// jitter.
func backoffDelay(attempt int) time.Duration {
	base := 100 * time.Millisecond << (attempt - 1)
	n, err := rand.Int(rand.Reader, big.NewInt(int64(base)))
	if err != nil {
		return base
	}
	return base + time.Duration(n.Int64())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// modifyResponse translates an Anthropic answer and runs the response
// hooks; it drops upstream headers that would set state on the client.
func (rt *router) modifyResponse(resp *http.Response) error {
	c := resp.Request.Context().Value(callKey{}).(*call)
	resp.Header.Del("Set-Cookie")
	if c.served != nil && c.served.api == stack.APIAnthropic {
		if resp.StatusCode >= 400 {
			body, err := readBounded(resp.Body, MaxResponseBody)
			if err != nil {
				return err
			}
			setBody(resp, anthropicError(body))
		} else if c.stream {
			resp.Body = openAIStream(resp.Body, c.route.model, c.includeUsage)
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
		} else {
			body, err := readBounded(resp.Body, MaxResponseBody)
			if err != nil {
				return err
			}
			out, err := openAIResponse(body)
			if err != nil {
				return err
			}
			setBody(resp, out)
		}
	}
	rt.log.Info("request", "request", c.id, "client", c.client, "model", c.route.model, "provider", servedName(c), "status", resp.StatusCode, "stream", c.stream)
	if resp.StatusCode >= 300 {
		return nil
	}
	return rt.responseHooks(c, resp)
}

func servedName(c *call) string {
	if c.served == nil {
		return ""
	}
	return c.served.name
}

func readBounded(r io.ReadCloser, limit int64) ([]byte, error) {
	defer r.Close()
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("the upstream's answer is larger than %d bytes", limit)
	}
	return body, nil
}

func setBody(resp *http.Response, body []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
	resp.Header.Set("Content-Type", "application/json")
}

// proxyError answers a call that no provider answered, in OpenAI's shape.
// The message names the provider, never a URL with its query or a key.
func (rt *router) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	c, _ := r.Context().Value(callKey{}).(*call)
	var refusal *hookRefusal
	if errors.As(err, &refusal) {
		refusal.write(w)
		return
	}
	id := ""
	if c != nil {
		id = c.id
	}
	rt.log.Warn("no provider answered", "request", id, "error", err.Error())
	if errors.Is(err, context.DeadlineExceeded) {
		writeError(w, http.StatusGatewayTimeout, "The upstream provider did not answer in time.", "api_error", "", "upstream_timeout")
		return
	}
	writeError(w, http.StatusBadGateway, "No upstream provider answered: "+clipText(err.Error()), "api_error", "", "upstream_error")
}

// writeError writes an error in OpenAI's shape.
func writeError(w http.ResponseWriter, status int, message, typ, param, code string) {
	e := map[string]any{"message": message, "type": typ, "param": nil, "code": nil}
	if param != "" {
		e["param"] = param
	}
	if code != "" {
		e["code"] = code
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func requestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// clipText is text from a client or an upstream, safe to put in an answer.
func clipText(s string) string {
	if len(s) > 256 {
		s = s[:256] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
