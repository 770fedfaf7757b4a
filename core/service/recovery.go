package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/core/watch"
)

// CheckpointView is a checkpoint with where it was last found restorable.
type CheckpointView struct {
	*repo.Checkpoint
	LastValidation *recovery.Validation `json:"last_validation,omitempty"`
}

// CreateCheckpoint snapshots the graphs (every known graph when none are
// named), then writes the checkpoint naming those snapshots.
func (s *Service) CreateCheckpoint(ctx context.Context, graphs []string, note string, progress func(backup.Progress)) (*repo.Checkpoint, error) {
	sources, _, err := s.pick(graphs, len(graphs) == 0, "checkpoint")
	if err != nil {
		return nil, err
	}
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	opts := s.cfg.Backup
	opts.Lease, opts.Progress = s.cfg.Lease, progress
	start := time.Now()
	cp, err := recovery.CreateCheckpoint(ctx, r, sources, recovery.CreateOptions{Note: note, Backup: opts})
	s.changed()
	if err != nil {
		return nil, err
	}
	if s.cfg.Hooks.Snapshot != nil {
		for _, snap := range cp.Snapshots {
			if m, err := r.Cache().Manifest(ctx, repo.SnapshotRef{Graph: snap.Graph, ID: snap.ID}); err == nil {
				s.cfg.Hooks.Snapshot(m, time.Since(start))
			}
		}
	}
	return cp, nil
}

// Checkpoints lists the checkpoints, newest first.
func (s *Service) Checkpoints(ctx context.Context) ([]CheckpointView, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	cps, err := recovery.Checkpoints(ctx, r)
	if err != nil {
		return nil, err
	}
	out := make([]CheckpointView, 0, len(cps))
	for _, cp := range cps {
		v, _ := recovery.LastValidation(ctx, r, cp.ID)
		out = append(out, CheckpointView{cp, v})
	}
	return out, nil
}

// Checkpoint shows one checkpoint ("latest", an id or a unique prefix).
func (s *Service) Checkpoint(ctx context.Context, id string) (*CheckpointView, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := recovery.Find(ctx, r, id)
	if err != nil {
		return nil, err
	}
	v, _ := recovery.LastValidation(ctx, r, cp.ID)
	return &CheckpointView{cp, v}, nil
}

// DeleteCheckpoint deletes a checkpoint; its snapshots are no longer
// pinned.
func (s *Service) DeleteCheckpoint(ctx context.Context, id string) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	if err := recovery.DeleteCheckpoint(ctx, r, id); err != nil {
		return err
	}
	s.changed()
	return nil
}

// ErrValidationNotSaved: a validation ran, but its result could not be
// stored; the result is still returned.
var ErrValidationNotSaved = problem.New(problem.Unreachable, "validation_not_saved", "the validation's result could not be stored")

// ValidateCheckpoint checks on the primary and on every target whether the
// checkpoint can be restored (with readData: every chunk downloaded and
// hashed), and stores the result.
func (s *Service) ValidateCheckpoint(ctx context.Context, id string, readData bool) (*recovery.Validation, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := recovery.Find(ctx, r, id)
	if err != nil {
		return nil, err
	}
	locs, err := recovery.Locations(ctx, r, s.cfg.Open)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, l := range locs {
			if l.Store != nil && l.Store != r.Store() {
				l.Store.Close()
			}
		}
	}()
	v := recovery.Validate(ctx, r, cp, locs, readData)
	if err := recovery.SaveValidation(ctx, r, v); err != nil {
		return v, fmt.Errorf("%w: %w", ErrValidationNotSaved, err)
	}
	s.changed()
	return v, nil
}

// FailoverRequest promotes a target.
type FailoverRequest struct {
	// Target is an id, or the target's URL when the primary is gone.
	Target     string
	Checkpoint string // "" or "latest": the newest on the target
	// Restore restores every graph of the checkpoint into the graphs root.
	Restore bool
	DryRun  bool
	// Force promotes a target that is behind or does not hold the
	// checkpoint whole.
	Force bool
}

