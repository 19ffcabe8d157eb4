package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// model is the one model the deployment routes.
const model = "gpt-4o-mini"

// stub is the fast upstream: an in-process OpenAI-compatible server on
// 127.0.0.1 that answers every chat completion with the same bytes.
type stub struct {
	srv    *http.Server
	url    string // http://127.0.0.1:PORT
	chat   []byte // a chat.completion of about 1 KB
	length string
	events [][]byte // three chunks and [DONE], SSE-framed
}

func startStub() (*stub, error) {
	s := &stub{chat: chatCompletion(), events: streamEvents()}
	s.length = strconv.Itoa(len(s.chat))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("stub: %w", err)
	}
	s.url = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.serve)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *stub) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		_ = s.srv.Close()
	}
}

func (s *stub) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading the request", http.StatusBadRequest)
		return
	}
	if !bytes.Contains(body, []byte(`"stream":true`)) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", s.length)
		_, _ = w.Write(s.chat)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	f, _ := w.(http.Flusher)
	for _, e := range s.events {
		_, _ = w.Write(e)
		if f != nil {
			f.Flush()
		}
	}
}

// chatCompletion is a fixed answer of about 1 KB.
func chatCompletion() []byte {
	content := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 17)
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-bench", "object": "chat.completion", "created": 1767225600, "model": model,
		"system_fingerprint": "fp_bench",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "logprobs": nil,
			"message": map[string]any{"role": "assistant", "content": content, "refusal": nil}}},
		"usage": map[string]any{"prompt_tokens": 240, "completion_tokens": 170, "total_tokens": 410},
	})
	return b
}

func streamEvents() [][]byte {
	var out [][]byte
	for i, word := range []string{"Hello", " from", " the stub"} {
		choice := map[string]any{"index": 0, "delta": map[string]any{"content": word}, "finish_reason": nil}
		if i == 2 {
			choice["finish_reason"] = "stop"
		}
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1767225600,
			"model": model, "choices": []any{choice}})
		out = append(out, []byte("data: "+string(b)+"\n\n"))
	}
	return append(out, []byte("data: [DONE]\n\n"))
}

// requestBody is the client's chat request: about 1 KB of JSON.
func requestBody(stream bool) []byte {
	content := strings.Repeat("Summarise this sentence for me, please. ", 23)
	b, _ := json.Marshal(map[string]any{"model": model, "stream": stream, "max_tokens": 256, "temperature": 0,
		"messages": []any{
			map[string]any{"role": "system", "content": "You are a terse assistant."},
			map[string]any{"role": "user", "content": content},
		}})
	return b
}
