package gateway

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the gateway's Prometheus metrics, on a registry of its own
// (served at /metrics). Labels hold names from the verified configuration
// and status codes, never anything a client sent and never a key.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	verdicts       *prometheus.CounterVec
	drift          *prometheus.CounterVec
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_gateway_requests_total", Help: "API requests answered, by route, model, provider and status code.",
		}, []string{"route", "model", "provider", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trustgate_gateway_request_duration_seconds", Help: "Time from a request's arrival to the end of its answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_gateway_upstream_errors_total", Help: "Upstream attempts that failed (connection errors, 429 and 5xx), by provider.",
		}, []string{"provider"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_gateway_plugin_verdicts_total", Help: "Plugin hook results, by plugin, hook and verdict (allow, block, rewrite, error).",
		}, []string{"plugin", "hook", "verdict"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_gateway_drift_events_total", Help: "Components whose files stopped matching what was verified.",
		}, []string{"component"}),
	}
	components := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustgate_gateway_components_running", Help: "Plugins and agents running from verified copies.",
	}, func() float64 {
		n := 0
		for _, c := range g.Status().Components {
			if c.State == StateRunning {
				n++
			}
		}
		return float64(n)
	})
	verified := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustgate_gateway_verified", Help: "1 when the gateway's own executable was verified, 0 in insecure development mode.",
	}, func() float64 {
		if g.opts.InsecureDev {
			return 0
		}
		return 1
	})
	policyVersion := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustgate_gateway_policy_version", Help: "The version of the signed policy in force.",
	}, func() float64 { return float64(g.policy.Version) })
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustgate_gateway_policy_expiry_timestamp_seconds", Help: "When the policy in force expires.",
	}, func() float64 { return float64(g.policy.ExpiresAt().Unix()) })
	m.reg.MustRegister(m.requests, m.duration, m.upstreamErrors, m.verdicts, m.drift,
		components, verified, policyVersion, expiry,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// answered counts one answered request.
func (m *metrics) answered(route, model, provider string, code int, seconds float64) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, model, provider, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(seconds)
}

func (m *metrics) upstreamError(provider string) {
	if m != nil {
		m.upstreamErrors.WithLabelValues(provider).Inc()
	}
}

func (m *metrics) verdict(plugin, hook, verdict string) {
	if m != nil {
		m.verdicts.WithLabelValues(plugin, hook, verdict).Inc()
	}
}

func (m *metrics) drifted(component string) {
	if m != nil {
		m.drift.WithLabelValues(component).Inc()
	}
}
