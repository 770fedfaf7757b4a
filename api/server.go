// Package api is graphkeep's HTTP face: a chi router over the same core the
// CLI uses, with bearer-token auth, strict JSON, long work as jobs,
// Prometheus metrics and an OpenAPI document kept in step with the routes.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/graphkeep/graphkeep/core/service"
)

// Deps is what the API needs; cmd wires it.
type Deps struct {
	// Service runs every use case; a failover through it moves the
	// primary for the whole server.
	Service *service.Service
	// Tokens authorise requests; none means loopback-only, unauthenticated.
	Tokens []Token
	// OpenMetrics serves /metrics without a token.
	OpenMetrics bool
	// Jobs bounds the jobs running and queued.
	Jobs    JobLimits
	Logger  *slog.Logger
	Metrics *Metrics
}

// Server holds the API's state.
type Server struct {
	deps Deps
	svc  *service.Service
	jobs *Jobs
	log  *slog.Logger
	m    *Metrics
	auth *authenticator
	view *views
}

// New makes a Server and hooks its metrics and read models to the
// service's events.
func New(deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	s := &Server{deps: deps, svc: deps.Service, log: deps.Logger, m: deps.Metrics, auth: newAuthenticator(deps.Tokens)}
	s.jobs = newJobs(s.m, deps.Jobs)
	s.view = newViews(s)
	s.svc.Observe(service.Hooks{
		Snapshot: s.m.ObserveBackup,
		Changed:  s.view.invalidate,
	})
	return s
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
	r.Get("/", s.dashboard)
	r.Get("/ui/{asset}", s.dashboardAsset)
	r.Get("/session", s.session)
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

	read.Get("/backup/graphs/{graph}/snapshots", s.listSnapshots)
	write.Post("/backup/graphs/{graph}/snapshots", s.createSnapshot)
	read.Get("/backup/graphs/{graph}/snapshots/{snapshot}", s.getSnapshot)
	write.Delete("/backup/graphs/{graph}/snapshots/{snapshot}", s.deleteSnapshot)
	write.Post("/backup/graphs/{graph}/snapshots/{snapshot}/restore", s.restoreSnapshot)
	write.Post("/backup/graphs/{graph}/snapshots/{snapshot}/verify", s.verifySnapshot)
	write.Post("/backup/cleanup", s.cleanup)
	read.Get("/backup/stats", s.stats)

	read.Get("/replication/targets", s.listTargets)
	write.Post("/replication/targets", s.addTarget)
	read.Get("/replication/targets/{target}/health", s.targetHealth)
	write.Delete("/replication/targets/{target}", s.removeTarget)
	read.Get("/replication/graphs/{graph}/status", s.graphReplication)
	write.Post("/replication/sync", s.sync)

	read.Get("/recovery/checkpoints", s.listCheckpoints)
	write.Post("/recovery/checkpoints", s.createCheckpoint)
	read.Get("/recovery/checkpoints/{checkpoint}", s.getCheckpoint)
	write.Post("/recovery/checkpoints/{checkpoint}/validate", s.validateCheckpoint)
	write.Post("/recovery/checkpoints/{checkpoint}/failover", s.failover)
	read.Get("/recovery/health", s.health)
	read.Get("/recovery/status", s.recoveryStatus)

	read.Get("/graphs", s.listGraphs)
	read.Get("/graphs/{graph}", s.getGraph)
	read.Get("/jobs", s.listJobs)
	read.Get("/jobs/{job}", s.getJob)
	write.Delete("/jobs/{job}", s.cancelJob)
}
