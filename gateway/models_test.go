package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/gateway/clientkeys"
	"github.com/trustgate/trustgate/oms/omstest"
)

// withSignedModel adds a local model folder, signed in the OMS format by
// the policy's release key (model.sig inside it, as model_signing lays it
// out), served by the provider stub at baseURL; the policy binds it to
// that provider and to its signature alone (no digest pins its files).
func (d *deployment) withSignedModel(baseURL string) string {
	t := d.t
	t.Helper()
	model := filepath.Join(d.dir, "models", "guard-llm")
	for name, content := range map[string]string{
		"config.json": `{"architectures": ["LlamaForCausalLM"]}`, "model.safetensors": "weights of the guard",
		"tokenizer/tokenizer.json": `{"vocab": {}}`,
	} {
		p := filepath.Join(model, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sig, _ := omstest.ModelSignature(t, model, d.release, "model.sig")
	if err := os.WriteFile(filepath.Join(model, "model.sig"), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	d.manifest["providers"] = append(d.manifest["providers"].([]any),
		map[string]any{"name": "local", "baseURL": baseURL, "credential": map[string]any{"env": "LOCAL_API_KEY"}})
	d.manifest["models"] = append(d.manifest["models"].([]any),
		map[string]any{"name": "guard-llm", "provider": "local", "file": "models/guard-llm", "signature": "models/guard-llm/model.sig"})
	d.env = append(d.env, "LOCAL_API_KEY=sk-local-test-0123456789")
	prev := d.edit
	d.edit = func(p map[string]any) {
		for _, c := range p["components"].([]any) {
			if m := c.(map[string]any); m["name"] == "guard-llm" {
				delete(m, "digests")
				m["signers"] = map[string]any{"anyOf": []any{"release"}}
			}
		}
		if prev != nil {
			prev(p)
		}
	}
	return model
}

// withClientKey configures the gateway's client keys and returns one.
func (d *deployment) withClientKey() string {
	d.t.Helper()
	keys := filepath.Join(filepath.Dir(d.dir), "client-keys.json")
	key, _, err := clientkeys.Add(keys, "test")
	if err != nil {
		d.t.Fatal(err)
	}
	gc, _ := d.manifest["gatewayConfig"].(map[string]any)
	if gc == nil {
		gc = map[string]any{}
	}
	gc["clientKeys"] = keys
	d.manifest["gatewayConfig"] = gc
	return key
}

// chat posts a chat completion for model and returns the status and the
// error code of an OpenAI-shaped error body ("" for none).
func chat(t *testing.T, addr, key, model string) (int, string) {
	t.Helper()
	body := `{"model": "` + model + `", "messages": [{"role": "user", "content": "hello"}]}`
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("the answer is not JSON: %s", raw)
	}
	if e.Error == nil {
		return resp.StatusCode, ""
	}
	if e.Error.Message == "" || e.Error.Type == "" {
		t.Errorf("error body not in OpenAI's shape: %s", raw)
	}
	return resp.StatusCode, e.Error.Code
}

// A local model folder signed in the OMS format by a policy signer is
// verified at start-up; one byte changed in one of its files and the real
// gateway refuses to start, naming the model, the rule and the file, and
// binds no port.
func TestTamperedSignedModelRefused(t *testing.T) {
	d := newDeployment(t).withoutPython()
	model := d.withSignedModel("http://127.0.0.1:9/v1")
	d.write()
	g, err := startInProcess(t, d)
	if err != nil {
		t.Fatalf("the signed model does not verify: %v", err)
	}
	var st ModelStatus
	for _, m := range g.Status().Models {
		if m.Name == "guard-llm" {
			st = m
		}
	}
	if !st.Verified || !st.Signed || st.State != ModelServed || !strings.HasPrefix(st.Digest, "sha256:") {
		t.Fatalf("status of the signed model: %+v", st)
	}
	g.Close()
	appendByte(t, filepath.Join(model, "model.safetensors"))
	d.refused("", "refused at verify: model/guard-llm: signature: expected the files its model signature lists (signed by release)",
		`1 changed: "model.safetensors"`)
}

// A request for a model the stack serves and the policy does not name
// (the policy's default of audit let it through verification) is refused
// with an OpenAI-shaped error, and the provider never sees it; the named
// model on the same provider is served.
func TestUnnamedModelNotRouted(t *testing.T) {
	d := newDeployment(t).withoutPython()
	stub := newUpstream(t, false)
	key := d.withClientKey()
	d.manifest["providers"] = []any{map[string]any{"name": "openai", "baseURL": stub.srv.URL + "/v1", "credential": map[string]any{"env": "OPENAI_API_KEY"}}}
	d.manifest["models"] = []any{
		map[string]any{"name": "gpt-4o-mini", "provider": "openai"},
		map[string]any{"name": "shadow-model", "provider": "openai"},
	}
	d.edit = func(p map[string]any) {
		p["default"] = "audit"
		var kept []any
		for _, c := range p["components"].([]any) {
			if c.(map[string]any)["name"] != "shadow-model" {
				kept = append(kept, c)
			}
		}
		p["components"] = kept
	}
	d.write()
	g, err := startInProcess(t, d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptestServer(t, g.Handler())
	code, errCode := chat(t, srv, key, "shadow-model")
	if code != http.StatusForbidden || errCode != "model_not_allowed" {
		t.Fatalf("unnamed model: %d %q, want 403 model_not_allowed", code, errCode)
	}
	if n := len(stub.requests()); n != 0 {
		t.Fatalf("the provider saw %d request(s) for a model the policy does not name", n)
	}
	if code, errCode := chat(t, srv, key, "gpt-4o-mini"); code != http.StatusOK || errCode != "" {
		t.Fatalf("named model: %d %q, want 200", code, errCode)
	}
	if reqs := stub.requests(); len(reqs) != 1 || !strings.Contains(reqs[0].Body, `"gpt-4o-mini"`) {
		t.Fatalf("the provider saw %+v, want the one request for the named model", reqs)
	}
	for _, m := range g.Status().Models {
		if m.Name == "shadow-model" && (m.State != ModelNotNamed || m.Verified) {
			t.Errorf("status of the unnamed model: %+v", m)
		}
	}
}

// Once a local model's files drift while the gateway runs, no request is
// routed to it again (503, the provider sees nothing), and the drift is
// logged and in the status; under onDrift: stop the gateway stops.
func TestModelDriftStopsRouting(t *testing.T) {
	for _, onDrift := range []string{"disable", "stop"} {
		t.Run(onDrift, func(t *testing.T) {
			d := newDeployment(t).withoutPython()
			stub := newUpstream(t, false)
			key := d.withClientKey()
			model := d.withSignedModel(stub.srv.URL + "/v1")
			prev := d.edit
			d.edit = func(p map[string]any) {
				prev(p)
				for _, c := range p["components"].([]any) {
					if m := c.(map[string]any); m["name"] == "guard-llm" {
						m["onDrift"] = onDrift
					}
				}
			}
			d.write()
			g, err := startInProcess(t, d)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			served := make(chan error, 1)
			ready := make(chan net.Addr, 1)
			go func() { served <- g.Serve(ctx, func(a net.Addr) { ready <- a }) }()
			var addr string
			select {
			case a := <-ready:
				addr = a.String()
			case err := <-served:
				t.Fatalf("serve: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the gateway did not listen")
			}
			if code, _ := chat(t, addr, key, "guard-llm"); code != http.StatusOK {
				t.Fatalf("the verified model is not served: %d", code)
			}
			appendByte(t, filepath.Join(model, "config.json"))
			if onDrift == "stop" {
				select {
				case err := <-served:
					var r *Refusal
					if !errors.As(err, &r) || r.Component != "model/guard-llm" || r.Rule != "onDrift: stop" {
						t.Fatalf("the gateway stopped with %v, want the model's drift", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("the gateway did not stop on the model's drift")
				}
				return
			}
			waitFor(t, 20*time.Second, func() bool {
				for _, m := range g.Status().Models {
					if m.Name == "guard-llm" {
						return m.State == ModelFailed && strings.Contains(m.Reason, "drift")
					}
				}
				return false
			})
			before := len(stub.requests())
			if code, errCode := chat(t, addr, key, "guard-llm"); code != http.StatusServiceUnavailable || errCode != "model_unavailable" {
				t.Fatalf("drifted model: %d %q, want 503 model_unavailable", code, errCode)
			}
			if n := len(stub.requests()); n != before {
				t.Fatalf("the provider saw a request for the drifted model")
			}
		})
	}
}

// httptestServer serves h on 127.0.0.1 until the test ends and returns
// its address.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
