package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// anthropicValidRequest is the chat request every refusal case breaks one
// thing of.
const anthropicValidRequest = `{"model":"claude-x","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]}`

// anthJSONEqual fails t unless got and want are the same JSON value.
func anthJSONEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v\n%s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// anthUncreated checks body's "created" is now, give or take, and sets it to 0.
func anthUncreated(t *testing.T, body []byte, before time.Time) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, body)
	}
	c, ok := m["created"].(float64)
	if !ok || int64(c) < before.Unix() || int64(c) > time.Now().Unix() {
		t.Errorf("created = %v, want the time of translation", m["created"])
	}
	m["created"] = 0
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAnthropicRequest(t *testing.T) {
	const hello = `[{"role":"user","content":[{"type":"text","text":"Hello"}]}]`
	for _, tc := range []struct {
		name, in, want string
		stream         bool
	}{{
		name: "string content",
		in:   `{"model":"claude-x","messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"messages":` + hello + `}`,
	}, {
		name: "system and developer messages join the system prompt, wherever they stand",
		in: `{"model":"claude-x","messages":[{"role":"system","content":"A"},
			{"role":"developer","content":[{"type":"text","text":"B"},{"type":"text","text":"C"}]},
			{"role":"user","content":"Hello"},{"role":"system","content":"D"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"system":"A\n\nB\n\nC\n\nD","messages":` + hello + `}`,
	}, {
		name: "text parts become text blocks",
		in:   `{"model":"claude-x","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
	}, {
		name: "consecutive messages of one role are merged",
		in: `{"model":"claude-x","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},
			{"role":"assistant","content":"c"},{"role":"assistant","content":[{"type":"text","text":"d"}]},{"role":"user","content":"e"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"messages":[
			{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
			{"role":"assistant","content":[{"type":"text","text":"c"},{"type":"text","text":"d"}]},
			{"role":"user","content":[{"type":"text","text":"e"}]}]}`,
	}, {
		name: "blank messages are left out and their neighbours merged",
		in: `{"model":"claude-x","messages":[{"role":"user","content":"a"},{"role":"assistant","content":""},
			{"role":"user","content":" \n"},{"role":"assistant","content":null},{"role":"user","content":"b"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
	}, {
		name: "a last assistant message is a prefill without trailing whitespace",
		in:   `{"model":"claude-x","messages":[{"role":"user","content":"Hello"},{"role":"assistant","content":"The answer is \n"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]},
			{"role":"assistant","content":[{"type":"text","text":"The answer is"}]}]}`,
	}, {
		name: "max_tokens",
		in:   `{"model":"claude-x","max_tokens":100,"messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":100,"messages":` + hello + `}`,
	}, {
		name: "max_completion_tokens wins over max_tokens",
		in:   `{"model":"claude-x","max_tokens":100,"max_completion_tokens":200,"messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":200,"messages":` + hello + `}`,
	}, {
		name: "null max_tokens is the default",
		in:   `{"model":"claude-x","max_tokens":null,"messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"messages":` + hello + `}`,
	}, {
		name: "a zero temperature is kept",
		in:   `{"model":"claude-x","temperature":0,"top_p":0.9,"messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"temperature":0,"top_p":0.9,"messages":` + hello + `}`,
	}, {
		name: "stop as a string",
		in:   `{"model":"claude-x","stop":"END","messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"stop_sequences":["END"],"messages":` + hello + `}`,
	}, {
		name: "stop as a list",
		in:   `{"model":"claude-x","stop":["a","b"],"messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"stop_sequences":["a","b"],"messages":` + hello + `}`,
	}, {
		name: "stop null",
		in:   `{"model":"claude-x","stop":null,"messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"messages":` + hello + `}`,
	}, {
		name:   "stream",
		in:     `{"model":"claude-x","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello"}]}`,
		want:   `{"model":"claude-x","max_tokens":4096,"stream":true,"messages":` + hello + `}`,
		stream: true,
	}, {
		name: "user becomes metadata.user_id",
		in:   `{"model":"claude-x","user":"u-1","messages":[{"role":"user","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"metadata":{"user_id":"u-1"},"messages":` + hello + `}`,
	}, {
		name: "other fields are dropped",
		in: `{"model":"claude-x","frequency_penalty":1,"presence_penalty":1,"logit_bias":{"1":2},"seed":3,"n":1,
			"response_format":{"type":"text"},"tool_choice":"none","tools":[],"logprobs":false,"metadata":{"a":"b"},
			"parallel_tool_calls":false,"stream":false,"future_field":{"x":[1]},
			"messages":[{"role":"user","name":"ann","content":"Hello"}]}`,
		want: `{"model":"claude-x","max_tokens":4096,"messages":` + hello + `}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out, stream, err := anthropicRequest([]byte(tc.in))
			if err != nil {
				t.Fatalf("anthropicRequest: %v", err)
			}
			if stream != tc.stream {
				t.Errorf("stream = %v, want %v", stream, tc.stream)
			}
			anthJSONEqual(t, out, tc.want)
		})
	}
}

// Text reaches the provider as the client wrote it, HTML characters
// included.
func TestAnthropicRequestKeepsText(t *testing.T) {
	out, _, err := anthropicRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"<b>&é\u2028"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"<b>&é`)) {
		t.Errorf("text was escaped: %s", out)
	}
}

func TestAnthropicRequestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string                 // the body, when not an edit of the valid request
		edit func(m map[string]any) // breaks one thing of anthropicValidRequest
		want error
	}{
		{name: "not JSON", raw: `{"model":`, want: errAnthropicInvalid},
		{name: "a list", raw: `[]`, want: errAnthropicInvalid},
		{name: "empty", raw: ``, want: errAnthropicInvalid},
		{name: "no model", edit: func(m map[string]any) { delete(m, "model") }, want: errAnthropicInvalid},
		{name: "model a number", edit: func(m map[string]any) { m["model"] = 7 }, want: errAnthropicInvalid},
		{name: "no messages", edit: func(m map[string]any) { delete(m, "messages") }, want: errAnthropicInvalid},
		{name: "messages empty", edit: func(m map[string]any) { m["messages"] = []any{} }, want: errAnthropicInvalid},
		{name: "messages an object", edit: func(m map[string]any) { m["messages"] = map[string]any{} }, want: errAnthropicInvalid},
		{name: "unknown role", edit: func(m map[string]any) { anthUserMessage(m)["role"] = "robot" }, want: errAnthropicInvalid},
		{name: "role a number", edit: func(m map[string]any) { anthUserMessage(m)["role"] = 1 }, want: errAnthropicInvalid},
		{name: "content a number", edit: func(m map[string]any) { anthUserMessage(m)["content"] = 5 }, want: errAnthropicInvalid},
		{name: "user content null", edit: func(m map[string]any) { anthUserMessage(m)["content"] = nil }, want: errAnthropicInvalid},
		{name: "system content null", edit: func(m map[string]any) { m["messages"].([]any)[0].(map[string]any)["content"] = nil }, want: errAnthropicInvalid},
		{name: "part without text", edit: func(m map[string]any) { anthUserMessage(m)["content"] = []any{map[string]any{"type": "text"}} }, want: errAnthropicInvalid},
		{name: "part text a number", edit: func(m map[string]any) {
			anthUserMessage(m)["content"] = []any{map[string]any{"type": "text", "text": 1}}
		}, want: errAnthropicInvalid},
		{name: "part a string", edit: func(m map[string]any) { anthUserMessage(m)["content"] = []any{"Hello"} }, want: errAnthropicInvalid},
		{name: "max_tokens zero", edit: func(m map[string]any) { m["max_tokens"] = 0 }, want: errAnthropicInvalid},
		{name: "max_completion_tokens negative", edit: func(m map[string]any) { m["max_completion_tokens"] = -1 }, want: errAnthropicInvalid},
		{name: "max_tokens a string", edit: func(m map[string]any) { m["max_tokens"] = "10" }, want: errAnthropicInvalid},
		{name: "max_tokens a fraction", edit: func(m map[string]any) { m["max_tokens"] = 1.5 }, want: errAnthropicInvalid},
		{name: "temperature a string", edit: func(m map[string]any) { m["temperature"] = "hot" }, want: errAnthropicInvalid},
		{name: "stop a number", edit: func(m map[string]any) { m["stop"] = 1 }, want: errAnthropicInvalid},
		{name: "stop list with a number", edit: func(m map[string]any) { m["stop"] = []any{"a", 1} }, want: errAnthropicInvalid},
		{name: "stream a string", edit: func(m map[string]any) { m["stream"] = "yes" }, want: errAnthropicInvalid},
		{name: "user a number", edit: func(m map[string]any) { m["user"] = 1 }, want: errAnthropicInvalid},
		{name: "image part", edit: func(m map[string]any) {
			anthUserMessage(m)["content"] = []any{map[string]any{"type": "image_url", "image_url": map[string]any{"url": "https://example.com/a.png"}}}
		}, want: errAnthropicUnsupported},
		{name: "audio part", edit: func(m map[string]any) {
			anthUserMessage(m)["content"] = []any{map[string]any{"type": "input_audio", "input_audio": map[string]any{"data": "", "format": "wav"}}}
		}, want: errAnthropicUnsupported},
		{name: "tool message", edit: func(m map[string]any) {
			m["messages"] = append(m["messages"].([]any), map[string]any{"role": "tool", "tool_call_id": "c1", "content": "42"})
		}, want: errAnthropicUnsupported},
		{name: "assistant tool calls", edit: func(m map[string]any) {
			m["messages"] = append(m["messages"].([]any), map[string]any{"role": "assistant", "content": nil,
				"tool_calls": []any{map[string]any{"id": "c1", "type": "function", "function": map[string]any{"name": "f", "arguments": "{}"}}}})
		}, want: errAnthropicUnsupported},
		{name: "tools", edit: func(m map[string]any) {
			m["tools"] = []any{map[string]any{"type": "function", "function": map[string]any{"name": "f"}}}
		}, want: errAnthropicUnsupported},
		{name: "functions", edit: func(m map[string]any) { m["functions"] = []any{map[string]any{"name": "f"}} }, want: errAnthropicUnsupported},
		{name: "n 2", edit: func(m map[string]any) { m["n"] = 2 }, want: errAnthropicUnsupported},
		{name: "only a system message", edit: func(m map[string]any) { m["messages"] = m["messages"].([]any)[:1] }, want: errAnthropicUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.raw)
			if tc.edit != nil {
				body = anthEdit(t, anthropicValidRequest, tc.edit)
			}
			out, _, err := anthropicRequest(body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if out != nil {
				t.Errorf("a refused request was translated: %s", out)
			}
		})
	}
	if _, _, err := anthropicRequest([]byte(anthropicValidRequest)); err != nil {
		t.Fatalf("the fixture itself is refused: %v", err)
	}
}

func anthUserMessage(m map[string]any) map[string]any {
	return m["messages"].([]any)[1].(map[string]any)
}

func anthEdit(t *testing.T, doc string, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// anthropicValidResponse is the Messages API answer the response cases
// start from.
const anthropicValidResponse = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
	"content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","stop_sequence":null,
	"usage":{"input_tokens":10,"output_tokens":3}}`

func TestAnthropicResponse(t *testing.T) {
	completion := func(content, finish, usage string) string {
		return `{"id":"msg_1","object":"chat.completion","created":0,"model":"claude-x","choices":[{"index":0,
			"message":{"role":"assistant","content":` + content + `,"refusal":null},"logprobs":null,"finish_reason":` + finish + `}],
			"usage":` + usage + `}`
	}
	const usage = `{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}`
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{{
		name: "text",
		want: completion(`"Hello"`, `"stop"`, usage),
	}, {
		name: "text blocks are joined, other blocks left out",
		edit: func(m map[string]any) {
			m["content"] = []any{
				map[string]any{"type": "thinking", "thinking": "hmm", "signature": "s"},
				map[string]any{"type": "text", "text": "Hel"},
				map[string]any{"type": "tool_use", "id": "t", "name": "f", "input": map[string]any{}},
				map[string]any{"type": "text", "text": "lo", "citations": []any{}},
			}
		},
		want: completion(`"Hello"`, `"stop"`, usage),
	}, {
		name: "no content",
		edit: func(m map[string]any) { m["content"] = []any{} },
		want: completion(`""`, `"stop"`, usage),
	}, {
		name: "cached input counts in the prompt",
		edit: func(m map[string]any) {
			m["usage"] = map[string]any{"input_tokens": 10, "output_tokens": 3, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 20}
		},
		want: completion(`"Hello"`, `"stop"`, `{"prompt_tokens":35,"completion_tokens":3,"total_tokens":38,"prompt_tokens_details":{"cached_tokens":20}}`),
	}, {
		name: "null cache counts",
		edit: func(m map[string]any) {
			m["usage"] = map[string]any{"input_tokens": 10, "output_tokens": 3, "cache_creation_input_tokens": nil, "cache_read_input_tokens": nil}
		},
		want: completion(`"Hello"`, `"stop"`, usage),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(anthropicValidResponse)
			if tc.edit != nil {
				body = anthEdit(t, anthropicValidResponse, tc.edit)
			}
			before := time.Now()
			out, err := openAIResponse(body)
			if err != nil {
				t.Fatalf("openAIResponse: %v", err)
			}
			anthJSONEqual(t, anthUncreated(t, out, before), tc.want)
		})
	}
}

func TestAnthropicResponseFinishReason(t *testing.T) {
	for stop, want := range map[any]any{
		"end_turn":                      "stop",
		"stop_sequence":                 "stop",
		"pause_turn":                    "stop",
		"max_tokens":                    "length",
		"model_context_window_exceeded": "length",
		"tool_use":                      "tool_calls",
		"refusal":                       "content_filter",
		"a_reason_from_the_future":      "stop",
		nil:                             nil,
	} {
		out, err := openAIResponse(anthEdit(t, anthropicValidResponse, func(m map[string]any) { m["stop_reason"] = stop }))
		if err != nil {
			t.Fatalf("stop_reason %v: %v", stop, err)
		}
		var got struct {
			Choices []struct {
				FinishReason any `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(out, &got); err != nil || len(got.Choices) != 1 {
			t.Fatalf("stop_reason %v: %v %s", stop, err, out)
		}
		if got.Choices[0].FinishReason != want {
			t.Errorf("stop_reason %v: finish_reason %v, want %v", stop, got.Choices[0].FinishReason, want)
		}
	}
}

func TestAnthropicResponseRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		edit func(m map[string]any)
	}{
		{name: "not JSON", raw: `<html>Bad Gateway</html>`},
		{name: "empty", raw: ``},
		{name: "an error", raw: `{"type":"error","error":{"type":"api_error","message":"boom"}}`},
		{name: "no type", edit: func(m map[string]any) { delete(m, "type") }},
		{name: "content an object", edit: func(m map[string]any) { m["content"] = map[string]any{} }},
		{name: "text a number", edit: func(m map[string]any) { m["content"] = []any{map[string]any{"type": "text", "text": 1}} }},
		{name: "input_tokens a string", edit: func(m map[string]any) { m["usage"] = map[string]any{"input_tokens": "10"} }},
		{name: "stop_reason a number", edit: func(m map[string]any) { m["stop_reason"] = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.raw)
			if tc.edit != nil {
				body = anthEdit(t, anthropicValidResponse, tc.edit)
			}
			out, err := openAIResponse(body)
			if !errors.Is(err, errAnthropicUpstream) {
				t.Fatalf("err = %v, want %v", err, errAnthropicUpstream)
			}
			if out != nil {
				t.Errorf("a malformed response was translated: %s", out)
			}
		})
	}
}

func TestAnthropicError(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{{
		name: "an anthropic error",
		in:   `{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"},"request_id":"req_1"}`,
		want: `{"error":{"message":"Slow down","type":"rate_limit_error","param":null,"code":null}}`,
	}, {
		name: "without a message",
		in:   `{"type":"error","error":{"type":"overloaded_error"}}`,
		want: `{"error":{"message":"","type":"overloaded_error","param":null,"code":null}}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			anthJSONEqual(t, anthropicError([]byte(tc.in)), tc.want)
		})
	}
	for _, in := range []string{
		``,
		`Bad Gateway`,
		`{"error":{"message":"already OpenAI's","type":"invalid_request_error","param":null,"code":null}}`,
		`{"type":"message","error":{"type":"api_error","message":"x"}}`,
		`{"type":"error"}`,
		`{"type":"error","error":"boom"}`,
		`{"type":"error","error":{"type":5,"message":"x"}}`,
		`{"type":"error","error":{"type":"","message":"x"}}`,
		`[{"type":"error"}]`,
	} {
		if got := anthropicError([]byte(in)); string(got) != in {
			t.Errorf("anthropicError(%q) = %q, want it unchanged", in, got)
		}
	}
}

// anthEvent is one Anthropic server-sent event.
func anthEvent(data string) string {
	var ev struct{ Type string }
	_ = json.Unmarshal([]byte(data), &ev)
	return "event: " + ev.Type + "\ndata: " + data + "\n\n"
}

var (
	anthSSEStart    = anthEvent(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}`)
	anthSSEBlock    = anthEvent(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	anthSSEPing     = anthEvent(`{"type": "ping"}`)
	anthSSEHello    = anthEvent(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`)
	anthSSEBang     = anthEvent(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}`)
	anthSSEBlockEnd = anthEvent(`{"type":"content_block_stop","index":0}`)
	anthSSEDelta    = anthEvent(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`)
	anthSSEStop     = anthEvent(`{"type":"message_stop"}`)
	anthSSEOverload = anthEvent(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
)

// anthropicSSE is the stream of Anthropic's documentation for "Hello!".
var anthropicSSE = anthSSEStart + anthSSEBlock + anthSSEPing + anthSSEHello + anthSSEBang + anthSSEBlockEnd + anthSSEDelta + anthSSEStop

// The OpenAI chunks anthropicSSE makes, created set to 0.
const (
	anthChunkRole   = `{"id":"msg_1","object":"chat.completion.chunk","created":0,"model":"gpt-route","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`
	anthChunkHello  = `{"id":"msg_1","object":"chat.completion.chunk","created":0,"model":"gpt-route","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}`
	anthChunkBang   = `{"id":"msg_1","object":"chat.completion.chunk","created":0,"model":"gpt-route","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}]}`
	anthChunkFinish = `{"id":"msg_1","object":"chat.completion.chunk","created":0,"model":"gpt-route","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`
	anthChunkUsage  = `{"id":"msg_1","object":"chat.completion.chunk","created":0,"model":"gpt-route","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":15,"total_tokens":40}}`
	anthChunkDone   = `[DONE]`
)

// anthReadStream reads a whole translated stream (bounded) and returns its
// events' data, checking that every event is one "data: ...\n\n" and that
// every chunk has the same "created", now or so, which it sets to 0.
func anthReadStream(t *testing.T, r io.Reader, before time.Time) []string {
	t.Helper()
	b, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	events, err := anthSplitSSE(b)
	if err != nil {
		t.Fatal(err)
	}
	var created any
	for i, e := range events {
		if e == anthChunkDone {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(e), &m); err != nil {
			t.Fatalf("event %d is not JSON: %v: %s", i, err, e)
		}
		if _, ok := m["error"]; ok {
			continue
		}
		if created == nil {
			created = m["created"]
		}
		if m["created"] != created {
			t.Errorf("event %d: created %v, the first chunk's was %v", i, m["created"], created)
		}
		events[i] = string(anthUncreated(t, []byte(e), before))
	}
	return events
}

// anthSplitSSE splits OpenAI server-sent events, each "data: X\n\n", into
// their X.
func anthSplitSSE(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		e, rest, ok := bytes.Cut(b, []byte("\n\n"))
		if !ok {
			return out, fmt.Errorf("unterminated event %q", anthClip(b))
		}
		data, ok := bytes.CutPrefix(e, []byte("data: "))
		if !ok || bytes.ContainsAny(data, "\r\n") {
			return out, fmt.Errorf("not one data line: %q", anthClip(e))
		}
		out, b = append(out, string(data)), rest
	}
	return out, nil
}

func anthClip(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

func anthWantEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if want[i] == anthChunkDone || got[i] == anthChunkDone {
			if got[i] != want[i] {
				t.Errorf("event %d: %s, want %s", i, got[i], want[i])
			}
			continue
		}
		anthJSONEqual(t, []byte(got[i]), want[i])
	}
}

func TestAnthropicStream(t *testing.T) {
	thinking := anthEvent(`{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`) +
		anthEvent(`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me see"}}`) +
		anthEvent(`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}`) +
		anthEvent(`{"type":"content_block_stop","index":0}`)
	toolInput := anthEvent(`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`)
	for _, tc := range []struct {
		name, stream, model string
		includeUsage        bool
		want                []string
	}{{
		name: "text", stream: anthropicSSE, model: "gpt-route",
		want: []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish, anthChunkDone},
	}, {
		name: "with usage", stream: anthropicSSE, model: "gpt-route", includeUsage: true,
		want: []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish, anthChunkUsage, anthChunkDone},
	}, {
		name: "CRLF line ends", stream: strings.ReplaceAll(anthropicSSE, "\n", "\r\n"), model: "gpt-route",
		want: []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish, anthChunkDone},
	}, {
		name:   "data split over lines",
		stream: strings.ReplaceAll(anthropicSSE, `,"`, "\ndata: ,\""), model: "gpt-route",
		want: []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish, anthChunkDone},
	}, {
		name:   "comments, ids and retries are ignored",
		stream: ": keep-alive\n\n" + "id: 1\nretry: 10\n" + anthropicSSE, model: "gpt-route",
		want: []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish, anthChunkDone},
	}, {
		name:   "thinking, tool input and unknown events make no chunk",
		stream: anthSSEStart + thinking + toolInput + anthEvent(`{"type":"future_event","x":1}`) + anthSSEHello + anthSSEBang + anthSSEDelta + anthSSEStop,
		model:  "gpt-route",
		want:   []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish, anthChunkDone},
	}, {
		name: "the upstream's model when none is given", stream: anthropicSSE,
		want: []string{
			strings.Replace(anthChunkRole, "gpt-route", "claude-x", 1), strings.Replace(anthChunkHello, "gpt-route", "claude-x", 1),
			strings.Replace(anthChunkBang, "gpt-route", "claude-x", 1), strings.Replace(anthChunkFinish, "gpt-route", "claude-x", 1), anthChunkDone,
		},
	}, {
		name:   "message_stop without message_delta still finishes",
		stream: anthSSEStart + anthSSEHello + anthSSEBang + anthSSEStop, model: "gpt-route", includeUsage: true,
		want: []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish,
			`{"id":"msg_1","object":"chat.completion.chunk","created":0,"model":"gpt-route","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":1,"total_tokens":26}}`,
			anthChunkDone},
	}, {
		name: "max_tokens is a length finish, and usage counts the cache", model: "gpt-route", includeUsage: true,
		stream: anthEvent(`{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":5,"cache_read_input_tokens":20,"output_tokens":1}}}`) +
			anthSSEHello + anthEvent(`{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":2}}`) + anthSSEStop,
		want: []string{anthChunkRole, anthChunkHello, strings.Replace(anthChunkFinish, `"stop"`, `"length"`, 1),
			`{"id":"msg_1","object":"chat.completion.chunk","created":0,"model":"gpt-route","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":2,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":20}}}`,
			anthChunkDone},
	}, {
		name: "nothing is read after message_stop", stream: anthropicSSE + "data: {not json\n\n" + anthSSEOverload, model: "gpt-route",
		want: []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish, anthChunkDone},
	}, {
		name: "the last event may lack its blank line", stream: strings.TrimSuffix(anthropicSSE, "\n"), model: "gpt-route",
		want: []string{anthChunkRole, anthChunkHello, anthChunkBang, anthChunkFinish, anthChunkDone},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			out := openAIStream(io.NopCloser(strings.NewReader(tc.stream)), tc.model, tc.includeUsage)
			defer out.Close()
			anthWantEvents(t, anthReadStream(t, out, before), tc.want...)
		})
	}
}

