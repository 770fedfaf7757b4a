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

	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
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
	resumable      *prometheus.GaugeVec
	missingStores  *prometheus.GaugeVec
	resumeDocs     *prometheus.GaugeVec
	quiet          *prometheus.GaugeVec
	cutAttempts    *prometheus.GaugeVec
	rpo            *prometheus.HistogramVec

	// From the health view (refreshed every 10 s); absent when unknown.
	status            *prometheus.GaugeVec
	primaryReachable  *prometheus.GaugeVec
	graphLast         *prometheus.GaugeVec
	graphLastGood     *prometheus.GaugeVec
	graphSchedule     *prometheus.GaugeVec
	graphFlagged      *prometheus.GaugeVec
	graphMid          *prometheus.GaugeVec
	targetRPO         *prometheus.GaugeVec
	targets           *prometheus.GaugeVec
	checkpointTargets *prometheus.GaugeVec
	failovers         *prometheus.GaugeVec
	lastFailover      *prometheus.GaugeVec
	// backupFailed is the time of each graph's last failed backup job.
	backupFailed *prometheus.GaugeVec
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
	m.consistent = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_consistent", Help: "1 when the last snapshot of each graph is good (LightRAG's stores agreed, or it is resumable), 0 when flagged or mid-ingestion."}, []string{"graph"})
	m.resumable = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_resumable", Help: "1 when the last snapshot of each graph was cut while LightRAG was ingesting, in a state it resumes from; 0 otherwise."}, []string{"graph"})
	m.missingStores = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_missing_stores", Help: "Kinds of LightRAG store (kv, vector, graph, doc_status) each graph's workspace keeps elsewhere, which its last snapshot does not hold (0: complete)."}, []string{"graph"})
	m.resumeDocs = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_resume_documents", Help: "Documents LightRAG would process again on a restore of each graph's last snapshot (pending, processing or failed; 0 when consistent)."}, []string{"graph"})
	m.quiet = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_quiet_seconds", Help: "How long each graph had been unwritten when its last snapshot was cut."}, []string{"graph"})
	m.cutAttempts = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "graphkeep_snapshot_cut_attempts", Help: "Cuts the last backup of each graph took before it kept one."}, []string{"graph"})
	m.rpo = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "graphkeep_watch_rpo_seconds", Help: "Continuous protection: time from LightRAG's last write of a settled state to its snapshot being committed.",
		Buckets: []float64{0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300}}, []string{"graph"})
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m.status = gauge("graphkeep_health_status", "1 for the overall state (HEALTHY, DEGRADED, CRITICAL), as GET /recovery/health says.", "state")
	m.primaryReachable = gauge("graphkeep_primary_reachable", "1 when the primary repository answers, 0 when it does not (absent until first checked).")
	m.graphLast = gauge("graphkeep_graph_last_snapshot_timestamp_seconds", "Time of each graph's newest snapshot in the repository (absent when it has none).", "graph")
	m.graphLastGood = gauge("graphkeep_graph_last_good_snapshot_timestamp_seconds", "Time of each graph's newest snapshot that is neither flagged nor mid-ingestion (absent when none).", "graph")
	m.graphSchedule = gauge("graphkeep_graph_schedule_seconds", "Each graph's backup interval: it is stale past two.", "graph")
	m.graphFlagged = gauge("graphkeep_graph_latest_flagged", "1 when each graph's newest snapshot is flagged (LightRAG may not load it).", "graph")
	m.graphMid = gauge("graphkeep_graph_latest_mid_ingestion", "1 when each graph's newest snapshot was cut while LightRAG's stores disagreed.", "graph")
	m.targetRPO = gauge("graphkeep_replication_rpo_seconds", "Age of the oldest snapshot each target lacks (0 when it holds all; absent while unknown).", "target")
	m.targets = gauge("graphkeep_replication_targets", "Replication targets configured (absent until first checked).")
	m.checkpointTargets = gauge("graphkeep_checkpoint_restorable_targets", "Targets where the latest checkpoint was restorable when last validated (absent without a validated checkpoint).")
	m.failovers = gauge("graphkeep_failovers", "Failovers recorded in the primary's history.")
	m.lastFailover = gauge("graphkeep_last_failover_timestamp_seconds", "Time of the newest recorded failover (absent when none).")
	m.backupFailed = gauge("graphkeep_backup_last_failure_timestamp_seconds", "Time of each graph's last failed backup job in this server.", "graph")
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.jobs, m.jobsDone, m.backupDuration, m.backupBytes, m.dedupRatio,
		m.lastSuccess, m.lagSnapshots, m.lagBytes, m.targetHealth, m.checkpointAge, m.consistent, m.resumable, m.missingStores, m.resumeDocs, m.quiet, m.cutAttempts, m.rpo,
		m.status, m.primaryReachable, m.graphLast, m.graphLastGood, m.graphSchedule, m.graphFlagged, m.graphMid, m.targetRPO,
		m.targets, m.checkpointTargets, m.failovers, m.lastFailover, m.backupFailed,
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
	m.missingStores.WithLabelValues(g).Set(float64(len(man.Missing())))
	if c := man.Consistency; c != nil {
		m.consistent.WithLabelValues(g).Set(float64(btoi(man.Good())))
		m.resumable.WithLabelValues(g).Set(float64(btoi(c.Resumable)))
		m.resumeDocs.WithLabelValues(g).Set(float64(c.Resume.Total()))
		m.quiet.WithLabelValues(g).Set(float64(c.QuietMS) / 1000)
		m.cutAttempts.WithLabelValues(g).Set(float64(c.Attempts))
	}
}

