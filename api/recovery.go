package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/service"
)

func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request) {
	cps, err := s.svc.Checkpoints(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cps)
}

func (s *Server) createCheckpoint(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Graphs []string `json:"graphs"`
		Note   string   `json:"note"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if err := checkIDs(map[string][]string{"graphs": body.Graphs}); err != nil {
		writeError(w, r, err)
		return
	}
	for _, g := range body.Graphs {
		if _, err := s.svc.Source(g); err != nil {
			writeError(w, r, err)
			return
		}
	}
	s.startJob(w, r, "checkpoint", "", func(ctx context.Context, progress func(backup.Progress)) (any, error) {
		return s.svc.CreateCheckpoint(ctx, body.Graphs, body.Note, progress)
	})
}

func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := s.svc.Checkpoint(r.Context(), chi.URLParam(r, "checkpoint"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cp)
}

func (s *Server) validateCheckpoint(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ReadData bool `json:"read_data"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	cp, err := s.svc.Checkpoint(r.Context(), chi.URLParam(r, "checkpoint"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "validate", cp.ID, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		return s.svc.ValidateCheckpoint(ctx, cp.ID, body.ReadData)
	})
}

func (s *Server) failover(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Target  string `json:"target"`
		Restore bool   `json:"restore"`
		DryRun  bool   `json:"dry_run"`
		Force   bool   `json:"force"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if body.Target == "" {
		writeError(w, r, errBadRequest("field \"target\" must be a target id"))
		return
	}
	if err := checkIDs(map[string][]string{"target": {body.Target}}); err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.svc.CheckTarget(r.Context(), body.Target); err != nil {
		writeError(w, r, err)
		return
	}
	req := service.FailoverRequest{Target: body.Target, Checkpoint: chi.URLParam(r, "checkpoint"), Restore: body.Restore, DryRun: body.DryRun, Force: body.Force}
	s.startJob(w, r, "failover", body.Target, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		out, err := s.svc.Failover(ctx, req)
		if err == nil && !req.DryRun {
			_, _ = s.view.computeHealth(ctx)
		}
		return out, err
	})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	h, err := s.view.systemHealth(r.Context(), r.URL.Query().Get("refresh") == "true")
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) recoveryStatus(w http.ResponseWriter, r *http.Request) {
	h, err := s.view.systemHealth(r.Context(), false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, service.RecoveryStatusOf(h))
}

// AutoFailover runs the opt-in automatic failover monitor on the current
// primary; when it promotes a target, the server switches to it.
func (s *Server) AutoFailover(ctx context.Context, policy recovery.AutoPolicy) {
	_ = s.svc.AutoFailover(ctx, policy, func(e recovery.AutoEvent) {
		s.log.Warn("auto-failover", "kind", e.Kind, "message", e.Message)
	})
}