// What a stream that goes wrong becomes: the chunks before the failure,
// then one OpenAI error event and the end, with no [DONE].
func TestAnthropicStreamFailures(t *testing.T) {
	upstream := func(msg string) string {
		m, _ := json.Marshal("malformed anthropic response: " + msg)
		return `{"error":{"message":` + string(m) + `,"type":"api_error","param":null,"code":"upstream_error"}}`
	}
	long := strings.Repeat("a", anthropicMaxLine)
	for _, tc := range []struct {
		name, stream string
		want         []string
	}{{
		name:   "an error event",
		stream: anthSSEStart + anthSSEHello + anthSSEOverload,
		want:   []string{anthChunkRole, anthChunkHello, `{"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}}`},
	}, {
		name:   "an error event before message_start",
		stream: anthSSEPing + anthSSEOverload,
		want:   []string{`{"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}}`},
	}, {
		name:   "an error event without a type",
		stream: anthEvent(`{"type":"error","error":{"message":"?"}}`),
		want:   []string{`{"error":{"message":"?","type":"api_error","param":null,"code":null}}`},
	}, {
		name:   "an error event without an error",
		stream: anthEvent(`{"type":"error"}`),
		want:   []string{upstream("error event without an error")},
	}, {
		name:   "the end before message_stop",
		stream: anthSSEStart + anthSSEHello,
		want:   []string{anthChunkRole, anthChunkHello, upstream("the stream ended before message_stop")},
	}, {
		name: "nothing at all",
		want: []string{upstream("the stream ended before message_stop")},
	}, {
		name:   "data that is not JSON",
		stream: anthSSEStart + "data: {nope\n\n",
		want:   []string{anthChunkRole, upstream("event: invalid character 'n' looking for beginning of object key string")},
	}, {
		name:   "a type that is not a string",
		stream: anthSSEStart + "data: {\"type\":5}\n\n",
		want:   []string{anthChunkRole, upstream("event: json: cannot unmarshal number into Go struct field anthropicEvent.type of type string")},
	}, {
		name:   "an event without a type",
		stream: anthSSEStart + "data: {}\n\n",
		want:   []string{anthChunkRole, upstream("event without a type")},
	}, {
		name:   "text that is not a string",
		stream: anthSSEStart + anthEvent(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":7}}`),
		want:   []string{anthChunkRole, upstream("event: json: cannot unmarshal number into Go struct field .delta.text of type string")},
	}, {
		name:   "a delta before message_start",
		stream: anthSSEHello,
		want:   []string{upstream(`event "content_block_delta" before message_start`)},
	}, {
		name:   "a second message_start",
		stream: anthSSEStart + anthSSEStart,
		want:   []string{anthChunkRole, upstream("a second message_start")},
	}, {
		name:   "message_start without a message",
		stream: anthEvent(`{"type":"message_start"}`),
		want:   []string{upstream("message_start without a message")},
	}, {
		name:   "content_block_delta without a delta",
		stream: anthSSEStart + anthEvent(`{"type":"content_block_delta","index":0}`),
		want:   []string{anthChunkRole, upstream("content_block_delta without a delta")},
	}, {
		name:   "a line over the bound",
		stream: anthSSEStart + "data: " + long + "\n\n" + anthSSEStop,
		want:   []string{anthChunkRole, upstream("reading the stream: bufio.Scanner: token too long")},
	}, {
		name:   "an event over the bound in short lines",
		stream: anthSSEStart + strings.Repeat("data: "+long[:1000]+"\n", anthropicMaxLine/1000+1) + "\n" + anthSSEStop,
		want:   []string{anthChunkRole, upstream("event longer than 1048576 bytes")},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out := openAIStream(io.NopCloser(strings.NewReader(tc.stream)), "gpt-route", true)
			defer out.Close()
			anthWantEvents(t, anthReadStream(t, out, time.Now()), tc.want...)
		})
	}
}

