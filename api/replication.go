package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

func (s *Server) listTargets(w http.ResponseWriter, r *http.Request) {
	out, err := s.svc.Targets(r.Context(), "", false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addTarget(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID            string           `json:"id"`
		URL           string           `json:"url"`
		Graphs        []string         `json:"graphs"`
		MirrorDeletes bool             `json:"mirror_deletes"`
		Lock          *repo.LockPolicy `json:"lock"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if body.ID == "" {
		writeError(w, r, errBadRequest("field \"id\" is required"))
		return
	}
	if body.URL == "" {
		writeError(w, r, errBadRequest("field \"url\" is required"))
		return
	}
	if err := checkIDs(map[string][]string{"id": {body.ID}, "graphs": body.Graphs}); err != nil {
		writeError(w, r, err)
		return
	}
	st, err := s.svc.AddTarget(r.Context(), replication.Target{ID: body.ID, URL: body.URL, Graphs: body.Graphs, MirrorDeletes: body.MirrorDeletes, Lock: body.Lock})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, st)
}

func (s *Server) targetHealth(w http.ResponseWriter, r *http.Request) {
	st, err := s.svc.TargetHealth(r.Context(), chi.URLParam(r, "target"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) removeTarget(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.RemoveTarget(r.Context(), chi.URLParam(r, "target")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) graphReplication(w http.ResponseWriter, r *http.Request) {
	rows, err := s.svc.ReplicationStatus(r.Context(), chi.URLParam(r, "graph"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rows[0])
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Target string `json:"target"`
		Graph  string `json:"graph"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if err := checkIDs(map[string][]string{"target": {body.Target}, "graph": {body.Graph}}); err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "replicate", body.Target, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		return s.svc.Replicate(ctx, body.Target, body.Graph)
	})
}