// FailoverResult is what a failover did (or, dry, would do).
type FailoverResult struct {
	*recovery.Outcome
	// AlreadyDone is set when the failover had completed before: the
	// restores it finished now, and the graphs already in place.
	AlreadyDone *recovery.Completed `json:"already_done,omitempty"`
	// PrimaryError is why the primary did not answer ("" when it did).
	PrimaryError string `json:"primary_error,omitempty"`
	// RecordedIn is where this machine remembers the switch.
	RecordedIn string `json:"recorded_in,omitempty"`
}

// Failover makes a target the primary: plan, run, record the switch in the
// new primary and on this machine, and use the new primary from now on.
func (s *Service) Failover(ctx context.Context, req FailoverRequest) (*FailoverResult, error) {
	if req.Target == "" {
		return nil, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "name the target to promote")
	}
	if req.Restore && s.cfg.GraphsRoot == "" && !s.hasPostgresGraphs() {
		return nil, problem.Errorf(problem.Invalid, problem.SetGraphsRoot, "", "restoring after a failover needs a graphs root (where the graphs go)")
	}
	from, _, err := s.PrimaryURL()
	if err != nil {
		return nil, err
	}
	out := &FailoverResult{}
	octx, cancel := context.WithTimeout(ctx, 20*time.Second)
	primary, primaryErr := s.Primary(octx)
	if primaryErr == nil {
		if _, err := replication.Probe(octx, primary.Store(), 5*time.Second); err != nil {
			primaryErr = err
		}
	}
	cancel()
	reachable := primary
	if primaryErr != nil {
		out.PrimaryError, reachable = primaryErr.Error(), nil
	}
	t, err := s.resolveTarget(ctx, reachable, req.Target)
	if err != nil && primary != nil && !req.DryRun {
		// Run again after it completed? The switch is recorded in the
		// primary now in use.
		if sw, ferr := recovery.FindCompleted(ctx, primary, from, req.Target); ferr == nil && sw != nil {
			return s.failoverDone(ctx, primary, sw, req.Restore)
		}
	}
	if err != nil {
		return nil, err
	}
	replica, err := s.openReplica(ctx, reachable, t.ID, t.URL)
	if err != nil {
		return nil, err
	}
	opts := recovery.FailoverOptions{Checkpoint: req.Checkpoint, Restore: req.Restore, GraphsRoot: s.cfg.GraphsRoot, DryRun: req.DryRun, Force: req.Force,
		Postgres: s.postgresLocation}
	plan, err := recovery.PlanFailover(ctx, reachable, replica, t, from, opts)
	if err != nil {
		replica.Store().Close()
		return nil, err
	}
	out.Outcome, err = recovery.Failover(ctx, replica, plan, opts)
	if err != nil || req.DryRun {
		replica.Store().Close()
		return out, err
	}
	s.switchPrimary(replica, t.URL)
	if s.cfg.StateDir != "" {
		if err := recovery.SaveRedirect(s.cfg.StateDir, from, t.URL, replica.ID()); err != nil {
			return out, fmt.Errorf("%w: %w", ErrSwitchNotRecorded.With(s.redact(t.URL), problem.NoRemedy), err)
		}
		out.RecordedIn = s.cfg.StateDir
	}
	return out, nil
}

// CheckTarget refuses an unknown target id.
func (s *Service) CheckTarget(ctx context.Context, id string) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	_, err = replication.GetTarget(ctx, r, id)
	return err
}

// failoverDone reports a failover found completed, finishing its restores
// when asked (graphs whose directories are missing).
func (s *Service) failoverDone(ctx context.Context, primary *repo.Repository, sw *recovery.Switch, restore bool) (*FailoverResult, error) {
	done := &recovery.Completed{Switch: *sw}
	if restore {
		var err error
		if done, err = recovery.FinishRestores(ctx, primary, sw, s.cfg.GraphsRoot, recovery.FailoverOptions{Postgres: s.postgresLocation}); err != nil {
			return nil, err
		}
	}
	return &FailoverResult{AlreadyDone: done}, nil
}

