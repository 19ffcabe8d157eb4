package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// uidMark stands for the request's uid in a review template.
const uidMark = "@@UID@@"

// review is an AdmissionReview of one Pod, split at its uid: each request
// is prefix + uid + suffix, so sending it costs no JSON encoding.
type review struct{ prefix, suffix []byte }

func (r review) body(uid string) []byte {
	b := make([]byte, 0, len(r.prefix)+len(uid)+len(r.suffix))
	return append(append(append(b, r.prefix...), uid...), r.suffix...)
}

// newReview is the review the API server sends for creating a pod (as a
// ReplicaSet's controller creates it, after the admission plugins that
// default it) whose one container runs img.
func newReview(img name.Digest, i int) (review, error) {
	podName := fmt.Sprintf("gateway-7c9f5d%04x-%05x", i%0x10000, i%0x100000)
	pod := corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "gateway-7c9f5d-", Namespace: "apps",
			Labels:      map[string]string{"app.kubernetes.io/name": "gateway", "app.kubernetes.io/part-of": "trustgate", "pod-template-hash": "7c9f5d"},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "gateway-7c9f5d",
				UID: "5b1c2f0e-8d0a-4a43-9b7e-3f0f6c1d2e4a", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "gateway",
				Image: img.String(),
				Args:  []string{"--config", "/etc/trustgate/gateway.yaml"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env:   []corev1.EnvVar{{Name: "GOMEMLIMIT", Value: "200MiB"}, {Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/trustgate", ReadOnly: true},
					{Name: "kube-api-access-x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
					PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3},
				TerminationMessagePath:   corev1.TerminationMessagePathDefault,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullIfNotPresent,
				SecurityContext: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gateway"}, DefaultMode: ptr.To[int32](0o644)}}},
				{Name: "kube-api-access-x7k2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](0o644), Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
				}}}},
			},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "default",
			SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532)},
			SchedulerName:                 corev1.DefaultSchedulerName,
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			Priority:           ptr.To[int32](0),
			EnableServiceLinks: ptr.To(true),
			PreemptionPolicy:   ptr.To(corev1.PreemptLowerPriority),
		},
	}
	raw, err := json.Marshal(&pod)
	if err != nil {
		return review{}, err
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:             types.UID(uidMark),
			Kind:            metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:        metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			RequestKind:     &metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			RequestResource: &metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Name:            podName,
			Namespace:       "apps",
			Operation:       admissionv1.Create,
			UserInfo:        authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller", UID: "0c4a7d8e-2b1f-4c3d-9e5a-6f7b8c9d0e1f", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}},
			Object:          runtime.RawExtension{Raw: raw},
			DryRun:          ptr.To(false),
			Options:         runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		},
	}
	body, err := json.Marshal(&ar)
	if err != nil {
		return review{}, err
	}
	before, after, ok := bytes.Cut(body, []byte(uidMark))
	if !ok || bytes.Contains(after, []byte(uidMark)) {
		return review{}, errors.New("the review template does not hold its uid once")
	}
	return review{prefix: before, suffix: after}, nil
}

// target is the webhook as the load generator sees it.
type target struct {
	url     string
	client  *http.Client
	reviews []review               // request i sends reviews[i % len]
	run     string                 // part of each uid, so that no two runs share one
	proto   atomic.Pointer[string] // the protocol of the first answer
}

// Kinds of error, as the report counts them.
const (
	errTransport = "transport"
	errStatus    = "HTTP status"
	errAnswer    = "not an AdmissionReview"
	errUID       = "wrong uid"
	errVerdict   = "wrong verdict"
	errNotSent   = "not sent in time"
)

// failure is a request's error and its kind.
type failure struct {
	kind string
	err  error
}

func (f *failure) Error() string { return f.kind + ": " + f.err.Error() }

func fail(kind string, format string, args ...any) error {
	return &failure{kind: kind, err: fmt.Errorf(format, args...)}
}

