package admission

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustgate/trustgate/policy"
)

// Metrics are the webhook's Prometheus metrics, on a registry of its own.
// Labels are verdicts and results, never an image name a pod chose (that
// would let any pod grow the series without bound). A nil *Metrics counts
// nothing.
type Metrics struct {
	reg            *prometheus.Registry
	reviews        *prometheus.CounterVec
	images         *prometheus.CounterVec
	cacheLookups   *prometheus.CounterVec
	latency        prometheus.Histogram
	registryErrors prometheus.Counter
	reloads        *prometheus.CounterVec
}

// NewMetrics makes the metrics, with gauges that read the policy in force
// from src.
func NewMetrics(src *PolicySource) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_admission_reviews_total", Help: "Admission reviews answered, by result (allowed, denied, bad_request).",
		}, []string{"result"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_admission_image_verdicts_total", Help: "Verdicts on images, by verdict (allowed, warned, denied).",
		}, []string{"verdict"}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_admission_cache_lookups_total", Help: "Verdict cache lookups, by result (hit, miss).",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trustgate_admission_review_duration_seconds", Help: "Time to decide on one admission review.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		registryErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trustgate_admission_registry_errors_total", Help: "Images whose registry could not be read in time.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_admission_policy_reloads_total", Help: "Policy reloads, by result (loaded, refused).",
		}, []string{"result"}),
	}
	version := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustgate_admission_policy_version", Help: "The version of the signed policy in force (0: none).",
	}, func() float64 { return float64(versionOf(src.Current())) })
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustgate_admission_policy_expiry_timestamp_seconds", Help: "When the policy in force expires.",
	}, func() float64 {
		if p := src.Current(); p != nil {
			return float64(p.ExpiresAt().Unix())
		}
		return 0
	})
	m.reg.MustRegister(m.reviews, m.images, m.cacheLookups, m.latency, m.registryErrors, m.reloads,
		version, expiry, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Reloaded counts a policy reload (for PolicySource.OnReload).
func (m *Metrics) Reloaded(_ *policy.Policy, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reloads.WithLabelValues("refused").Inc()
		return
	}
	m.reloads.WithLabelValues("loaded").Inc()
}

func (m *Metrics) review(result string) {
	if m != nil {
		m.reviews.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) decided(took time.Duration) {
	if m == nil {
		return
	}
	m.latency.Observe(took.Seconds())
}

func (m *Metrics) image(v ImageVerdict) {
	if m == nil {
		return
	}
	switch {
	case !v.Allowed:
		m.images.WithLabelValues("denied").Inc()
	case v.Reason != "":
		m.images.WithLabelValues("warned").Inc()
	default:
		m.images.WithLabelValues("allowed").Inc()
	}
}

func (m *Metrics) cache(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheLookups.WithLabelValues("hit").Inc()
		return
	}
	m.cacheLookups.WithLabelValues("miss").Inc()
}

func (m *Metrics) registryError() {
	if m != nil {
		m.registryErrors.Inc()
	}
}