// ErrTargetNotSeen: the primary is gone and this machine never saw the
// target it was asked to promote.
var ErrTargetNotSeen = &problem.Error{Kind: problem.NotFound, Code: "not_found", Remedy: problem.GiveTargetURL,
	Msg: "the primary does not answer and this machine has not seen that target"}

// resolveTarget finds target id: in the primary's meta, else (primary
// gone) in the targets this machine last saw, else id is taken as a URL.
func (s *Service) resolveTarget(ctx context.Context, primary *repo.Repository, id string) (replication.Target, error) {
	if strings.Contains(id, "://") {
		return replication.Target{ID: "promoted", URL: id}, nil
	}
	if primary != nil {
		t, err := replication.GetTarget(ctx, primary, id)
		if err == nil {
			s.rememberTargets(ctx, primary)
		}
		return t, err
	}
	for _, t := range s.rememberedTargets() {
		if t.ID == id {
			return t, nil
		}
	}
	return replication.Target{}, fmt.Errorf("target %q: %w", id, ErrTargetNotSeen.With(id, problem.GiveTargetURL))
}

// AutoFailover runs the opt-in automatic failover monitor until ctx ends;
// when it promotes a target, this service switches to it.
func (s *Service) AutoFailover(ctx context.Context, policy recovery.AutoPolicy, onEvent func(recovery.AutoEvent)) error {
	from, _, err := s.PrimaryURL()
	if err != nil {
		return err
	}
	if policy.GraphsRoot == "" {
		policy.GraphsRoot = s.cfg.GraphsRoot
	}
	m := &recovery.Monitor{
		Policy:     policy,
		PrimaryURL: from,
		Open:       s.cfg.Open,
		OpenRepo: func(ctx context.Context, store blob.Store) (*repo.Repository, error) {
			s.mu.RLock()
			known := s.primary
			s.mu.RUnlock()
			if known == nil {
				return repo.Open(ctx, store, s.openOptions())
			}
			cfg, ok, err := repo.ReadConfig(ctx, store)
			switch {
			case err != nil:
				return nil, err
			case !ok || cfg.ID != known.ID():
				return nil, repo.ErrNotARepository
			}
			return known.OnStore(store, s.cfg.CacheDir), nil
		},
		OnSwitch: func(from, to, id string) error {
			store, err := s.cfg.Open(ctx, to)
			if err != nil {
				return err
			}
			replica, err := repo.Open(ctx, store, s.openOptions())
			if err != nil {
				store.Close()
				return err
			}
			s.switchPrimary(replica, to)
			if s.cfg.StateDir == "" {
				return nil
			}
			return recovery.SaveRedirect(s.cfg.StateDir, from, to, id)
		},
		OnEvent: onEvent,
	}
	return m.Run(ctx)
}

// Health is the whole system at a glance: HEALTHY, DEGRADED or CRITICAL
// with the reasons. A primary that cannot be opened is CRITICAL, not an
// error.
func (s *Service) Health(ctx context.Context) (*recovery.Health, error) {
	url, _, err := s.PrimaryURL()
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 20*time.Second)
	r, err := s.Primary(octx)
	cancel()
	if err != nil {
		return recovery.PrimaryDown(s.redact(url), err), nil
	}
	s.rememberTargets(ctx, r)
	var graphs []string
	if sources, err := s.cfg.Sources(); err == nil {
		for _, src := range sources {
			graphs = append(graphs, src.Graph)
		}
	}
	return recovery.SystemHealth(ctx, r, s.cfg.Open, recovery.HealthOptions{BackupInterval: s.cfg.BackupInterval, GraphIntervals: s.cfg.Schedule.GraphIntervals, Graphs: graphs})
}

// RecoveryStatus is the latest checkpoint, the achievable RPO at each
// location and the failover history.
type RecoveryStatus struct {
	Checkpoint *recovery.CheckpointHealth `json:"latest_checkpoint"`
	Locations  []LocationStatus           `json:"locations"`
	Failovers  []recovery.Switch          `json:"failovers"`
}

// LocationStatus is one location of RecoveryStatus.
type LocationStatus struct {
	Location   string  `json:"location"`
	Status     string  `json:"status"`
	RPOSeconds float64 `json:"rpo_seconds"`
}

