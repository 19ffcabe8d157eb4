package gateway

// Translation between OpenAI's chat completions API and Anthropic's
// Messages API, for providers that speak the latter: requests one way,
// responses, streams and errors the other.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The kinds of translation failure. A caller answers the first two with a
// 400 to its client and the third with a 502.
var (
	// errAnthropicInvalid: the body is not a valid chat completions request.
	errAnthropicInvalid = errors.New("invalid chat completions request")
	// errAnthropicUnsupported: a valid request that the Messages API cannot
	// express, or that this translation does not carry yet.
	errAnthropicUnsupported = errors.New("not supported by the anthropic translation")
	// errAnthropicUpstream: the provider's answer is not a Messages API answer.
	errAnthropicUpstream = errors.New("malformed anthropic response")
)

const (
	// anthropicDefaultMaxTokens is sent when the request sets no limit: the
	// Messages API requires one.
	anthropicDefaultMaxTokens = 4096
	// anthropicMaxLine bounds one line, and one event, of the provider's
	// event stream.
	anthropicMaxLine = 1 << 20
)

// oaRequest is the part of a chat completions request that is carried
// over or checked. Every other field is dropped: frequency_penalty,
// presence_penalty, logit_bias, logprobs, top_logprobs, seed,
// response_format, service_tier, store, metadata, parallel_tool_calls,
// tool_choice, reasoning_effort, prediction, modalities, audio,
// web_search_options, prompt_cache_key, safety_identifier, verbosity,
// function_call, stream_options (the caller reads include_usage for
// openAIStream) and any field OpenAI adds later.
type oaRequest struct {
	Model               string            `json:"model"`
	Messages            []oaMessage       `json:"messages"`
	MaxTokens           *int64            `json:"max_tokens"`
	MaxCompletionTokens *int64            `json:"max_completion_tokens"`
	Temperature         *float64          `json:"temperature"`
	TopP                *float64          `json:"top_p"`
	Stop                json.RawMessage   `json:"stop"`
	Stream              *bool             `json:"stream"`
	User                *string           `json:"user"`
	N                   *int64            `json:"n"`
	Tools               []json.RawMessage `json:"tools"`
	Functions           []json.RawMessage `json:"functions"`
}

type oaMessage struct {
	Role         string            `json:"role"`
	Content      json.RawMessage   `json:"content"`
	ToolCalls    []json.RawMessage `json:"tool_calls"`
	FunctionCall json.RawMessage   `json:"function_call"`
}

type oaPart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

type anthropicMessagesRequest struct {
	Model         string             `json:"model"`
	MaxTokens     int64              `json:"max_tokens"`
	System        string             `json:"system,omitempty"`
	Messages      []anthropicMessage `json:"messages"`
	Metadata      *anthropicMetadata `json:"metadata,omitempty"`
	StopSequences []string           `json:"stop_sequences,omitempty"`
	Stream        bool               `json:"stream,omitempty"`
	Temperature   *float64           `json:"temperature,omitempty"`
	TopP          *float64           `json:"top_p,omitempty"`
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content []anthropicBlock `json:"content"`
}

type anthropicBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicMetadata struct {
	UserID string `json:"user_id"`
}

// anthropicRequest translates an OpenAI chat completions request body into
// an Anthropic Messages request body for the model the request names, and
// says whether it streams. System and developer messages become the
// top-level system prompt, in order, wherever they stood; consecutive
// messages of one role are merged; blank text parts are left out, since
// the Messages API refuses them. Tools, tool messages, images and n > 1
// are refused with errAnthropicUnsupported; a body that is not a chat
// completions request is refused with errAnthropicInvalid.
func anthropicRequest(body []byte) (out []byte, stream bool, err error) {
	var in oaRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, false, fmt.Errorf("%w: %w", errAnthropicInvalid, err)
	}
	if in.Model == "" {
		return nil, false, fmt.Errorf("%w: no model", errAnthropicInvalid)
	}
	if len(in.Tools) > 0 || len(in.Functions) > 0 {
		return nil, false, fmt.Errorf("tools: %w", errAnthropicUnsupported)
	}
	if in.N != nil && *in.N != 1 {
		return nil, false, fmt.Errorf("n %d: %w", *in.N, errAnthropicUnsupported)
	}
	req := anthropicMessagesRequest{
		Model:       in.Model,
		Temperature: in.Temperature,
		TopP:        in.TopP,
		Stream:      in.Stream != nil && *in.Stream,
	}
	if req.MaxTokens, err = anthropicMaxTokens(in); err != nil {
		return nil, false, err
	}
	if req.System, req.Messages, err = anthropicMessages(in.Messages); err != nil {
		return nil, false, err
	}
	if req.StopSequences, err = anthropicStop(in.Stop); err != nil {
		return nil, false, err
	}
	if in.User != nil && *in.User != "" {
		req.Metadata = &anthropicMetadata{UserID: *in.User}
	}
	out, err = anthropicMarshal(req)
	return out, req.Stream, err
}

