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
	// AppendOnly refuses every destructive route (forget, cleanup, target
	// removal, failover), whatever the token.
	AppendOnly bool
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

// routes registers every authenticated route with what its entry in the
// operations table says: the role it needs (read by default) and, on an
// append-only server, the refusal of destructive routes whatever the
// token. Path parameters are checked (validParams) once the route is
// matched.
func (s *Server) routes(r chi.Router) {
	handlers := map[string]http.HandlerFunc{
		"GET /backup/graphs/{graph}/snapshots":                     s.listSnapshots,
		"POST /backup/graphs/{graph}/snapshots":                    s.createSnapshot,
		"GET /backup/graphs/{graph}/snapshots/{snapshot}":          s.getSnapshot,
		"DELETE /backup/graphs/{graph}/snapshots/{snapshot}":       s.deleteSnapshot,
		"POST /backup/graphs/{graph}/snapshots/{snapshot}/restore": s.restoreSnapshot,
		"POST /backup/graphs/{graph}/snapshots/{snapshot}/verify":  s.verifySnapshot,
		"POST /backup/cleanup":                                     s.cleanup,
		"GET /backup/stats":                                        s.stats,
		"GET /replication/targets":                                 s.listTargets,
		"POST /replication/targets":                                s.addTarget,
		"GET /replication/targets/{target}/health":                 s.targetHealth,
		"DELETE /replication/targets/{target}":                     s.removeTarget,
		"GET /replication/graphs/{graph}/status":                   s.graphReplication,
		"POST /replication/sync":                                   s.sync,
		"GET /recovery/checkpoints":                                s.listCheckpoints,
		"POST /recovery/checkpoints":                               s.createCheckpoint,
		"GET /recovery/checkpoints/{checkpoint}":                   s.getCheckpoint,
		"POST /recovery/checkpoints/{checkpoint}/validate":         s.validateCheckpoint,
		"POST /recovery/checkpoints/{checkpoint}/failover":         s.failover,
		"GET /recovery/health":                                     s.health,
		"GET /recovery/status":                                     s.recoveryStatus,
		"GET /graphs":                                              s.listGraphs,
		"GET /graphs/{graph}":                                      s.getGraph,
		"GET /jobs":                                                s.listJobs,
		"GET /jobs/{job}":                                          s.getJob,
		"DELETE /jobs/{job}":                                       s.cancelJob,
	}
	for _, op := range operations {
		h, ok := handlers[op.Method+" "+op.Path]
		if !ok {
			continue // served outside the authenticated group
		}
		delete(handlers, op.Method+" "+op.Path)
		guards := []func(http.Handler) http.Handler{s.validParams}
		if op.Role != "" {
			guards = append(guards, s.auth.require(op.Role))
		}
		if op.Destructive && s.deps.AppendOnly {
			guards = append(guards, refuseAppendOnly)
		}
		r.With(guards...).Method(op.Method, op.Path, h)
	}
	for route := range handlers {
		panic("api: route " + route + " is not in the operations table")
	}
}

// refuseAppendOnly answers 403 on an append-only server: nothing served
// there takes data away, whoever asks.
func refuseAppendOnly(http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &Error{Status: http.StatusForbidden, Code: "append_only",
			Message: "this server is append-only: it never forgets, prunes, removes targets or fails over; do that on a server started without --append-only, with an admin token"})
	})
}