// RecoveryStatus computes the recovery status now.
func (s *Service) RecoveryStatus(ctx context.Context) (*RecoveryStatus, error) {
	h, err := s.Health(ctx)
	if err != nil {
		return nil, err
	}
	return RecoveryStatusOf(h), nil
}

// RecoveryStatusOf is the recovery status a health report implies (for
// front ends that keep the health report).
func RecoveryStatusOf(h *recovery.Health) *RecoveryStatus {
	primary := replication.Healthy
	if !h.Primary.Reachable && h.Primary.Error != "" {
		primary = replication.Unreachable
	}
	out := &RecoveryStatus{Checkpoint: h.Checkpoint, Locations: []LocationStatus{{Location: recovery.PrimaryName, Status: primary}}, Failovers: h.Failovers}
	for _, t := range h.Targets {
		out.Locations = append(out.Locations, LocationStatus{Location: t.ID, Status: t.Status, RPOSeconds: t.RPOSeconds})
	}
	if out.Failovers == nil {
		out.Failovers = []recovery.Switch{}
	}
	return out
}

// GraphView is a graph with its newest snapshot.
type GraphView struct {
	ID  string `json:"id"`
	Dir string `json:"dir,omitempty"`
	// Source is "files", "postgres" or "postgres+files"; Postgres names
	// the workspace and its database (without password).
	Source    string        `json:"source,omitempty"`
	Postgres  string        `json:"postgres,omitempty"`
	Snapshots int           `json:"snapshots"`
	Latest    *repo.Summary `json:"latest,omitempty"`
}

// Graphs lists the known graphs and those with snapshots, given every
// snapshot (a front end may pass its cached list).
func (s *Service) Graphs(snaps []repo.Summary) ([]GraphView, error) {
	sources, err := s.cfg.Sources()
	if err != nil {
		return nil, err
	}
	byID := map[string]*GraphView{}
	var order []string
	for _, src := range sources {
		v := &GraphView{ID: src.Graph, Dir: src.Dir, Source: "files"}
		if src.Postgres != nil {
			v.Source, v.Postgres = "postgres", src.Postgres.String()
			if src.Dir != "" {
				v.Source = "postgres+files"
			}
		}
		byID[src.Graph] = v
		order = append(order, src.Graph)
	}
	for i := range snaps {
		v := snaps[i]
		g := byID[v.Graph]
		if g == nil {
			g = &GraphView{ID: v.Graph}
			byID[v.Graph] = g
			order = append(order, v.Graph)
		}
		g.Snapshots++
		if g.Latest == nil || v.Time.After(g.Latest.Time) {
			g.Latest = &v
		}
	}
	out := make([]GraphView, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}

// WatchRequest is continuous protection of some graphs (or all).
type WatchRequest struct {
	Graphs      []string
	All         bool
	MinInterval time.Duration
	Rescan      time.Duration
	// Poll is how often a graph in PostgreSQL is looked at.
	Poll time.Duration
	// Retention, when set, is applied to each graph after its backups.
	Retention  *retention.Policy
	Logger     *slog.Logger
	OnSnapshot func(watch.Event)
}

// Watch backs up every settled state of the graphs until ctx ends.
func (s *Service) Watch(ctx context.Context, req WatchRequest) error {
	if req.All == (len(req.Graphs) > 0) {
		return problem.Errorf(problem.Invalid, problem.NoRemedy, "", "name the graphs to watch, or all of them")
	}
	if req.Retention != nil {
		if err := req.Retention.Validate(); err != nil {
			return err
		}
	}
	sources, _, err := s.pick(req.Graphs, req.All, "watch")
	if err != nil {
		return err
	}
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	return watch.Run(ctx, r, sources, watch.Options{
		Backup: func(ctx context.Context, src backup.Source) (*backup.Result, error) {
			return s.backupRaw(ctx, src, nil)
		},
		MinInterval: req.MinInterval, Rescan: req.Rescan, Poll: req.Poll, Retention: req.Retention,
		Logger: req.Logger, OnSnapshot: req.OnSnapshot,
	})
}
