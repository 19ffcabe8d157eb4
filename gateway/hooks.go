package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/trustgate/trustgate/plugin"
	"github.com/trustgate/trustgate/plugin/pluginpb"
)

// DefaultHookTimeout is each hook call's deadline.
const DefaultHookTimeout = 2 * time.Second

// Hooks a plugin's grants name (policy capabilities.hooks): pre_request
// calls OnRequest; pre_response and post_response call OnResponse.
const (
	hookRequest = "pre_request"
)

// hookRefusal is a request a plugin blocked, or one refused because a
// plugin failed: the gateway answers it itself, never retried.
type hookRefusal struct {
	status  int
	message string
	code    string
}

func (r *hookRefusal) Error() string { return r.message }

func (r *hookRefusal) write(w http.ResponseWriter) {
	w.Header().Set("x-should-retry", "false")
	writeError(w, r.status, r.message, "invalid_request_error", "", r.code)
}

// requestHooks passes the request through every plugin granted
// pre_request, in manifest order. A plugin may allow it, block it, or
// rewrite its body; a rewrite may not change the model (that would route
// the request elsewhere). A plugin that errs, misses its deadline or is
// not running refuses the request, unless its policy says failOpen.
func (rt *router) requestHooks(ctx context.Context, c *call, r *http.Request, body []byte) ([]byte, *hookRefusal) {
	for _, p := range rt.g.children {
		if !p.grantsHook(hookRequest) {
			continue
		}
		req := &pluginpb.Request{Id: c.id, Method: r.Method, Path: r.URL.Path, Model: c.route.model, Body: body, Headers: safeHeaders(r.Header)}
		v, refusal := rt.ask(ctx, c, p, "request", func(ctx context.Context, h plugin.Hooks) (*pluginpb.Verdict, error) { return h.OnRequest(ctx, req) })
		if refusal != nil {
			return nil, refusal
		}
		if v.GetAction() == pluginpb.Verdict_REWRITE {
			var head struct {
				Model string `json:"model"`
			}
			if json.Unmarshal(v.GetBody(), &head) != nil || head.Model != c.route.model {
				rt.log.Error("plugin rewrote the model or broke the body; request refused", "request", c.id, "plugin", p.comp.Name)
				return nil, &hookRefusal{http.StatusForbidden, fmt.Sprintf("The request was refused: guardrail %q may not change the model or break the request.", p.comp.Name), "guardrail_rewrite_refused"}
			}
			body = v.GetBody()
		}
	}
	return body, nil
}

// responseHooks runs OnResponse of every plugin granted a response hook:
// on the whole body of an answer, or on each event of a stream.
func (rt *router) responseHooks(c *call, resp *http.Response) error {
	var hooks []*child
	for _, p := range rt.g.children {
		if p.grantsHook("pre_response") || p.grantsHook("post_response") {
			hooks = append(hooks, p)
		}
	}
	if len(hooks) == 0 || c.kind != kindChat {
		return nil
	}
	ctx := c.ctx
	if c.stream {
		resp.Body = &sseFilter{src: resp.Body, r: bufio.NewReaderSize(resp.Body, 64<<10), apply: func(data []byte) ([]byte, error) {
			return rt.respond(ctx, c, hooks, resp.StatusCode, data, true)
		}}
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		return nil
	}
	body, err := readBounded(resp.Body, MaxResponseBody)
	if err != nil {
		return err
	}
	out, err := rt.respond(ctx, c, hooks, resp.StatusCode, body, false)
	if err != nil {
		return err
	}
	setBody(resp, out)
	return nil
}

// respond passes one answer (or one streamed event's data) through hooks.
func (rt *router) respond(ctx context.Context, c *call, hooks []*child, status int, data []byte, event bool) ([]byte, error) {
	for _, p := range hooks {
		in := &pluginpb.Response{Id: c.id, Model: c.route.model, Status: int32(status), Body: data, StreamEvent: event}
		v, refusal := rt.ask(ctx, c, p, "response", func(ctx context.Context, h plugin.Hooks) (*pluginpb.Verdict, error) { return h.OnResponse(ctx, in) })
		if refusal != nil {
			return nil, refusal
		}
		if v.GetAction() == pluginpb.Verdict_REWRITE {
			data = v.GetBody()
		}
	}
	return data, nil
}

