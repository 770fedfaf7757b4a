package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/graphkeep/graphkeep/core/repo"
)

// Metrics are graphkeep's Prometheus metrics, on a registry of their own.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	jobs           *prometheus.GaugeVec
	jobsDone       *prometheus.CounterVec
	backupDuration *prometheus.HistogramVec
	backupBytes    *prometheus.CounterVec
	dedupRatio     *prometheus.GaugeVec
	lastSuccess    *prometheus.GaugeVec
	lagSnapshots   *prometheus.GaugeVec
	lagBytes       *prometheus.GaugeVec
	targetHealth   *prometheus.GaugeVec
	checkpointAge  *prometheus.GaugeVec
	consistent     *prometheus.GaugeVec
	quiet          *prometheus.GaugeVec
	cutAttempts    *prometheus.GaugeVec
	rpo            *prometheus.HistogramVec
}

// NewMetrics registers the metrics.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "graphkeep_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "graphkeep_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 5}}, []string{"route"})
	m.jobs = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_jobs", Help: "Jobs by kind and state (running)."}, []string{"kind", "state"})
	m.jobsDone = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "graphkeep_jobs_finished_total", Help: "Finished jobs by kind and final state."}, []string{"kind", "state"})
	m.backupDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "graphkeep_backup_duration_seconds", Help: "Backup duration by graph.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, []string{"graph"})
	m.backupBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "graphkeep_backup_bytes_total", Help: "Bytes backed up by graph: kind=read (file bytes), added (new chunk plaintext), stored (written to storage)."}, []string{"graph", "kind"})
	m.dedupRatio = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_backup_dedup_ratio", Help: "File bytes / stored bytes of the last backup of each graph (higher is better)."}, []string{"graph"})
	m.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_backup_last_success_timestamp_seconds", Help: "Time of the last successful backup of each graph."}, []string{"graph"})
	m.lagSnapshots = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_replication_lag_snapshots", Help: "Snapshots each target lacks."}, []string{"target"})
	m.lagBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_replication_lag_bytes", Help: "Bytes each target lacks."}, []string{"target"})
	m.targetHealth = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_target_health", Help: "1 for each target's current state (HEALTHY, DEGRADED, UNREACHABLE, UNKNOWN)."}, []string{"target", "state"})
	// A vector without labels, so that "no checkpoint" is no series (an
	// alert on age must not see 0).
	m.checkpointAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_checkpoint_age_seconds", Help: "Age of the latest checkpoint (absent when there is none)."}, nil)
	m.consistent = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_consistent", Help: "1 when the last snapshot of each graph is consistent (LightRAG's stores agreed), 0 when flagged or mid-ingestion."}, []string{"graph"})
	m.quiet = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_quiet_seconds", Help: "How long each graph had been unwritten when its last snapshot was cut."}, []string{"graph"})
	m.cutAttempts = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_cut_attempts", Help: "Cuts the last backup of each graph took before it kept one."}, []string{"graph"})
	m.rpo = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "graphkeep_watch_rpo_seconds", Help: "Continuous protection: time from LightRAG's last write of a settled state to its snapshot being committed.",
		Buckets: []float64{0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300}}, []string{"graph"})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.jobs, m.jobsDone, m.backupDuration, m.backupBytes, m.dedupRatio,
		m.lastSuccess, m.lagSnapshots, m.lagBytes, m.targetHealth, m.checkpointAge, m.consistent, m.quiet, m.cutAttempts, m.rpo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// middleware counts requests by route pattern (never by raw path, which
// would let clients create unbounded label values).
func (m *Metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		m.requests.WithLabelValues(route, strconv.Itoa(ww.Status())).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// ObserveBackup records a finished backup.
func (m *Metrics) ObserveBackup(man *repo.Manifest, took time.Duration) {
	g := man.Graph
	m.backupDuration.WithLabelValues(g).Observe(took.Seconds())
	m.backupBytes.WithLabelValues(g, "read").Add(float64(man.Totals.SizeBytes))
	m.backupBytes.WithLabelValues(g, "added").Add(float64(man.Totals.AddedBytes))
	m.backupBytes.WithLabelValues(g, "stored").Add(float64(man.Totals.StoredBytes))
	if man.Totals.StoredBytes > 0 {
		m.dedupRatio.WithLabelValues(g).Set(float64(man.Totals.SizeBytes) / float64(man.Totals.StoredBytes))
	} else {
		m.dedupRatio.WithLabelValues(g).Set(float64(man.Totals.SizeBytes))
	}
	m.lastSuccess.WithLabelValues(g).Set(float64(man.Time.Add(took).Unix()))
	if c := man.Consistency; c != nil {
		m.consistent.WithLabelValues(g).Set(float64(btoi(man.Good())))
		m.quiet.WithLabelValues(g).Set(float64(c.QuietMS) / 1000)
		m.cutAttempts.WithLabelValues(g).Set(float64(c.Attempts))
	}
}

// ObserveRPO records the RPO continuous protection achieved for a graph.
func (m *Metrics) ObserveRPO(graph string, rpo time.Duration) {
	m.rpo.WithLabelValues(graph).Observe(rpo.Seconds())
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