// anthropicMaxTokens prefers max_completion_tokens, OpenAI's current name, to
// max_tokens, and defaults to anthropicDefaultMaxTokens.
func anthropicMaxTokens(in oaRequest) (int64, error) {
	n, name := in.MaxCompletionTokens, "max_completion_tokens"
	if n == nil {
		n, name = in.MaxTokens, "max_tokens"
	}
	switch {
	case n == nil:
		return anthropicDefaultMaxTokens, nil
	case *n < 1:
		return 0, fmt.Errorf("%w: %s %d is not positive", errAnthropicInvalid, name, *n)
	}
	return *n, nil
}

func anthropicStop(raw json.RawMessage) ([]string, error) {
	var one string
	var list []string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, nil
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, fmt.Errorf("%w: stop: %w", errAnthropicInvalid, err)
		}
		return []string{one}, nil
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("%w: stop: %w", errAnthropicInvalid, err)
		}
		return list, nil
	}
	return nil, fmt.Errorf("%w: stop is neither a string nor a list", errAnthropicInvalid)
}

// anthropicMessages splits the chat messages into the system prompt and
// the alternating user and assistant turns the Messages API requires.
func anthropicMessages(in []oaMessage) (string, []anthropicMessage, error) {
	if len(in) == 0 {
		return "", nil, fmt.Errorf("%w: no messages", errAnthropicInvalid)
	}
	var system []string
	var out []anthropicMessage
	for i, m := range in {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		case "tool", "function":
			return "", nil, fmt.Errorf("message %d: role %q: %w", i, m.Role, errAnthropicUnsupported)
		default:
			return "", nil, fmt.Errorf("%w: message %d: unknown role %q", errAnthropicInvalid, i, m.Role)
		}
		if len(m.ToolCalls) > 0 || (len(m.FunctionCall) > 0 && string(m.FunctionCall) != "null") {
			return "", nil, fmt.Errorf("message %d: tool calls: %w", i, errAnthropicUnsupported)
		}
		blocks, err := anthropicText(i, m)
		if err != nil {
			return "", nil, err
		}
		switch {
		case m.Role == "system" || m.Role == "developer":
			for _, b := range blocks {
				system = append(system, b.Text)
			}
		case len(blocks) == 0:
		case len(out) > 0 && out[len(out)-1].Role == m.Role:
			out[len(out)-1].Content = append(out[len(out)-1].Content, blocks...)
		default:
			out = append(out, anthropicMessage{Role: m.Role, Content: blocks})
		}
	}
	if len(out) == 0 {
		return "", nil, fmt.Errorf("no user or assistant message with text: %w", errAnthropicUnsupported)
	}
	// A last assistant turn is a prefill, which may not end in whitespace.
	if last := out[len(out)-1]; last.Role == "assistant" {
		b := &last.Content[len(last.Content)-1]
		b.Text = strings.TrimRight(b.Text, " \t\r\n")
	}
	return strings.Join(system, "\n\n"), out, nil
}

// anthropicText reads a message's content, a string or a list of text
// parts, as text blocks, leaving out blank ones.
func anthropicText(i int, m oaMessage) ([]anthropicBlock, error) {
	var texts []string
	switch raw := m.Content; {
	case len(raw) == 0 || string(raw) == "null":
		if m.Role != "assistant" {
			return nil, fmt.Errorf("%w: message %d: no content", errAnthropicInvalid, i)
		}
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: message %d: %w", errAnthropicInvalid, i, err)
		}
		texts = []string{s}
	case raw[0] == '[':
		var parts []oaPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return nil, fmt.Errorf("%w: message %d: %w", errAnthropicInvalid, i, err)
		}
		for j, p := range parts {
			if p.Type != "text" {
				return nil, fmt.Errorf("message %d: content part %d of type %q: %w", i, j, p.Type, errAnthropicUnsupported)
			}
			if p.Text == nil {
				return nil, fmt.Errorf("%w: message %d: content part %d has no text", errAnthropicInvalid, i, j)
			}
			texts = append(texts, *p.Text)
		}
	default:
		return nil, fmt.Errorf("%w: message %d: content is neither a string nor a list", errAnthropicInvalid, i)
	}
	var blocks []anthropicBlock
	for _, t := range texts {
		if strings.TrimSpace(t) != "" {
			blocks = append(blocks, anthropicBlock{Type: "text", Text: t})
		}
	}
	return blocks, nil
}

