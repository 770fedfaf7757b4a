package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/core/service"
)

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	src, err := s.svc.Source(chi.URLParam(r, "graph"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "backup", src.Graph, func(ctx context.Context, progress func(backup.Progress)) (any, error) {
		return s.svc.BackupSource(ctx, src, progress)
	})
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) {
	body, err := s.view.graphSnapshotsJSON(r.Context(), chi.URLParam(r, "graph"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) {
	d, err := s.svc.Snapshot(r.Context(), chi.URLParam(r, "graph"), chi.URLParam(r, "snapshot"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.DeleteSnapshot(r.Context(), chi.URLParam(r, "graph"), chi.URLParam(r, "snapshot")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request) {
	var body struct {
		// To is a directory inside the graphs root or the restore root;
		// default: the graph's own directory.
		To string `json:"to"`
		// AllowFlagged restores a snapshot, named by its id, that is
		// flagged or mid-ingestion.
		AllowFlagged bool `json:"allow_flagged"`
		// Force restores into a directory that holds files but no
		// LightRAG data (kept as an undo copy).
		Force bool `json:"force"`
		// AllowOutsideLinks restores symlinks that point outside the
		// destination.
		AllowOutsideLinks bool `json:"allow_outside_links"`
		// A graph in PostgreSQL: ToWorkspace clones it into another
		// workspace of its database; DryRun says per table what the
		// restore would add, remove and change.
		ToWorkspace string `json:"to_workspace"`
		DryRun      bool   `json:"dry_run"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if strings.ContainsRune(body.To, 0) {
		writeError(w, r, errBadRequest("\"to\" holds a NUL byte"))
		return
	}
	if strings.ContainsRune(body.ToWorkspace, 0) || len(body.ToWorkspace) > 255 {
		writeError(w, r, errBadRequest("\"to_workspace\" must be a workspace name of at most 255 bytes without NUL"))
		return
	}
	if len(body.To) > maxPathLen {
		writeError(w, r, errBadRequest("\"to\" is %d bytes long; paths of at most %d are accepted", len(body.To), maxPathLen))
		return
	}
	plan, err := s.svc.PrepareRestore(r.Context(), service.RestoreRequest{Graph: chi.URLParam(r, "graph"), Snapshot: chi.URLParam(r, "snapshot"),
		To: body.To, AllowNotGood: body.AllowFlagged, Force: body.Force, AllowOutsideLinks: body.AllowOutsideLinks, Confined: true,
		ToWorkspace: body.ToWorkspace, DryRun: body.DryRun})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "restore", plan.Items[0].Choice.Ref.Graph, func(ctx context.Context, progress func(backup.Progress)) (any, error) {
		res, err := s.svc.RunRestore(ctx, plan, func(string) func(backup.Progress) { return progress })
		if len(res) == 0 {
			return nil, err
		}
		return res[0], err
	})
}

// maxPathLen bounds a destination path (Linux's PATH_MAX).
const maxPathLen = 4096

func (s *Server) verifySnapshot(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ReadData bool `json:"read_data"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	req := service.VerifyRequest{Graph: chi.URLParam(r, "graph"), Snapshot: chi.URLParam(r, "snapshot"), ReadData: body.ReadData}
	if _, err := s.svc.Snapshot(r.Context(), req.Graph, req.Snapshot); err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "verify", req.Graph, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		return s.svc.Verify(ctx, req)
	})
}

func (s *Server) cleanup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Policy *retention.Policy `json:"policy"`
		Graph  string            `json:"graph"`
		DryRun bool              `json:"dry_run"`
		Prune  *bool             `json:"prune"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if err := checkIDs(map[string][]string{"graph": {body.Graph}}); err != nil {
		writeError(w, r, err)
		return
	}
	req := service.CleanupRequest{Graph: body.Graph, Policy: body.Policy, DryRun: body.DryRun, Prune: body.Prune == nil || *body.Prune}
	if _, err := s.svc.CleanupPolicy(req); err != nil { // before the job: a bad policy is the request's fault
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "cleanup", body.Graph, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		return s.svc.Cleanup(ctx, req)
	})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st, err := s.svc.Stats(r.Context(), r.URL.Query().Get("list") == "true")
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