// do sends review i and checks the answer: a 200 with an AdmissionReview
// for its uid admitting the pod with no warnings.
func (t *target) do(ctx context.Context, i int) error {
	uid := fmt.Sprintf("%s-0000-4000-8000-%012x", t.run, i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.reviews[i%len(t.reviews)].body(uid)))
	if err != nil {
		return fail(errTransport, "%w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return fail(errTransport, "%w", err)
	}
	defer resp.Body.Close()
	if t.proto.Load() == nil {
		t.proto.CompareAndSwap(nil, &resp.Proto)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(errTransport, "reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail(errStatus, "%d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil {
		return fail(errAnswer, "%w", err)
	}
	switch r := ar.Response; {
	case ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" || r == nil:
		return fail(errAnswer, "apiVersion %q kind %q response %v", ar.APIVersion, ar.Kind, r != nil)
	case string(r.UID) != uid:
		return fail(errUID, "answered %q, asked %q", r.UID, uid)
	case !r.Allowed:
		msg := ""
		if r.Result != nil {
			msg = r.Result.Message
		}
		return fail(errVerdict, "denied: %s", msg)
	case len(r.Warnings) > 0 || r.Result != nil:
		return fail(errVerdict, "admitted with warnings %q", r.Warnings)
	}
	return nil
}

// errorCount counts a run's errors by kind, keeping the first of each.
type errorCount struct {
	mu    sync.Mutex
	n     int
	kinds map[string]int
	first map[string]string
}

func (c *errorCount) add(err error) {
	kind := errTransport
	var f *failure
	if errors.As(err, &f) {
		kind = f.kind
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kinds == nil {
		c.kinds, c.first = map[string]int{}, map[string]string{}
	}
	c.n++
	c.kinds[kind]++
	if _, ok := c.first[kind]; !ok {
		c.first[kind] = err.Error()
	}
}

// summary lists the kinds, most frequent first, each with its first error.
func (c *errorCount) summary() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var kinds []string
	for k := range c.kinds {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int { return c.kinds[b] - c.kinds[a] })
	var out []string
	for _, k := range kinds {
		msg := c.first[k]
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		out = append(out, fmt.Sprintf("%d × %s (first: %s)", c.kinds[k], k, msg))
	}
	return out
}

// measurement is one measured run.
type measurement struct {
	scenario string
	mode     string  // "open loop" or "closed loop"
	rate     float64 // offered, open loop
	clients  int     // closed loop
	duration time.Duration
	sent     int // requests sent
	ok       int // answered as expected
	errs     *errorCount
	lat      []time.Duration // of the requests answered as expected
	// lag is how late the generator sent each request after its due time
	// (open loop): its own delay, already part of lat.
	lagP99, lagMax time.Duration
	elapsed        time.Duration
	achieved       float64 // expected answers per second
	cpu            float64 // this process's CPU over the run, in cores
	others         float64 // the rest of the machine's, in cores (-1: unknown)
	registry       int64   // registry requests during the run
	registryConns  int64   // connections the registry accepted during it
}

func (m *measurement) errors() int { return m.errs.n }

// registryCounters are the registry's counts of requests and connections.
type registryCounters struct{ requests, conns *atomic.Int64 }

func (c registryCounters) read() [2]int64 { return [2]int64{c.requests.Load(), c.conns.Load()} }

func (c registryCounters) since(then [2]int64) (requests, conns int64) {
	now := c.read()
	return now[0] - then[0], now[1] - then[1]
}

// openLoop offers rate reviews per second for d from a pool of workers.
// Request i is due at start + i/rate whether or not earlier ones were
// answered, and its latency runs from that due time to the end of its
// answer: a request sent late, because every worker was busy or the
// generator's timer woke late, counts the wait (no coordinated omission).
// After d plus grace no new request is sent (each one not sent is an
// error), so a run is bounded even against a webhook that stalls.
func openLoop(ctx context.Context, t *target, workers int, rate float64, d, grace time.Duration, first int, reg registryCounters) *measurement {
	n := int(rate * d.Seconds())
	interval := float64(time.Second) / rate
	lat := make([]time.Duration, n)
	lag := make([]time.Duration, n)
	ok := make([]bool, n)
	sent := make([]bool, n)
	m := &measurement{mode: "open loop", rate: rate, duration: d, errs: &errorCount{}}
	var next atomic.Int64
	start := time.Now().Add(20 * time.Millisecond)
	stopAt := start.Add(d + grace)
	rctx, cancel := context.WithDeadline(ctx, stopAt.Add(10*time.Second))
	defer cancel()
	cpu0, busy0, reg0 := selfCPU(), machineBusy(), reg.read()
	var last atomic.Int64 // the latest answer, in ns after start
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if time.Now().After(stopAt) || rctx.Err() != nil {
					continue // counted below as not sent
				}
				due := start.Add(time.Duration(float64(i) * interval))
				sleepUntil(due)
				lag[i], sent[i] = time.Since(due), true
				err := t.do(rctx, first+i)
				end := time.Now()
				for {
					l := last.Load()
					if v := int64(end.Sub(start)); v <= l || last.CompareAndSwap(l, v) {
						break
					}
				}
				if err != nil {
					m.errs.add(err)
					continue
				}
				lat[i], ok[i] = end.Sub(due), true
			}
		})
	}
	wg.Wait()
	m.elapsed = time.Duration(last.Load())
	m.cpu, m.others = cpuUse(cpu0, busy0, time.Since(start))
	m.registry, m.registryConns = reg.since(reg0)
	var lags []time.Duration
	for i := range n {
		switch {
		case ok[i]:
			m.lat = append(m.lat, lat[i])
		case !sent[i]:
			m.errs.add(fail(errNotSent, "request %d of %d: the generator stopped %s after the run's end", i, n, grace))
		}
		if sent[i] {
			m.sent++
			lags = append(lags, lag[i])
		}
	}
	m.ok = len(m.lat)
	q := quantiles(lags, .99, 1)
	m.lagP99, m.lagMax = q[0], q[1]
	if m.elapsed > 0 {
		m.achieved = float64(m.ok) / m.elapsed.Seconds()
	}
	return m
}