// A line just under the bound is an event like any other.
func TestAnthropicStreamLongLine(t *testing.T) {
	text := strings.Repeat("a", anthropicMaxLine-200)
	delta := anthEvent(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + text + `"}}`)
	out := openAIStream(io.NopCloser(strings.NewReader(anthSSEStart+delta+anthSSEStop)), "gpt-route", false)
	defer out.Close()
	got := anthReadStream(t, out, time.Now())
	anthWantEvents(t, got, anthChunkRole, strings.Replace(anthChunkHello, "Hello", text, 1), anthChunkFinish, anthChunkDone)
}

// Each OpenAI chunk can be read as soon as the Anthropic event that makes
// it has been written, before the next one exists; after message_stop the
// stream ends without waiting for the upstream to close.
func TestAnthropicStreamIncremental(t *testing.T) {
	pr, pw := io.Pipe()
	out := openAIStream(pr, "gpt-route", true)
	t.Cleanup(func() {
		out.Close()
		pw.Close()
	})
	br := bufio.NewReader(out)
	for _, step := range []struct {
		write string
		want  string
	}{
		{anthSSEStart, anthChunkRole},
		{anthSSEBlock + anthSSEPing + anthSSEHello, anthChunkHello},
		{anthSSEBang, anthChunkBang},
		{anthSSEBlockEnd + anthSSEDelta, anthChunkFinish},
		{anthSSEStop, anthChunkUsage},
		{"", anthChunkDone},
	} {
		if step.write != "" {
			go func() { _, _ = io.WriteString(pw, step.write) }()
		}
		got := anthNextEvent(t, br)
		if step.want == anthChunkDone {
			if got != anthChunkDone {
				t.Fatalf("got %s, want %s", got, anthChunkDone)
			}
			continue
		}
		anthJSONEqual(t, anthUncreated(t, []byte(got), time.Now().Add(-time.Minute)), step.want)
	}
	if got := anthNextEvent(t, br); got != "EOF" {
		t.Errorf("after [DONE]: %q, want the end", got)
	}
}

