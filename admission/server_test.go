package admission_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/trustgate/trustgate/admission"
	"github.com/trustgate/trustgate/internal/admissiontest"
)

// server is the webhook served over HTTPS on 127.0.0.1, as the API server
// reaches it.
type server struct {
	*env
	url    string
	client *http.Client
}

func newServer(t *testing.T, cfg admission.Config) *server {
	t.Helper()
	e := newEnv(t, cfg)
	metrics := admission.NewMetrics(e.src)
	cert, key, ca := admissiontest.ServingCert(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- admission.Serve(ctx, ln, &admission.Handler{Checker: e.checker, Metrics: metrics}, &admission.KeyPair{CertFile: cert, KeyFile: key}, nil)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return &server{env: e, url: "https://" + ln.Addr().String(), client: client}
}

// post sends body to /validate and returns the status and the body.
func (s *server) post(t *testing.T, body []byte) (int, []byte) {
	t.Helper()
	resp, err := s.client.Post(s.url+"/validate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// review sends a review and decodes the answer, which must be a 200
// AdmissionReview answering uid.
func (s *server) review(t *testing.T, body []byte, uid string) *admissionv1.AdmissionResponse {
	t.Helper()
	code, out := s.post(t, body)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, out)
	}
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.APIVersion != "admission.k8s.io/v1" || r.Kind != "AdmissionReview" || r.Response == nil || string(r.Response.UID) != uid {
		t.Fatalf("not an answer to %s: %s", uid, out)
	}
	return r.Response
}

func TestServerAnswers(t *testing.T) {
	s := newServer(t, admission.Config{})
	signed := s.pushSigned("trustgate/gateway:1.0")
	unsigned := s.kit.Push("trustgate/gateway:2.0")

	r := s.review(t, admissiontest.Review("uid-1", "/v1/Pod", admissiontest.Pod(signed.String()), false), "uid-1")
	if !r.Allowed {
		t.Fatalf("signed pod denied: %+v", r.Result)
	}
	for _, dry := range []bool{false, true} {
		r = s.review(t, admissiontest.Review("uid-2", "/v1/Pod", admissiontest.Pod(unsigned.String()), dry), "uid-2")
		if r.Allowed || r.Result == nil || r.Result.Code != 403 || !strings.Contains(r.Result.Message, unsigned.String()) || !strings.Contains(r.Result.Message, "no trusted signature") {
			t.Fatalf("unsigned pod (dryRun %v): %+v", dry, r.Result)
		}
	}
	deployment := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"gw"},"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"gw","image":"` + unsigned.String() + `"}]}}}}`)
	if r = s.review(t, admissiontest.Review("uid-3", "apps/v1/Deployment", deployment, false), "uid-3"); r.Allowed {
		t.Fatal("a Deployment of an unsigned image was admitted")
	}
	cronjob := []byte(`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":{"initContainers":[{"name":"i","image":"` + unsigned.String() + `"}],"containers":[{"name":"c","image":"` + signed.String() + `"}]}}}}}}`)
	if r = s.review(t, admissiontest.Review("uid-4", "batch/v1/CronJob", cronjob, false), "uid-4"); r.Allowed || !strings.Contains(r.Result.Message, "initContainers[i]") {
		t.Fatalf("a CronJob with an unsigned init container: %+v", r.Result)
	}
}

func TestServerRefusesMalformedReviews(t *testing.T) {
	s := newServer(t, admission.Config{})
	pod := admissiontest.Pod(s.kit.Host + "/trustgate/gateway@sha256:" + strings.Repeat("a", 64))
	good := admissiontest.Review("u", "/v1/Pod", pod, false)
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	request := func(m map[string]any) map[string]any { return m["request"].(map[string]any) }
	for _, c := range []struct {
		name string
		body []byte
		code int
	}{
		{"invalid JSON", []byte(`{"apiVersion":`), 400},
		{"not an object", []byte(`[]`), 400},
		{"wrong apiVersion", edit(func(m map[string]any) { m["apiVersion"] = "admission.k8s.io/v1beta1" }), 400},
		{"wrong kind", edit(func(m map[string]any) { m["kind"] = "TokenReview" }), 400},
		{"no request", edit(func(m map[string]any) { delete(m, "request") }), 400},
		{"missing uid", edit(func(m map[string]any) { delete(request(m), "uid") }), 400},
		{"a key given twice", bytes.Replace(good, []byte(`"uid":"u"`), []byte(`"uid":"u","uid":"v"`), 1), 400},
		{"over the size limit", append(append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","pad":"`), bytes.Repeat([]byte("x"), admission.MaxReviewBytes)...), `"}`...), 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, out := s.post(t, c.body); code != c.code {
				t.Fatalf("status %d, want %d: %s", code, c.code, out)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := s.client.Get(s.url + "/validate")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	// Reviews that parse but cannot be judged are denied, with the uid.
	for _, c := range []struct {
		name, want string
		body       []byte
	}{
		{"unknown kind", "a kind trustgate does not read", edit(func(m map[string]any) {
			request(m)["kind"] = map[string]string{"group": "", "version": "v1", "kind": "ConfigMap"}
		})},
		{"unknown version of a known kind", "a kind trustgate does not read", edit(func(m map[string]any) {
			request(m)["kind"] = map[string]string{"group": "apps", "version": "v1beta1", "kind": "Deployment"}
		})},
		{"no object", "no object", edit(func(m map[string]any) { delete(request(m), "object") })},
		{"unknown operation", "unknown operation", edit(func(m map[string]any) { request(m)["operation"] = "PATCH" })},
		{"the image key twice", "duplicate field", admissiontest.Review("u", "/v1/Pod",
			bytes.Replace(pod, []byte(`"image":`), []byte(`"image":"x","image":`), 1), false)},
		// Matched as the API server matches keys: "Image" is not the image
		// field, so the container has no image.
		{"a key in another case", "not an image reference", admissiontest.Review("u", "/v1/Pod",
			bytes.Replace(pod, []byte(`"image":`), []byte(`"Image":`), 1), false)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.review(t, c.body, "u")
			if r.Allowed || !strings.Contains(r.Result.Message, c.want) {
				t.Fatalf("%+v, want a denial saying %q", r.Result, c.want)
			}
		})
	}
	t.Run("delete runs nothing: allowed", func(t *testing.T) {
		body := edit(func(m map[string]any) { request(m)["operation"] = "DELETE"; delete(request(m), "object") })
		if r := s.review(t, body, "u"); !r.Allowed {
			t.Fatalf("%+v", r.Result)
		}
	})
}

func TestServerEndpoints(t *testing.T) {
	s := newServer(t, admission.Config{})
	s.review(t, admissiontest.Review("m", "/v1/Pod", admissiontest.Pod("example.com/x@sha256:"+strings.Repeat("b", 64)), false), "m")
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ok",
		"/metrics": `trustgate_admission_reviews_total{result="denied"} 1`,
	} {
		resp, err := s.client.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d, want %q in: %.2000s", path, resp.StatusCode, want, body)
		}
	}
	// Plain HTTP is not served.
	resp, err := http.Get(strings.Replace(s.url, "https://", "http://", 1) + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("served over plain HTTP")
		}
	}
}