// closedLoop runs clients senders for d, each sending its next review as
// soon as its last is answered.
func closedLoop(ctx context.Context, t *target, clients int, d time.Duration, first int, reg registryCounters) *measurement {
	m := &measurement{mode: "closed loop", clients: clients, duration: d, errs: &errorCount{}}
	var next atomic.Int64
	lats := make([][]time.Duration, clients)
	var sent atomic.Int64
	start := time.Now()
	end := start.Add(d)
	cpu0, busy0, reg0 := selfCPU(), machineBusy(), reg.read()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				i := int(next.Add(1) - 1)
				t0 := time.Now()
				sent.Add(1)
				if err := t.do(ctx, first+i); err != nil {
					m.errs.add(err)
					continue
				}
				lats[c] = append(lats[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	m.elapsed = time.Since(start)
	m.cpu, m.others = cpuUse(cpu0, busy0, m.elapsed)
	m.registry, m.registryConns = reg.since(reg0)
	for _, l := range lats {
		m.lat = append(m.lat, l...)
	}
	m.sent, m.ok = int(sent.Load()), len(m.lat)
	m.achieved = float64(m.ok) / m.elapsed.Seconds()
	return m
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuUse is the CPU this process and the rest of the machine used since
// self0 and busy0 were read, over elapsed, in cores.
func cpuUse(self0, busy0 time.Duration, elapsed time.Duration) (self, others float64) {
	self = (selfCPU() - self0).Seconds() / elapsed.Seconds()
	busy := machineBusy()
	if busy0 < 0 || busy < 0 {
		return self, -1
	}
	return self, max((busy-busy0).Seconds()/elapsed.Seconds()-self, 0)
}

// machineBusy is the CPU time the whole machine has spent not idle, from
// /proc/stat (-1 when it cannot be read).
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		// user nice system idle iowait irq softirq steal (guest time is
		// in user already)
		if i < 8 && i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// clockTicks is USER_HZ, /proc/stat's unit: 100 on every Linux platform Go
// runs on.
const clockTicks = 100

// quantiles are the nearest-rank q-quantiles of samples (0 for none).
func quantiles(samples []time.Duration, qs ...float64) []time.Duration {
	s := slices.Clone(samples)
	slices.Sort(s)
	out := make([]time.Duration, len(qs))
	for j, q := range qs {
		if len(s) == 0 {
			continue
		}
		i := int(math.Ceil(q*float64(len(s)))) - 1
		out[j] = s[min(max(i, 0), len(s)-1)]
	}
	return out
}