// anthropicMessagesResponse is the part of a Messages API response that is read.
type anthropicMessagesResponse struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Model   string `json:"model"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason *string        `json:"stop_reason"`
	Usage      anthropicUsage `json:"usage"`
}

// anthropicUsage is the Messages API's token count. In a stream each
// field may come in message_start or message_delta; nil is "not said".
type anthropicUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
}

// update keeps each count that from says, over the one said before.
func (u *anthropicUsage) update(from anthropicUsage) {
	for _, f := range []struct{ to, from **int64 }{
		{&u.InputTokens, &from.InputTokens},
		{&u.OutputTokens, &from.OutputTokens},
		{&u.CacheCreationInputTokens, &from.CacheCreationInputTokens},
		{&u.CacheReadInputTokens, &from.CacheReadInputTokens},
	} {
		if *f.from != nil {
			*f.to = *f.from
		}
	}
}

// openAI counts cached input in the prompt, as OpenAI does: Anthropic's
// input_tokens leaves out the tokens read from or written to its cache.
func (u anthropicUsage) openAI() *oaUsage {
	n := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	out := &oaUsage{
		PromptTokens:     n(u.InputTokens) + n(u.CacheCreationInputTokens) + n(u.CacheReadInputTokens),
		CompletionTokens: n(u.OutputTokens),
	}
	out.TotalTokens = out.PromptTokens + out.CompletionTokens
	if cached := n(u.CacheReadInputTokens); cached > 0 {
		out.PromptTokensDetails = &oaPromptDetails{CachedTokens: cached}
	}
	return out
}

type oaCompletion struct {
	ID      string     `json:"id"`
	Object  string     `json:"object"`
	Created int64      `json:"created"`
	Model   string     `json:"model"`
	Choices []oaChoice `json:"choices"`
	Usage   *oaUsage   `json:"usage,omitempty"`
}

// oaChoice is a choice of a completion (Message set) or of a chunk
// (Delta set). Logprobs is always null.
type oaChoice struct {
	Index        int       `json:"index"`
	Message      *oaOutput `json:"message,omitempty"`
	Delta        *oaDelta  `json:"delta,omitempty"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type oaOutput struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type oaDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type oaUsage struct {
	PromptTokens        int64            `json:"prompt_tokens"`
	CompletionTokens    int64            `json:"completion_tokens"`
	TotalTokens         int64            `json:"total_tokens"`
	PromptTokensDetails *oaPromptDetails `json:"prompt_tokens_details,omitempty"`
}

type oaPromptDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// openAIResponse translates a non-streaming Anthropic Messages response
// body into an OpenAI chat.completion body: its text blocks joined as the
// one choice's content (thinking and tool use blocks are left out), its
// stop reason as the finish reason. A body that is not a message is
// refused with errAnthropicUpstream; error bodies go to anthropicError.
func openAIResponse(body []byte) ([]byte, error) {
	var in anthropicMessagesResponse
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("%w: %w", errAnthropicUpstream, err)
	}
	if in.Type != "message" {
		return nil, fmt.Errorf("%w: type %q, want \"message\"", errAnthropicUpstream, in.Type)
	}
	var text strings.Builder
	for _, b := range in.Content {
		if b.Type == "text" {
			text.WriteString(b.Text)
		}
	}
	return anthropicMarshal(oaCompletion{
		ID:      in.ID,
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   in.Model,
		Choices: []oaChoice{{
			Message:      &oaOutput{Role: "assistant", Content: text.String()},
			FinishReason: oaFinishReason(in.StopReason),
		}},
		Usage: in.Usage.openAI(),
	})
}

