package admission

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/trustgate/trustgate/internal/safetext"
)

// maxMessage bounds a denial's message: the API server hands it to the
// client, and a pod with a thousand containers should not make it huge.
const maxMessage = 8 << 10

// maxWarnings bounds the warnings of one answer (the API server also caps
// what it passes on).
const maxWarnings = 16

// Handler answers AdmissionReviews at /validate, and serves /healthz,
// /readyz and, when Metrics is set, /metrics.
type Handler struct {
	Checker *Checker
	Metrics *Metrics
	Log     *slog.Logger
}

// ServeHTTP routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			h.log().Error("panic answering a request", "path", r.URL.Path, "panic", fmt.Sprint(v))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	switch r.URL.Path {
	case "/validate":
		h.validate(w, r)
	case "/healthz":
		_, _ = io.WriteString(w, "ok\n")
	case "/readyz":
		if h.Checker.cfg.Policy.Current() == nil {
			http.Error(w, "no signed policy loaded", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	case "/metrics":
		if h.Metrics == nil {
			http.NotFound(w, r)
			return
		}
		h.Metrics.Handler().ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return discard
}

// discard is the logger of a library left silent.
var discard = slog.New(slog.DiscardHandler)

// validate answers one AdmissionReview. A body that is not a review it can
// answer (not JSON, another version, no uid, too large) gets a 4xx, which
// the API server treats as a webhook failure: with failurePolicy Fail, the
// object is refused.
func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.badRequest(w, http.StatusMethodNotAllowed, errors.New("POST an AdmissionReview"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReviewBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		h.badRequest(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the review is over %d bytes", MaxReviewBytes))
		return
	}
	if err != nil {
		h.badRequest(w, http.StatusBadRequest, err)
		return
	}
	req, err := ParseReview(body)
	if err != nil {
		h.badRequest(w, http.StatusBadRequest, err)
		return
	}
	review := h.Decide(r.Context(), req)
	out, err := json.Marshal(review)
	if err != nil {
		h.badRequest(w, http.StatusInternalServerError, err)
		return
	}
	result := "allowed"
	if !review.Response.Allowed {
		result = "denied"
	}
	h.Metrics.review(result)
	h.log().Info("admission review", "uid", req.UID, "kind", req.Kind.Kind, "namespace", req.Namespace,
		"name", req.Name, "operation", req.Operation, "dryRun", req.DryRun != nil && *req.DryRun,
		"allowed", review.Response.Allowed, "reason", messageOf(review))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func messageOf(r *admissionv1.AdmissionReview) string {
	if r.Response.Result == nil {
		return ""
	}
	return r.Response.Result.Message
}

func (h *Handler) badRequest(w http.ResponseWriter, code int, err error) {
	h.Metrics.review("bad_request")
	msg := safetext.Clip(safetext.Line(err.Error()), 512)
	h.log().Warn("refused an admission request", "code", code, "err", msg)
	http.Error(w, msg, code)
}

// Decide answers one admission request. Only creates and updates run
// anything: a delete or a connect is allowed. A dry run gets the answer a
// real request would. The answer's uid is the request's.
func (h *Handler) Decide(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionReview {
	uid := string(req.UID)
	switch req.Operation {
	case admissionv1.Delete, admissionv1.Connect:
		return Response(uid, true, "", nil)
	case admissionv1.Create, admissionv1.Update:
	default:
		return Response(uid, false, fmt.Sprintf("trustgate: unknown operation %q", req.Operation), nil)
	}
	if len(req.Object.Raw) == 0 {
		return Response(uid, false, "trustgate: the review carries no object", nil)
	}
	wl, err := ReadWorkload(req.Kind.Group, req.Kind.Version, req.Kind.Kind, req.Object.Raw)
	if err != nil {
		return Response(uid, false, "trustgate: "+safetext.Clip(safetext.Line(err.Error()), 1024), nil)
	}
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		// What was admitted before is not judged again: a label, a
		// scale, a finalizer's removal from a terminating pod go through
		// whatever became of the policy since; a new or changed image (an
		// ephemeral container, a new tag) is judged. An old object that
		// does not read leaves every image to be judged.
		if old, err := ReadWorkload(req.Kind.Group, req.Kind.Version, req.Kind.Kind, req.OldObject.Raw); err == nil {
			wl.Images = changedImages(wl.Images, old.Images)
		}
	}
	if wl.Namespace == "" {
		wl.Namespace = req.Namespace
	}
	if wl.Name == "" {
		wl.Name = req.Name
	}
	d := h.Checker.Check(ctx, wl)
	return Response(uid, d.Allowed, safetext.Clip(safetext.Line(d.Message), maxMessage), clipWarnings(d.Warnings))
}

// changedImages are the image uses of now that were not in before: the
// same container with the same image was judged when it was admitted.
func changedImages(now, before []ImageUse) []ImageUse {
	had := map[ImageUse]bool{}
	for _, u := range before {
		had[u] = true
	}
	var out []ImageUse
	for _, u := range now {
		if !had[u] {
			out = append(out, u)
		}
	}
	return out
}

func clipWarnings(ws []string) []string {
	var out []string
	for i, w := range ws {
		if i == maxWarnings {
			out = append(out, fmt.Sprintf("trustgate: %d more warnings", len(ws)-i))
			break
		}
		out = append(out, "trustgate: "+safetext.Clip(safetext.Line(w), 1024))
	}
	return out
}

// KeyPair serves a TLS certificate from files, read again when they change
// (cert-manager renews the Secret in place), so that a renewal needs no
// restart. A pair that does not load keeps the one in force.
type KeyPair struct {
	CertFile, KeyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	modified [2]time.Time
}

// Load reads the pair now; it must succeed at start.
func (k *KeyPair) Load() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.load()
}

func (k *KeyPair) load() error {
	var mod [2]time.Time
	for i, p := range []string{k.CertFile, k.KeyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		mod[i] = fi.ModTime()
	}
	if k.cert != nil && mod == k.modified {
		return nil
	}
	c, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile)
	if err != nil {
		return fmt.Errorf("TLS key pair: %w", err)
	}
	k.cert, k.modified = &c, mod
	return nil
}

// GetCertificate is for tls.Config.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	_ = k.load() // a renewal half written keeps the pair in force
	if k.cert == nil {
		return nil, errors.New("no TLS certificate loaded")
	}
	return k.cert, nil
}

// Serve serves h over TLS on ln until ctx ends, then shuts down. The
// server's own errors (TLS handshakes that fail) go to log; nil discards
// them.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, kp *KeyPair, log *slog.Logger) error {
	if log == nil {
		log = discard
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.GetCertificate},
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-done; err == nil && !errors.Is(serr, http.ErrServerClosed) {
			err = serr
		}
		return err
	}
}
