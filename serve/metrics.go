package serve

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg      *prometheus.Registry
	webhooks *prometheus.CounterVec
	jobs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	waiting  prometheus.Gauge
	running  prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_serve_webhooks_total", Help: "Webhook requests by trigger and answer (queued, ignored, duplicate, unauthorized, malformed, too_large, unknown).",
		}, []string{"trigger", "result"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_serve_jobs_total", Help: "Jobs that ended, by app and result (ok, failed, superseded, interrupted).",
		}, []string{"app", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "skiff_serve_job_duration_seconds", Help: "How long jobs ran, by app.",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"app"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "skiff_serve_queue_depth", Help: "Jobs waiting to run."}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "skiff_serve_jobs_running", Help: "Jobs running now."}),
	}
	m.reg.MustRegister(m.webhooks, m.jobs, m.duration, m.waiting, m.running,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) webhook(trigger, result string) { m.webhooks.WithLabelValues(trigger, result).Inc() }

func (m *metrics) jobDone(app, result string, d time.Duration) {
	m.jobs.WithLabelValues(app, result).Inc()
	if d > 0 {
		m.duration.WithLabelValues(app).Observe(d.Seconds())
	}
}

func (m *metrics) queue(waiting, running int) {
	m.waiting.Set(float64(waiting))
	m.running.Set(float64(running))
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
