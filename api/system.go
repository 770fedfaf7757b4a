package api

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/service"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is ready when the primary's config object answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.svc.Ready(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": blob.Reason(err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.jobs.List())
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Get(chi.URLParam(r, "job"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Cancel(chi.URLParam(r, "job"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) graphViews(ctx context.Context) ([]service.GraphView, error) {
	snaps, err := s.view.snapshots(ctx)
	if err != nil {
		return nil, err
	}
	return s.svc.Graphs(snaps)
}

func (s *Server) listGraphs(w http.ResponseWriter, r *http.Request) {
	gs, err := s.graphViews(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, gs)
}

func (s *Server) getGraph(w http.ResponseWriter, r *http.Request) {
	gs, err := s.graphViews(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	id := chi.URLParam(r, "graph")
	for _, g := range gs {
		if g.ID == id {
			writeJSON(w, http.StatusOK, g)
			return
		}
	}
	writeError(w, r, errNotFound("graph %q is neither under the graphs root nor in the repository", id))
}
