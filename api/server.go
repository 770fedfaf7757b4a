// Package api is graphkeep's HTTP face: a chi router over the same core the
// CLI uses, with bearer-token auth, strict JSON, long work as jobs,
// Prometheus metrics and an OpenAPI document kept in step with the routes.
package api

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
)

// Deps is what the API needs; cmd wires it.
type Deps struct {
	// Repo is the primary repository, open. A failover through the API
	// replaces it.
	Repo *repo.Repository
	// Sources lists the graphs the server knows (graphs root and explicit).
	Sources func() ([]backup.Source, error)
	// Open opens target storage (providers.Open).
	Open replication.Opener
	// GraphsRoot is where graphs live; restores go there by default.
	GraphsRoot string
	// RestoreRoot, when set, is the other place restores may write to.
	RestoreRoot string
	// Tokens authorise requests; none means loopback-only, unauthenticated.
	Tokens []Token
	// OpenMetrics serves /metrics without a token.
	OpenMetrics bool
	// Retention is the default policy of POST /backup/cleanup.
	Retention retention.Policy
	// BackupInterval is the default schedule (health calls a graph stale
	// after two).
	BackupInterval time.Duration
	// Lease tunes the leases of the work the server runs.
	Lease repo.LeaseOptions
	// Jobs bounds the jobs running and queued.
	Jobs JobLimits
	// Backup holds the settings of every backup the server runs (quiet
	// window, maximum wait); Lease and Progress are set per run.
	Backup backup.Options
	// StateDir records failovers (recovery.SaveRedirect).
	StateDir string
	// FromURL is the primary's URL as configured (for failover records).
	FromURL string
	Logger  *slog.Logger
	Metrics *Metrics
}

// Server holds the API's state.
type Server struct {
	deps Deps
	jobs *Jobs
	mu   sync.RWMutex // guards deps.Repo and deps.FromURL (failover swaps them)
	log  *slog.Logger
	m    *Metrics
	auth *authenticator
	view *views
}

// New makes a Server.
func New(deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	if deps.BackupInterval <= 0 {
		deps.BackupInterval = 24 * time.Hour
	}
	s := &Server{deps: deps, log: deps.Logger, m: deps.Metrics, auth: newAuthenticator(deps.Tokens)}
	s.jobs = newJobs(s.m, deps.Jobs)
	s.view = newViews(s)
	return s
}

// Repo returns the current primary.
func (s *Server) Repo() *repo.Repository {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.deps.Repo
}

// Jobs returns the job manager (the scheduler submits work through it).
func (s *Server) Jobs() *Jobs { return s.jobs }

// Shutdown cancels running jobs and waits for them up to the deadline.
func (s *Server) Shutdown(deadline time.Duration) { s.jobs.shutdown(deadline) }

// Handler returns the router.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.recoverer, s.logRequests, s.m.middleware)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.json", s.openapiDoc)
	r.Group(func(r chi.Router) {
		if !s.deps.OpenMetrics {
			r.Use(s.auth.require(roleRead))
		}
		r.Get("/metrics", s.m.handler().ServeHTTP)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.auth.require(roleRead))
		s.routes(r)
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errNotFound("no such route: %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " is not allowed on " + r.URL.Path})
	})
	return r
}

// routes registers every authenticated route. Mutations need admin. Path
// parameters are checked (validParams) once the route is matched.
func (s *Server) routes(r chi.Router) {
	admin := s.auth.require(roleAdmin)
	read := r.With(s.validParams)
	write := r.With(s.validParams, admin)

	read.Get("/backup/graphs/{graph_id}/snapshots", s.listSnapshots)
	write.Post("/backup/graphs/{graph_id}/snapshots", s.createSnapshot)
	read.Get("/backup/graphs/{graph_id}/snapshots/{id}", s.getSnapshot)
	write.Delete("/backup/graphs/{graph_id}/snapshots/{id}", s.deleteSnapshot)
	write.Post("/backup/graphs/{graph_id}/snapshots/{id}/restore", s.restoreSnapshot)
	write.Post("/backup/graphs/{graph_id}/snapshots/{id}/verify", s.verifySnapshot)
	write.Post("/backup/cleanup", s.cleanup)
	read.Get("/backup/stats", s.stats)

	read.Get("/replication/targets", s.listTargets)
	write.Post("/replication/targets", s.addTarget)
	read.Get("/replication/targets/{id}/health", s.targetHealth)
	write.Delete("/replication/targets/{id}", s.removeTarget)
	read.Get("/replication/graphs/{graph_id}/status", s.graphReplication)
	write.Post("/replication/sync", s.sync)

	read.Get("/recovery/checkpoints", s.listCheckpoints)
	write.Post("/recovery/checkpoints", s.createCheckpoint)
	read.Get("/recovery/checkpoints/{id}", s.getCheckpoint)
	write.Post("/recovery/checkpoints/{id}/validate", s.validateCheckpoint)
	write.Post("/recovery/checkpoints/{id}/failover", s.failover)
	read.Get("/recovery/health", s.health)
	read.Get("/recovery/status", s.recoveryStatus)

	read.Get("/graphs", s.listGraphs)
	read.Get("/graphs/{graph_id}", s.getGraph)
	read.Get("/jobs", s.listJobs)
	read.Get("/jobs/{id}", s.getJob)
	write.Delete("/jobs/{id}", s.cancelJob)
}