// oaFinishReason maps Anthropic's stop reason to OpenAI's finish reason; an
// unknown reason is a stop, and no reason is none.
func oaFinishReason(stop *string) *string {
	if stop == nil {
		return nil
	}
	r := "stop" // end_turn, stop_sequence, pause_turn
	switch *stop {
	case "max_tokens", "model_context_window_exceeded":
		r = "length"
	case "tool_use":
		r = "tool_calls"
	case "refusal":
		r = "content_filter"
	}
	return &r
}

type anthropicErrorBody struct {
	Type  string                `json:"type"`
	Error *anthropicErrorObject `json:"error"`
}

type anthropicErrorObject struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// openAI is e as OpenAI's error object; an error without a type is an
// api_error.
func (e anthropicErrorObject) openAI() oaError {
	if e.Type == "" {
		e.Type = "api_error"
	}
	return oaError{Message: e.Message, Type: e.Type}
}

type oaErrorBody struct {
	Error oaError `json:"error"`
}

// oaError is OpenAI's error object. Translated from Anthropic, Type is
// Anthropic's error type (invalid_request_error, authentication_error,
// rate_limit_error, overloaded_error, ...) and Param and Code are null.
type oaError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// anthropicError translates an Anthropic error body
// ({"type":"error","error":{"type":...,"message":...}}) into OpenAI's error
// shape {"error":{"message","type","param","code"}}; it returns the body
// unchanged if it is not an Anthropic error.
func anthropicError(body []byte) []byte {
	var in anthropicErrorBody
	if json.Unmarshal(body, &in) != nil || in.Type != "error" || in.Error == nil || in.Error.Type == "" {
		return body
	}
	out, err := anthropicMarshal(oaErrorBody{in.Error.openAI()})
	if err != nil {
		return body
	}
	return out
}

// anthropicMarshal is json.Marshal without escaping <, > and &: text reaches
// the client as the model wrote it.
func anthropicMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// openAIStream reads Anthropic's server-sent events from r and returns a
// reader of OpenAI chat.completion.chunk server-sent events
// ("data: {...}\n\n" each, ending with "data: [DONE]\n\n"), translating
// event by event as they arrive: a Read returns as soon as one Anthropic
// event has made output. includeUsage adds the final usage chunk (OpenAI's
// stream_options.include_usage: a last chunk with "choices": [] and
// "usage"). Chunks carry model, or the upstream's model when model is "".
//
// An Anthropic error event, a malformed or over-long (anthropicMaxLine)
// event, or an end of r before message_stop becomes one OpenAI error
// event, data: {"error":{...}}, and the end of the stream with no [DONE].
// The returned reader is not safe for concurrent Reads; Close may be
// called during a Read, and closes r.
func openAIStream(r io.ReadCloser, model string, includeUsage bool) io.ReadCloser {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), anthropicMaxLine)
	return &anthropicChunks{
		r:            r,
		sc:           sc,
		model:        model,
		includeUsage: includeUsage,
		created:      time.Now().Unix(),
	}
}

var _ io.ReadCloser = (*anthropicChunks)(nil)

// anthropicChunks is the reader openAIStream returns.
type anthropicChunks struct {
	r            io.ReadCloser
	sc           *bufio.Scanner
	model        string
	includeUsage bool
	created      int64

	id       string
	started  bool // message_start was read
	finished bool // a finish_reason was sent
	usage    anthropicUsage
	done     bool // nothing more is read from r
	out      bytes.Buffer

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// anthropicEvent is the union of the Anthropic stream events' fields read.
type anthropicEvent struct {
	Type    string `json:"type"`
	Message *struct {
		ID    string         `json:"id"`
		Model string         `json:"model"`
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
	Delta *struct {
		Type       string  `json:"type"`
		Text       string  `json:"text"`
		StopReason *string `json:"stop_reason"`
	} `json:"delta"`
	Usage *anthropicUsage       `json:"usage"`
	Error *anthropicErrorObject `json:"error"`
}

func (s *anthropicChunks) Read(p []byte) (int, error) {
	for s.out.Len() == 0 {
		if s.closed.Load() {
			return 0, os.ErrClosed
		}
		if s.done {
			return 0, io.EOF
		}
		data, err := s.event()
		if err == nil {
			err = s.translate(data)
		}
		if err != nil {
			s.fail(err)
		}
	}
	return s.out.Read(p)
}

// Close closes the upstream reader, once.
func (s *anthropicChunks) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.r.Close()
	})
	return s.closeErr
}