// anthNextEvent reads the data of the next event from br, or says why there
// is none; it fails t if none comes within 5 seconds.
func anthNextEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		line, err := br.ReadString('\n')
		if err == nil {
			var blank string
			blank, err = br.ReadString('\n')
			if err == nil && blank != "\n" {
				err = fmt.Errorf("no blank line after %q", line)
			}
		}
		if err != nil {
			got <- err.Error()
			return
		}
		got <- strings.TrimSuffix(strings.TrimPrefix(line, "data: "), "\n")
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no chunk within 5s: the translation waits for more than one event")
		return ""
	}
}

// Closing the translated stream closes the upstream, and ends a Read that
// waits for it.
func TestAnthropicStreamClose(t *testing.T) {
	pr, pw := io.Pipe()
	out := openAIStream(pr, "gpt-route", false)
	done := make(chan error, 1)
	go func() {
		_, err := out.Read(make([]byte, 512))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the Read wait on the pipe
	if err := out.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		t.Logf("the waiting Read ended with %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Read")
	}
	if _, err := pw.Write([]byte(anthSSEStart)); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("writing upstream after Close: %v, want %v", err, io.ErrClosedPipe)
	}
	if err := out.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if n, err := out.Read(make([]byte, 512)); n != 0 || err == nil {
		t.Errorf("Read after Close = %d, %v; want an error", n, err)
	}
}

