package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

// TargetStatus is a target as every front end shows it: its settings, its
// last known health and its lag. The URL never carries secrets.
type TargetStatus struct {
	ID            string   `json:"id"`
	URL           string   `json:"url"`
	Graphs        []string `json:"graphs,omitempty"`
	MirrorDeletes bool     `json:"mirror_deletes"`
	Status        string   `json:"status"`
	// The lag is null when not known: not measured, or the target does
	// not answer. LastSuccess is null before the first success.
	LagSnapshots *int       `json:"lag_snapshots"`
	LagBytes     *int64     `json:"lag_bytes"`
	RPOSeconds   *float64   `json:"rpo_seconds"`
	LastSuccess  *time.Time `json:"last_success"`
	LastError    string     `json:"last_error,omitempty"`
	ProbeMS      int64      `json:"probe_latency_ms,omitempty"`
	ProbeError   string     `json:"probe_error,omitempty"`
}

// AddTarget registers a target after checking that it answers and holds
// nothing, or a replica of this repository.
func (s *Service) AddTarget(ctx context.Context, t replication.Target) (*TargetStatus, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	if err := replication.AddTarget(ctx, r, s.cfg.Open, t); err != nil {
		return nil, err
	}
	s.rememberTargets(ctx, r)
	s.changed()
	t, err = replication.GetTarget(ctx, r, t.ID)
	if err != nil {
		return nil, err
	}
	st := s.targetStatus(ctx, r, t, false, false)
	return &st, nil
}

// RemoveTarget stops replicating to a target (its bucket is left as it is).
func (s *Service) RemoveTarget(ctx context.Context, id string) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	if err := replication.RemoveTarget(ctx, r, id); err != nil {
		return err
	}
	s.rememberTargets(ctx, r)
	s.changed()
	return nil
}

// Targets lists the targets (or only one) with status and lag; probe
// first probes each (write, read, delete) and records the outcome.
func (s *Service) Targets(ctx context.Context, only string, probe bool) ([]TargetStatus, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	var targets []replication.Target
	if only != "" {
		t, err := replication.GetTarget(ctx, r, only)
		if err != nil {
			return nil, err
		}
		targets = []replication.Target{t}
	} else if targets, err = replication.ListTargets(ctx, r); err != nil {
		return nil, err
	}
	s.rememberTargets(ctx, r)
	out := make([]TargetStatus, 0, len(targets))
	for _, t := range targets {
		out = append(out, s.targetStatus(ctx, r, t, probe, true))
	}
	return out, nil
}

// TargetHealth probes one target now and returns its status.
func (s *Service) TargetHealth(ctx context.Context, id string) (*TargetStatus, error) {
	all, err := s.Targets(ctx, id, true)
	if err != nil {
		return nil, err
	}
	return &all[0], nil
}

func (s *Service) targetStatus(ctx context.Context, r *repo.Repository, t replication.Target, probe, lag bool) TargetStatus {
	st := TargetStatus{ID: t.ID, URL: s.redact(t.URL), Graphs: t.Graphs, MirrorDeletes: t.MirrorDeletes, Status: replication.Unknown}
	dst, openErr := s.cfg.Open(ctx, t.URL)
	if dst != nil {
		defer dst.Close()
	}
	if probe {
		latency, err := time.Duration(0), openErr
		if err == nil {
			latency, err = replication.Probe(ctx, dst, 10*time.Second)
		}
		if err != nil {
			st.ProbeError = err.Error()
		}
		_, _ = replication.Record(ctx, r, t.ID, err, latency, replication.Hysteresis{})
	}
	if rec, err := replication.LoadStatus(ctx, r, t.ID); err == nil {
		st.Status, st.ProbeMS = rec.State, rec.ProbeLatency
		if !rec.LastSuccess.IsZero() {
			last := rec.LastSuccess
			st.LastSuccess = &last
		}
		if rec.LastErrorTime.After(rec.LastSuccess) {
			st.LastError = rec.LastError // an error since fixed is history, not status
		}
	}
	if !lag {
		return st
	}
	if openErr != nil {
		if st.LastError == "" {
			st.LastError = openErr.Error()
		}
		return st
	}
	l, err := replication.ComputeLag(ctx, r, t, dst, s.cfg.CacheDir)
	if err != nil {
		st.LastError = err.Error()
		return st
	}
	st.LagSnapshots, st.LagBytes, st.RPOSeconds = &l.Snapshots, &l.Bytes, &l.RPOSeconds
	return st
}