// update is an AdmissionReview of an update of a Pod from old to now.
func update(t *testing.T, uid string, old, now []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(admissiontest.Review(uid, "/v1/Pod", now, false), &m); err != nil {
		t.Fatal(err)
	}
	req := m["request"].(map[string]any)
	req["operation"] = "UPDATE"
	req["oldObject"] = json.RawMessage(old)
	out, _ := json.Marshal(m)
	return out
}

func TestServerUpdatesJudgeWhatChanged(t *testing.T) {
	s := newServer(t, admission.Config{})
	signed := s.pushSigned("trustgate/gateway:1.0")
	unsigned := s.kit.Push("trustgate/gateway:2.0")
	// A pod admitted under an earlier policy whose image no longer passes:
	// a label, or a finalizer's removal while it terminates, goes through.
	old := admissiontest.Pod(unsigned.String())
	relabelled := bytes.Replace(old, []byte(`"namespace":"apps"`), []byte(`"namespace":"apps","labels":{"a":"b"},"deletionTimestamp":"2026-01-01T00:00:00Z"`), 1)
	if r := s.review(t, update(t, "u1", old, relabelled), "u1"); !r.Allowed {
		t.Fatalf("an update that changes no image was judged: %+v", r.Result)
	}
	// A changed image is judged.
	if r := s.review(t, update(t, "u2", admissiontest.Pod(signed.String()), admissiontest.Pod(unsigned.String())), "u2"); r.Allowed {
		t.Fatal("an update to an unsigned image was admitted")
	}
	// A new ephemeral container is judged; the old containers are not.
	debug := bytes.Replace(admissiontest.Pod(signed.String()), []byte(`}]}}`), []byte(`}],"ephemeralContainers":[{"name":"debug","image":"`+unsigned.String()+`"}]}}`), 1)
	if r := s.review(t, update(t, "u3", admissiontest.Pod(signed.String()), debug), "u3"); r.Allowed || !strings.Contains(r.Result.Message, "ephemeralContainers[debug]") {
		t.Fatalf("an unsigned ephemeral container: %+v", r.Result)
	}
	// An old object that does not read leaves everything to be judged.
	if r := s.review(t, update(t, "u4", []byte(`{"spec":{"containers":[{"image":"x","image":"y"}]}}`), admissiontest.Pod(unsigned.String())), "u4"); r.Allowed {
		t.Fatal("an unreadable old object let an unsigned image through")
	}
}

func TestServerIgnoresUnknownFields(t *testing.T) {
	s := newServer(t, admission.Config{})
	signed := s.pushSigned("trustgate/gateway:1.0")
	// A field a newer API server knows and this webhook does not.
	pod := bytes.Replace(admissiontest.Pod(signed.String()), []byte(`"containers":`), []byte(`"futureField":{"x":1},"containers":`), 1)
	if r := s.review(t, admissiontest.Review("f", "/v1/Pod", pod, false), "f"); !r.Allowed {
		t.Fatalf("a pod with an unknown field: %+v", r.Result)
	}
}

func TestServerJudgesImageVolumes(t *testing.T) {
	s := newServer(t, admission.Config{})
	signed := s.pushSigned("trustgate/gateway:1.0")
	unsigned := s.kit.Push("trustgate/plugins/model:1.0")
	// A model mounted as an image volume is pulled like a container image.
	pod := bytes.Replace(admissiontest.Pod(signed.String()), []byte(`}]}}`), []byte(`}],"volumes":[{"name":"weights","image":{"reference":"`+unsigned.String()+`"}}]}}`), 1)
	if r := s.review(t, admissiontest.Review("v", "/v1/Pod", pod, false), "v"); r.Allowed || !strings.Contains(r.Result.Message, "volumes[weights]") {
		t.Fatalf("an unsigned image volume: %+v", r.Result)
	}
}