// ObserveHealth sets the gauges the health view feeds. What is unknown is
// left absent (a target's lag while unreachable, a checkpoint never
// validated), so that "no value" can be alerted on.
func (m *Metrics) ObserveHealth(h *recovery.Health) {
	for _, st := range []string{recovery.StateHealthy, recovery.StateDegraded, recovery.StateCritical} {
		m.status.WithLabelValues(st).Set(float64(btoi(h.Status == st)))
	}
	m.primaryReachable.WithLabelValues().Set(float64(btoi(h.Primary.Reachable)))
	if !h.Primary.Reachable {
		return // the rest was not read; keep what was last known
	}
	for _, v := range []*prometheus.GaugeVec{m.graphLast, m.graphLastGood, m.graphSchedule, m.graphFlagged, m.graphMid,
		m.lagSnapshots, m.lagBytes, m.targetRPO, m.targetHealth, m.checkpointAge, m.checkpointTargets, m.lastFailover} {
		v.Reset()
	}
	now := time.Now()
	at := func(age *float64) float64 {
		return float64(now.Add(-time.Duration(*age * float64(time.Second))).Unix())
	}
	for _, g := range h.Graphs {
		m.graphSchedule.WithLabelValues(g.Graph).Set(g.ScheduleSeconds)
		if g.AgeSeconds == nil {
			continue
		}
		m.graphLast.WithLabelValues(g.Graph).Set(at(g.AgeSeconds))
		if g.LastGoodAgeSeconds != nil {
			m.graphLastGood.WithLabelValues(g.Graph).Set(at(g.LastGoodAgeSeconds))
		}
		m.graphFlagged.WithLabelValues(g.Graph).Set(float64(btoi(g.Flagged)))
		m.graphMid.WithLabelValues(g.Graph).Set(float64(btoi(g.MidIngestion)))
	}
	m.targets.WithLabelValues().Set(float64(len(h.Targets)))
	for _, t := range h.Targets {
		for _, st := range []string{replication.Healthy, replication.Degraded, replication.Unreachable, replication.Unknown} {
			m.targetHealth.WithLabelValues(t.ID, st).Set(float64(btoi(st == t.Status)))
		}
		if t.LagSnapshots >= 0 && t.Status != replication.Unreachable && t.Status != replication.Unknown {
			m.lagSnapshots.WithLabelValues(t.ID).Set(float64(t.LagSnapshots))
			m.lagBytes.WithLabelValues(t.ID).Set(float64(t.LagBytes))
			m.targetRPO.WithLabelValues(t.ID).Set(t.RPOSeconds)
		}
	}
	if cp := h.Checkpoint; cp != nil {
		m.checkpointAge.WithLabelValues().Set(cp.AgeSeconds)
		if !cp.ValidatedAt.IsZero() {
			n := 0
			for _, loc := range cp.RestorableAt {
				if loc != recovery.PrimaryName {
					n++
				}
			}
			m.checkpointTargets.WithLabelValues().Set(float64(n))
		}
	}
	m.failovers.WithLabelValues().Set(float64(len(h.Failovers)))
	var last time.Time
	for _, sw := range h.Failovers {
		if sw.Time.After(last) {
			last = sw.Time
		}
	}
	if !last.IsZero() {
		m.lastFailover.WithLabelValues().Set(float64(last.Unix()))
	}
}

// ObserveBackupFailure records a failed backup job of graph.
func (m *Metrics) ObserveBackupFailure(graph string, at time.Time) {
	m.backupFailed.WithLabelValues(graph).Set(float64(at.Unix()))
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
