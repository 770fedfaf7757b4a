package api

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is ready when the primary's config object answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.Repo().Store().Stat(ctx, repo.ConfigKey); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": blob.Reason(err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.jobs.List())
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Get(chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Cancel(chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

// graphView is a graph with its newest snapshot.
type graphView struct {
	ID        string        `json:"id"`
	Dir       string        `json:"dir,omitempty"`
	Snapshots int           `json:"snapshots"`
	Latest    *repo.Summary `json:"latest,omitempty"`
}

func (s *Server) graphViews(ctx context.Context) ([]graphView, error) {
	sources, err := s.deps.Sources()
	if err != nil {
		return nil, err
	}
	snaps, err := s.view.snapshots(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*graphView{}
	var order []string
	for _, src := range sources {
		byID[src.Graph] = &graphView{ID: src.Graph, Dir: src.Dir}
		order = append(order, src.Graph)
	}
	for i := range snaps {
		v := snaps[i]
		g := byID[v.Graph]
		if g == nil {
			g = &graphView{ID: v.Graph}
			byID[v.Graph] = g
			order = append(order, v.Graph)
		}
		g.Snapshots++
		if g.Latest == nil || v.Time.After(g.Latest.Time) {
			g.Latest = &v
		}
	}
	out := make([]graphView, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
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
	id := chi.URLParam(r, "graph_id")
	for _, g := range gs {
		if g.ID == id {
			writeJSON(w, http.StatusOK, g)
			return
		}
	}
	writeError(w, r, errNotFound("graph %q is neither under the graphs root nor in the repository", id))
}

// mustRefs lists graph's snapshots, or none on error (callers report
// "no snapshots").
func mustRefs(ctx context.Context, s *Server, graph string) []repo.SnapshotRef {
	refs, _ := s.Repo().ListSnapshots(ctx, graph)
	return refs
}