// anthFakeServer is a Messages API server: it checks each request is one
// the Messages API accepts, with only its fields, and answers "You said:
// " and the last user text, as one message or as a stream of words. The
// model "overloaded" gets Anthropic's 529.
func anthFakeServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model         string             `json:"model"`
			MaxTokens     int                `json:"max_tokens"`
			System        string             `json:"system"`
			Messages      []anthropicMessage `json:"messages"`
			Metadata      map[string]string  `json:"metadata"`
			StopSequences []string           `json:"stop_sequences"`
			Stream        bool               `json:"stream"`
			Temperature   *float64           `json:"temperature"`
			TopP          *float64           `json:"top_p"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || r.URL.Path != "/v1/messages" || req.MaxTokens < 1 || len(req.Messages) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad request: %v"}}`, err)
			return
		}
		for i, m := range req.Messages {
			if want := [2]string{"user", "assistant"}[i%2]; m.Role != want || len(m.Content) == 0 {
				t.Errorf("message %d: role %q with %d blocks, want %s with some", i, m.Role, len(m.Content), want)
			}
			for _, b := range m.Content {
				if b.Type != "text" || strings.TrimSpace(b.Text) == "" {
					t.Errorf("message %d: block %+v", i, b)
				}
			}
		}
		if req.Model == "overloaded" {
			w.WriteHeader(529)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}`)
			return
		}
		last := req.Messages[len(req.Messages)-1].Content
		words := strings.Fields("You said: " + last[len(last)-1].Text)
		if !req.Stream {
			_ = json.NewEncoder(w).Encode(map[string]any{
				"id": "msg_rt", "type": "message", "role": "assistant", "model": req.Model,
				"content":     []any{map[string]any{"type": "text", "text": strings.Join(words, " ")}},
				"stop_reason": "end_turn", "usage": map[string]any{"input_tokens": 9, "output_tokens": len(words)},
			})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(data string) {
			_, _ = io.WriteString(w, anthEvent(data))
			w.(http.Flusher).Flush()
		}
		send(`{"type":"message_start","message":{"id":"msg_rt","type":"message","role":"assistant","content":[],"model":"` + req.Model + `","usage":{"input_tokens":9,"output_tokens":1}}}`)
		send(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		for i, word := range words {
			if i > 0 {
				word = " " + word
			}
			text, _ := json.Marshal(word)
			send(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":` + string(text) + `}}`)
			send(`{"type":"ping"}`)
		}
		send(`{"type":"content_block_stop","index":0}`)
		send(fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, len(words)))
		send(`{"type":"message_stop"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A chat request goes to a Messages API server and its answer comes back
// in OpenAI's shape, the same text whether streamed or not.
func TestAnthropicRoundTrip(t *testing.T) {
	srv := anthFakeServer(t)
	post := func(t *testing.T, request string) (*http.Response, bool) {
		t.Helper()
		body, stream, err := anthropicRequest([]byte(request))
		if err != nil {
			t.Fatalf("anthropicRequest: %v", err)
		}
		resp, err := http.Post(srv.URL+"/v1/messages", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp, stream
	}
	const conversation = `"messages":[{"role":"system","content":"Echo."},{"role":"user","content":"Hi"},
		{"role":"user","content":[{"type":"text","text":"there"}]},{"role":"assistant","content":"Hello."},
		{"role":"developer","content":"Be <kind>."},{"role":"user","content":"Tell me & more"}]`
	const want = "You said: Tell me & more"

	t.Run("whole", func(t *testing.T) {
		resp, stream := post(t, `{"model":"claude-x","temperature":0.2,"stop":"\n\nHuman:","user":"u-1",`+conversation+`}`)
		if stream || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %v, status %s", stream, resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		out, err := openAIResponse(body)
		if err != nil {
			t.Fatalf("openAIResponse: %v", err)
		}
		anthJSONEqual(t, anthUncreated(t, out, time.Now().Add(-time.Minute)), `{"id":"msg_rt","object":"chat.completion","created":0,"model":"claude-x",
			"choices":[{"index":0,"message":{"role":"assistant","content":"`+want+`","refusal":null},"logprobs":null,"finish_reason":"stop"}],
			"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}`)
	})
	t.Run("streamed", func(t *testing.T) {
		resp, stream := post(t, `{"model":"claude-x","stream":true,"max_completion_tokens":50,`+conversation+`}`)
		if !stream || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %v, status %s", stream, resp.Status)
		}
		out := openAIStream(resp.Body, "gpt-route", true)
		defer out.Close()
		events := anthReadStream(t, out, time.Now().Add(-time.Minute))
		var text strings.Builder
		for _, e := range events[:len(events)-2] {
			var c struct {
				Choices []struct {
					Delta        struct{ Content string }
					FinishReason *string `json:"finish_reason"`
				}
			}
			if err := json.Unmarshal([]byte(e), &c); err != nil || len(c.Choices) != 1 {
				t.Fatalf("chunk %s: %v", e, err)
			}
			text.WriteString(c.Choices[0].Delta.Content)
		}
		if text.String() != want {
			t.Errorf("streamed text %q, want %q", text.String(), want)
		}
		anthWantEvents(t, events[len(events)-3:], strings.Replace(anthChunkFinish, "msg_1", "msg_rt", 1),
			`{"id":"msg_rt","object":"chat.completion.chunk","created":0,"model":"gpt-route","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}`,
			anthChunkDone)
	})
	t.Run("error", func(t *testing.T) {
		resp, _ := post(t, `{"model":"overloaded",`+conversation+`}`)
		if resp.StatusCode != 529 {
			t.Fatalf("status %s, want 529", resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		anthJSONEqual(t, anthropicError(body), `{"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}}`)
	})
}

// Whatever the upstream sends, the translated stream ends, without a
// panic, as well-formed OpenAI events: chunks, then [DONE] or one error.
func FuzzOpenAIStream(f *testing.F) {
	for _, seed := range []string{
		anthropicSSE,
		strings.ReplaceAll(anthropicSSE, "\n", "\r\n"),
		anthSSEStart + anthSSEHello,
		anthSSEStart + anthSSEOverload,
		anthSSEHello + anthSSEStop,
		anthSSEStart + anthSSEStart,
		"data: {nope\n\n",
		"data: " + strings.Repeat("a", 100) + "\ndata: \n\n",
		":\n\nevent: x\n\n\n\ndata\n\n",
		"",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, includeUsage bool) {
		out := openAIStream(io.NopCloser(bytes.NewReader(data)), "m", includeUsage)
		defer out.Close()
		b, err := io.ReadAll(io.LimitReader(out, 64<<20))
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		events, err := anthSplitSSE(b)
		if err != nil {
			t.Fatalf("%v in %q", err, anthClip(b))
		}
		if len(events) == 0 {
			t.Fatal("no event at all")
		}
		for i, e := range events {
			last := i == len(events)-1
			if e == anthChunkDone {
				if !last {
					t.Fatalf("[DONE] before event %d", i+1)
				}
				continue
			}
			var c struct {
				Object string           `json:"object"`
				Error  *json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal([]byte(e), &c); err != nil {
				t.Fatalf("event %d is not JSON: %v", i, err)
			}
			switch {
			case c.Error != nil && !last:
				t.Fatalf("event %d after an error", i+1)
			case c.Error == nil && c.Object != "chat.completion.chunk":
				t.Fatalf("event %d is neither a chunk nor an error: %s", i, e)
			case c.Error == nil && last:
				t.Fatal("the stream ends with neither [DONE] nor an error")
			}
		}
	})
}

// Whatever the client sends, a request is refused with a kind of
// refusal, or translated into one the Messages API accepts.
func FuzzAnthropicRequest(f *testing.F) {
	f.Add([]byte(anthropicValidRequest))
	f.Add([]byte(`{"model":"m","max_tokens":5,"stop":["x"],"stream":true,"user":"u","messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":"b "},{"role":"assistant","content":"c"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"tool","content":"x"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"  "}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, _, err := anthropicRequest(body)
		if err != nil {
			if !errors.Is(err, errAnthropicInvalid) && !errors.Is(err, errAnthropicUnsupported) {
				t.Fatalf("an unclassified refusal: %v", err)
			}
			return
		}
		var req struct {
			Model     string             `json:"model"`
			MaxTokens int64              `json:"max_tokens"`
			Messages  []anthropicMessage `json:"messages"`
		}
		if err := json.Unmarshal(out, &req); err != nil {
			t.Fatalf("output is not JSON: %v", err)
		}
		if req.Model == "" || req.MaxTokens < 1 || len(req.Messages) == 0 {
			t.Fatalf("output lacks what the Messages API requires: %s", out)
		}
		for i, m := range req.Messages {
			if i > 0 && m.Role == req.Messages[i-1].Role || len(m.Content) == 0 {
				t.Fatalf("message %d breaks alternation or is empty: %s", i, out)
			}
			for _, b := range m.Content {
				if strings.TrimSpace(b.Text) == "" {
					t.Fatalf("message %d has a blank block: %s", i, out)
				}
			}
		}
	})
}

// Whatever the upstream answers, a response is translated into JSON or
// refused as malformed, and an error body comes back as JSON or as it
// was.
func FuzzOpenAIResponse(f *testing.F) {
	f.Add([]byte(anthropicValidResponse))
	f.Add([]byte(`{"type":"error","error":{"type":"api_error","message":"x"}}`))
	f.Add([]byte(`{"type":"message","content":[{"type":"text","text":"a"},{"type":"tool_use"}],"stop_reason":"tool_use","usage":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := openAIResponse(body)
		switch {
		case err != nil && !errors.Is(err, errAnthropicUpstream):
			t.Fatalf("an unclassified failure: %v", err)
		case err == nil && !json.Valid(out):
			t.Fatalf("output is not JSON: %s", out)
		}
		if e := anthropicError(body); !bytes.Equal(e, body) && !json.Valid(e) {
			t.Fatalf("translated error is not JSON: %s", e)
		}
	})
}