// ask calls one hook of p and turns what it says into a refusal where it
// must: a block, or a failure (unless the policy marks p fail-open, when
// the answer is an allow). what is "request" or "response".
func (rt *router) ask(ctx context.Context, c *call, p *child, what string, hook func(context.Context, plugin.Hooks) (*pluginpb.Verdict, error)) (*pluginpb.Verdict, *hookRefusal) {
	v, err := p.call(ctx, hook)
	rt.g.metrics.verdict(p.comp.Name, what, verdictName(v, err))
	c.verdict(p.comp.Name + ":" + what + ":" + verdictName(v, err))
	if err != nil {
		if p.failOpen() {
			rt.log.Warn("plugin failed; failing open as the policy allows", "request", c.id, "plugin", p.comp.Name, "hook", what, "error", err.Error())
			return nil, nil
		}
		rt.log.Error("plugin failed; refused", "request", c.id, "plugin", p.comp.Name, "hook", what, "error", err.Error())
		return nil, &hookRefusal{http.StatusServiceUnavailable, fmt.Sprintf("The %s was refused: guardrail %q is unavailable.", what, p.comp.Name), "guardrail_unavailable"}
	}
	if v.GetAction() == pluginpb.Verdict_BLOCK {
		rt.log.Info("plugin blocked", "request", c.id, "plugin", p.comp.Name, "hook", what, "reason", clipText(v.GetReason()))
		return nil, &hookRefusal{http.StatusForbidden, fmt.Sprintf("The %s was blocked by guardrail %q: %s", what, p.comp.Name, clipText(v.GetReason())), "blocked_by_guardrail"}
	}
	return v, nil
}

func verdictName(v *pluginpb.Verdict, err error) string {
	switch {
	case err != nil:
		return "error"
	case v.GetAction() == pluginpb.Verdict_BLOCK:
		return "block"
	case v.GetAction() == pluginpb.Verdict_REWRITE:
		return "rewrite"
	}
	return "allow"
}

// verdict records a plugin's answer once, however many events of a stream
// it answered the same way.
func (c *call) verdict(v string) {
	if !slices.Contains(c.verdicts, v) {
		c.verdicts = append(c.verdicts, v)
	}
}

// grantsHook reports whether the policy grants c the hook.
func (c *child) grantsHook(hook string) bool {
	return c.comp.Kind == "plugin" && slices.Contains(c.grants.Hooks, hook)
}

func (c *child) failOpen() bool { return c.pol != nil && c.pol.FailOpen }

// call runs one hook of a running plugin with the hook deadline.
func (c *child) call(ctx context.Context, f func(context.Context, plugin.Hooks) (*pluginpb.Verdict, error)) (*pluginpb.Verdict, error) {
	c.mu.Lock()
	client, state := c.client, c.state
	c.mu.Unlock()
	if client == nil || state != StateRunning {
		return nil, fmt.Errorf("plugin %q is %s", c.comp.Name, state)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultHookTimeout)
	defer cancel()
	return f(ctx, client.Hooks())
}

// safeHeaders is what a plugin sees of the client's headers: never a
// credential or a cookie.
func safeHeaders(h http.Header) []*pluginpb.Header {
	var out []*pluginpb.Header
	for _, name := range []string{"Content-Type", "User-Agent", "Accept"} {
		if v := h.Values(name); len(v) > 0 {
			out = append(out, &pluginpb.Header{Name: name, Values: slices.Clone(v)})
		}
	}
	return out
}

// sseFilter passes a server-sent event stream through, applying apply to
// the data of each "data:" event as it arrives ("[DONE]" is passed as it
// is). A refusal ends the stream with an error event.
type sseFilter struct {
	src   io.Closer
	r     *bufio.Reader
	apply func([]byte) ([]byte, error)
	out   bytes.Buffer
	done  bool
}

func (f *sseFilter) Read(p []byte) (int, error) {
	for f.out.Len() == 0 {
		if f.done {
			return 0, io.EOF
		}
		line, err := f.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			f.fail("an event of the stream is too long")
			continue
		}
		if len(line) > 0 {
			f.line(line)
		}
		if err != nil {
			f.done = true
			if !errors.Is(err, io.EOF) {
				return 0, err
			}
		}
	}
	return f.out.Read(p)
}

func (f *sseFilter) line(line []byte) {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		f.out.Write(line)
		return
	}
	data = bytes.TrimSpace(data)
	if string(data) == "[DONE]" {
		f.out.Write(line)
		return
	}
	out, err := f.apply(data)
	if err != nil {
		f.fail(err.Error())
		return
	}
	f.out.WriteString("data: ")
	f.out.Write(out)
	f.out.WriteString("\n")
}

func (f *sseFilter) fail(message string) {
	e, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": "invalid_request_error", "param": nil, "code": "blocked_by_guardrail"}})
	f.out.WriteString("data: ")
	f.out.Write(e)
	f.out.WriteString("\n\ndata: [DONE]\n\n")
	f.done = true
}

func (f *sseFilter) Close() error { return f.src.Close() }