// Replicate brings every target (or one) up to date, for every graph (or
// one).
func (s *Service) Replicate(ctx context.Context, target, graph string) ([]*replication.Result, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	res, err := replication.RunOnce(ctx, r, s.cfg.Open, replication.WatchOptions{Only: target,
		Replicate: replication.Options{Graph: graph, Lease: s.cfg.Lease, CacheDir: s.cfg.CacheDir}})
	if res == nil {
		res = []*replication.Result{}
	}
	return res, err
}

// WatchReplicationOptions tune continuous replication.
type WatchReplicationOptions struct {
	Target, Graph          string
	Interval, ProbeTimeout time.Duration
	OnEvent                func(replication.Event)
}

// WatchReplication probes and reconciles every target until ctx ends.
func (s *Service) WatchReplication(ctx context.Context, o WatchReplicationOptions) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	return replication.Watch(ctx, r, s.cfg.Open, replication.WatchOptions{Interval: o.Interval, ProbeTimeout: o.ProbeTimeout,
		Only: o.Target, OnEvent: o.OnEvent, Replicate: replication.Options{Graph: o.Graph, Lease: s.cfg.Lease, CacheDir: s.cfg.CacheDir}})
}

// GraphReplication says which targets hold a graph's latest snapshot.
type GraphReplication struct {
	Graph   string          `json:"graph"`
	Latest  string          `json:"latest"`
	Targets []GraphOnTarget `json:"targets"`
}

// GraphOnTarget is one target's copy of a graph.
type GraphOnTarget struct {
	Target      string `json:"target"`
	HoldsLatest bool   `json:"holds_latest"`
	Latest      string `json:"latest,omitempty"`
	Error       string `json:"error,omitempty"`
}

// ReplicationStatus reports every graph with snapshots (or one).
func (s *Service) ReplicationStatus(ctx context.Context, graph string) ([]GraphReplication, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.checkGraph(ctx, r, graph); err != nil {
		return nil, err
	}
	refs, err := r.ListSnapshots(ctx, graph)
	if err != nil {
		return nil, err
	}
	if graph != "" && len(refs) == 0 {
		return nil, problem.Errorf(problem.NotFound, problem.NoRemedy, graph, "graph %q has no snapshots", graph)
	}
	latest := map[string]string{}
	var order []string
	for _, ref := range refs {
		if _, ok := latest[ref.Graph]; !ok {
			order = append(order, ref.Graph)
		}
		latest[ref.Graph] = ref.ID
	}
	targets, err := replication.ListTargets(ctx, r)
	if err != nil {
		return nil, err
	}
	lags := map[string]*replication.Lag{}
	errs := map[string]string{}
	for _, t := range targets {
		dst, err := s.cfg.Open(ctx, t.URL)
		if err == nil {
			lags[t.ID], err = replication.ComputeLag(ctx, r, t, dst, s.cfg.CacheDir)
			dst.Close()
		}
		if err != nil {
			errs[t.ID] = err.Error()
		}
	}
	rows := []GraphReplication{}
	for _, g := range order {
		row := GraphReplication{Graph: g, Latest: latest[g], Targets: []GraphOnTarget{}}
		for _, t := range targets {
			if !t.Includes(g) {
				continue
			}
			one := GraphOnTarget{Target: t.ID, Error: errs[t.ID]}
			if l := lags[t.ID]; l != nil {
				one.Latest = l.Latest[g]
				one.HoldsLatest = one.Latest == latest[g]
			}
			row.Targets = append(row.Targets, one)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// rememberedTargetsFile is where this machine keeps the targets it last
// saw for the configured primary.
func (s *Service) rememberedTargetsFile() string {
	url, _, _ := s.PrimaryURL()
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(s.cfg.StateDir, "targets-"+hex.EncodeToString(sum[:8])+".json")
}

// rememberTargets keeps a local copy of the primary's targets, so that a
// failover can find them when the primary is gone.
func (s *Service) rememberTargets(ctx context.Context, r *repo.Repository) {
	if s.cfg.StateDir == "" {
		return
	}
	targets, err := replication.ListTargets(ctx, r)
	if err != nil {
		return
	}
	data, _ := json.Marshal(targets)
	_ = os.MkdirAll(s.cfg.StateDir, 0o700)
	_ = os.WriteFile(s.rememberedTargetsFile(), data, 0o600)
}

func (s *Service) rememberedTargets() []replication.Target {
	var out []replication.Target
	if s.cfg.StateDir == "" {
		return nil
	}
	if data, err := os.ReadFile(s.rememberedTargetsFile()); err == nil {
		_ = json.Unmarshal(data, &out)
	}
	return out
}

func (s *Service) redact(url string) string {
	if s.cfg.Redact != nil {
		return s.cfg.Redact(url)
	}
	return url
}