// event reads the next event's data: its data lines joined with "\n", as
// the server-sent events format says. Other fields and comments are
// ignored; the event name repeats the data's type.
func (s *anthropicChunks) event() ([]byte, error) {
	var data []byte
	have := false
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if len(line) == 0 {
			if have {
				return data, nil
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if string(field) != "data" {
			continue
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		if have {
			data = append(data, '\n')
		}
		if len(data)+len(value) > anthropicMaxLine {
			return nil, fmt.Errorf("%w: event longer than %d bytes", errAnthropicUpstream, anthropicMaxLine)
		}
		data, have = append(data, value...), true
	}
	if err := s.sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading the stream: %w", errAnthropicUpstream, err)
	}
	if have { // the last event, without its blank line
		return data, nil
	}
	return nil, fmt.Errorf("%w: the stream ended before message_stop", errAnthropicUpstream)
}

// translate writes the OpenAI events for one Anthropic event. Unknown
// event and delta types are skipped, as Anthropic's versioning policy
// asks of clients.
func (s *anthropicChunks) translate(data []byte) error {
	var ev anthropicEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("%w: event: %w", errAnthropicUpstream, err)
	}
	switch {
	case ev.Type == "ping":
		return nil
	case ev.Type == "error":
		if ev.Error == nil {
			return fmt.Errorf("%w: error event without an error", errAnthropicUpstream)
		}
		s.writeError(ev.Error.openAI())
		return nil
	case ev.Type == "message_start":
		return s.start(ev)
	case !s.started:
		return fmt.Errorf("%w: event %q before message_start", errAnthropicUpstream, ev.Type)
	}
	switch ev.Type {
	case "content_block_delta":
		if ev.Delta == nil {
			return fmt.Errorf("%w: content_block_delta without a delta", errAnthropicUpstream)
		}
		if ev.Delta.Type == "text_delta" && ev.Delta.Text != "" {
			s.writeChunk(oaChoice{Delta: &oaDelta{Content: &ev.Delta.Text}})
		}
	case "message_delta":
		if ev.Usage != nil {
			s.usage.update(*ev.Usage)
		}
		if ev.Delta != nil && ev.Delta.StopReason != nil && !s.finished {
			s.finish(ev.Delta.StopReason)
		}
	case "message_stop":
		if !s.finished {
			s.finish(new("end_turn"))
		}
		if s.includeUsage {
			s.write(oaCompletion{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model, Choices: []oaChoice{}, Usage: s.usage.openAI()})
		}
		s.out.WriteString("data: [DONE]\n\n")
		s.done = true
	case "":
		return fmt.Errorf("%w: event without a type", errAnthropicUpstream)
	}
	return nil
}

func (s *anthropicChunks) start(ev anthropicEvent) error {
	if s.started {
		return fmt.Errorf("%w: a second message_start", errAnthropicUpstream)
	}
	if ev.Message == nil {
		return fmt.Errorf("%w: message_start without a message", errAnthropicUpstream)
	}
	s.started, s.id = true, ev.Message.ID
	if s.model == "" {
		s.model = ev.Message.Model
	}
	s.usage.update(ev.Message.Usage)
	s.writeChunk(oaChoice{Delta: &oaDelta{Role: "assistant", Content: new("")}})
	return nil
}

func (s *anthropicChunks) finish(stop *string) {
	s.finished = true
	s.writeChunk(oaChoice{Delta: &oaDelta{}, FinishReason: oaFinishReason(stop)})
}

func (s *anthropicChunks) writeChunk(c oaChoice) {
	s.write(oaCompletion{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model, Choices: []oaChoice{c}})
}

// fail ends the stream with an OpenAI error event for err, in the shape
// the router gives other upstream failures.
func (s *anthropicChunks) fail(err error) {
	msg := err.Error()
	if len(msg) > 512 { // it may quote the upstream's bytes
		msg = strings.ToValidUTF8(msg[:512], "") + "..."
	}
	s.writeError(oaError{Message: msg, Type: "api_error", Code: new("upstream_error")})
}

func (s *anthropicChunks) writeError(e oaError) {
	s.write(oaErrorBody{e})
	s.done = true
}

func (s *anthropicChunks) write(v any) {
	b, err := anthropicMarshal(v)
	if err != nil { // not expected: the values written here always encode
		b, s.done = []byte(`{"error":{"message":"encoding a stream chunk","type":"api_error","param":null,"code":"upstream_error"}}`), true
	}
	s.out.WriteString("data: ")
	s.out.Write(b)
	s.out.WriteString("\n\n")
}
