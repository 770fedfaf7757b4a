package api

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request) {
	cps, err := recovery.Checkpoints(r.Context(), s.Repo())
	if err != nil {
		writeError(w, r, err)
		return
	}
	type view struct {
		*repo.Checkpoint
		Validation *recovery.Validation `json:"last_validation,omitempty"`
	}
	out := []view{}
	for _, cp := range cps {
		v, _ := recovery.LastValidation(r.Context(), s.Repo(), cp.ID)
		out = append(out, view{cp, v})
	}
	writeJSON(w, http.StatusOK, out)
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
	var sources []backup.Source
	if len(body.Graphs) == 0 {
		all, err := s.deps.Sources()
		if err != nil {
			writeError(w, r, err)
			return
		}
		sources = all
	}
	for _, g := range body.Graphs {
		if !idPattern.MatchString(g) {
			writeError(w, r, errBadRequest("field \"graphs\": %q is not a graph id", g))
			return
		}
		src, err := s.source(g)
		if err != nil {
			writeError(w, r, err)
			return
		}
		sources = append(sources, src)
	}
	if len(sources) == 0 {
		writeError(w, r, &Error{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: "no graphs to checkpoint"})
		return
	}
	s.startJob(w, r, "checkpoint", "", func(ctx context.Context, progress func(backup.Progress)) (any, error) {
		return s.Checkpoint(ctx, sources, body.Note, progress)
	})
}

// Checkpoint creates a checkpoint (the scheduler uses it too).
func (s *Server) Checkpoint(ctx context.Context, sources []backup.Source, note string, progress func(backup.Progress)) (*repo.Checkpoint, error) {
	start := time.Now()
	cp, err := recovery.CreateCheckpoint(ctx, s.Repo(), sources, recovery.CreateOptions{Note: note, Backup: s.backupOptions(progress)})
	s.view.invalidate()
	if err == nil {
		for _, snap := range cp.Snapshots {
			if m, err := s.Repo().Cache().Manifest(ctx, repo.SnapshotRef{Graph: snap.Graph, ID: snap.ID}); err == nil {
				s.m.ObserveBackup(m, time.Since(start))
			}
		}
	}
	return cp, err
}

func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := recovery.Find(r.Context(), s.Repo(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	v, _ := recovery.LastValidation(r.Context(), s.Repo(), cp.ID)
	writeJSON(w, http.StatusOK, map[string]any{"checkpoint": cp, "last_validation": v})
}

func (s *Server) validateCheckpoint(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ReadData bool `json:"read_data"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	cp, err := recovery.Find(r.Context(), s.Repo(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "validate", cp.ID, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		locs, err := recovery.Locations(ctx, s.Repo(), s.deps.Open)
		if err != nil {
			return nil, err
		}
		defer func() {
			for _, l := range locs[1:] {
				if l.Store != nil {
					l.Store.Close()
				}
			}
		}()
		v := recovery.Validate(ctx, s.Repo(), cp, locs, body.ReadData)
		return v, recovery.SaveValidation(ctx, s.Repo(), v)
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
	if !idPattern.MatchString(body.Target) {
		writeError(w, r, errBadRequest("field \"target\" must be a target id"))
		return
	}
	if body.Restore && s.deps.GraphsRoot == "" {
		writeError(w, r, &Error{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: "restore needs a configured graphs root"})
		return
	}
	checkpoint := chi.URLParam(r, "id")
	t, err := replication.GetTarget(r.Context(), s.Repo(), body.Target)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "failover", body.Target, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		return s.Failover(ctx, t, checkpoint, recovery.FailoverOptions{Checkpoint: checkpoint, Restore: body.Restore,
			GraphsRoot: s.deps.GraphsRoot, DryRun: body.DryRun, Force: body.Force})
	})
}

// Failover promotes target t and, unless a dry run, makes it this
// server's primary.
func (s *Server) Failover(ctx context.Context, t replication.Target, checkpoint string, opts recovery.FailoverOptions) (*recovery.Outcome, error) {
	primary := s.Repo()
	dst, err := s.deps.Open(ctx, t.URL)
	if err != nil {
		return nil, err
	}
	cfg, ok, err := repo.ReadConfig(ctx, dst)
	if err != nil || !ok || cfg.ID != primary.ID() {
		dst.Close()
		return nil, &Error{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: "target " + t.ID + " does not hold this repository"}
	}
	replica := primary.OnStore(dst, "")
	var reachable *repo.Repository
	if _, err := replication.Probe(ctx, primary.Store(), 5*time.Second); err == nil {
		reachable = primary
	}
	plan, err := recovery.PlanFailover(ctx, reachable, replica, t, s.fromURL(), opts)
	if err != nil {
		dst.Close()
		return nil, err
	}
	out, err := recovery.Failover(ctx, replica, plan, opts)
	if err != nil || opts.DryRun {
		dst.Close()
		return out, err
	}
	if s.deps.StateDir != "" {
		_ = recovery.SaveRedirect(s.deps.StateDir, s.fromURL(), t.URL, replica.ID())
	}
	s.mu.Lock()
	s.deps.Repo, s.deps.FromURL = replica, t.URL
	s.mu.Unlock()
	s.view.invalidate()
	_, _ = s.view.computeHealth(ctx)
	return out, nil
}

func (s *Server) fromURL() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.deps.FromURL != "" {
		return s.deps.FromURL
	}
	return s.deps.Repo.Store().Location()
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
	type location struct {
		Location   string  `json:"location"`
		Status     string  `json:"status"`
		RPOSeconds float64 `json:"rpo_seconds"`
	}
	locs := []location{{Location: recovery.PrimaryName, Status: replication.Healthy}}
	for _, t := range h.Targets {
		locs = append(locs, location{Location: t.ID, Status: t.Status, RPOSeconds: t.RPOSeconds})
	}
	failovers := h.Failovers
	if failovers == nil {
		failovers = []recovery.Switch{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"latest_checkpoint": h.Checkpoint, "locations": locs, "failovers": failovers})
}

// AutoFailover runs the opt-in automatic failover monitor on the current
// primary; when it promotes a target, the server switches to it.
func (s *Server) AutoFailover(ctx context.Context, policy recovery.AutoPolicy) {
	primary := s.Repo()
	m := &recovery.Monitor{
		Policy:     policy,
		PrimaryURL: s.fromURL(),
		Open:       s.deps.Open,
		OpenRepo: func(ctx context.Context, store blob.Store) (*repo.Repository, error) {
			cfg, ok, err := repo.ReadConfig(ctx, store)
			switch {
			case err != nil:
				return nil, err
			case !ok || cfg.ID != primary.ID():
				return nil, repo.ErrNotARepository
			}
			return primary.OnStore(store, ""), nil
		},
		OnSwitch: func(from, to, id string) error {
			if s.deps.StateDir != "" {
				if err := recovery.SaveRedirect(s.deps.StateDir, from, to, id); err != nil {
					return err
				}
			}
			store, err := s.deps.Open(ctx, to)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.deps.Repo, s.deps.FromURL = primary.OnStore(store, ""), to
			s.mu.Unlock()
			s.view.invalidate()
			return nil
		},
		OnEvent: func(e recovery.AutoEvent) { s.log.Warn("auto-failover", "kind", e.Kind, "message", e.Message) },
	}
	_ = m.Run(ctx)
}
