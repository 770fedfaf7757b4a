package recovery

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Switch records one failover: which copy became the primary.
type Switch struct {
	Time       time.Time `json:"time"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Target     string    `json:"target"`
	Checkpoint string    `json:"checkpoint,omitempty"`
	Host       string    `json:"host"`
	Forced     bool      `json:"forced"`
	Automatic  bool      `json:"automatic"`
}

const failoverDir = "failover"

// OldPrimaryTarget is the target id the old primary gets after a failover,
// so that replication catches it up (failback).
const OldPrimaryTarget = "old-primary"

// FailoverOptions choose what a failover does.
type FailoverOptions struct {
	// Checkpoint to promote with ("" or "latest": the newest on the target).
	Checkpoint string
	// Restore every graph of the checkpoint into GraphsRoot.
	Restore    bool
	GraphsRoot string
	DryRun     bool
	// Force promotes a target that is not restorable for the checkpoint, or
	// holds none.
	Force     bool
	Automatic bool
	// Postgres says where a graph kept in PostgreSQL is restored, given
	// where its snapshot was read from; nil: there.
	Postgres func(graph string, recorded postgres.Location) postgres.Location
}

// postgresDest is where a snapshot of a graph in PostgreSQL goes (nil for
// a directory's).
func (o FailoverOptions) postgresDest(m *repo.Manifest) *postgres.Location {
	if m == nil || m.Postgres == nil {
		return nil
	}
	loc := postgres.Location{URL: m.Postgres.Database, Workspace: m.Postgres.Workspace}
	if o.Postgres != nil {
		loc = o.Postgres(m.Graph, loc)
	}
	return &loc
}

// Plan says exactly what a failover would do, and why it may not.
type Plan struct {
	From       string           `json:"from"`
	To         string           `json:"to"`
	Target     string           `json:"target"`
	Checkpoint *repo.Checkpoint `json:"checkpoint,omitempty"`
	OnTarget   *LocationResult  `json:"on_target,omitempty"`
	// PrimaryReachable: when true, Loss says what the target lacks.
	PrimaryReachable bool             `json:"primary_reachable"`
	Loss             *replication.Lag `json:"data_loss,omitempty"`
	Restores         []RestoreStep    `json:"restores,omitempty"`
	Steps            []string         `json:"steps"`
	// Blockers say why the failover needs --force; empty when it does not.
	Blockers []string `json:"blockers,omitempty"`
}

// RestoreStep is one graph to restore.
type RestoreStep struct {
	Graph    string `json:"graph"`
	Snapshot string `json:"snapshot"`
	Dest     string `json:"dest"`
	// Workspace is where a graph kept in PostgreSQL goes (its files, if
	// any, go to Dest).
	Workspace string             `json:"workspace,omitempty"`
	postgres  *postgres.Location // the same, to connect
}

// PlanFailover works out a failover to target t, whose repository is
// replica (opened with the keys). primary is nil when the primary cannot
// be opened; fromURL is the primary's URL as configured.
func PlanFailover(ctx context.Context, primary, replica *repo.Repository, t replication.Target, fromURL string, opts FailoverOptions) (*Plan, error) {
	p := &Plan{From: fromURL, To: t.URL, Target: t.ID, PrimaryReachable: primary != nil}
	cp, err := Find(ctx, replica, opts.Checkpoint)
	switch {
	case errors.Is(err, ErrNoCheckpoint):
		p.Blockers = append(p.Blockers, fmt.Sprintf("target %s holds no checkpoint %q", t.ID, orLatest(opts.Checkpoint)))
	case err != nil:
		return nil, fmt.Errorf("read checkpoints on target %s: %w", t.ID, err)
	default:
		p.Checkpoint = cp
		res := validateAt(ctx, replica, cp, Location{Name: t.ID, URL: t.URL, Store: replica.Store()}, false)
		p.OnTarget = &res
		if res.State != Restorable {
			p.Blockers = append(p.Blockers, fmt.Sprintf("checkpoint %s is not restorable on %s: %s %s", cp.ID, t.ID, res.State, res.Error))
		}
	}
	if primary != nil {
		lag, err := replication.ComputeLag(ctx, primary, t, replica.Store(), "")
		if err == nil {
			p.Loss = lag
			if lag.Snapshots > 0 {
				p.Blockers = append(p.Blockers, fmt.Sprintf("target %s is %d snapshots (%d bytes) behind the primary: failing over loses up to %s of backups; replicate first, or force the failover",
					t.ID, lag.Snapshots, lag.Bytes, seconds(lag.RPOSeconds)))
			}
		}
	}
	p.Steps = append(p.Steps, fmt.Sprintf("record the switch %s -> %s in the new primary", fromURL, t.URL))
	p.Steps = append(p.Steps, fmt.Sprintf("make %s the primary for every later command on this machine", t.URL))
	p.Steps = append(p.Steps, fmt.Sprintf("add the old primary as target %q of the new one, so replication catches it up (failback)", OldPrimaryTarget))
	if opts.Restore && p.Checkpoint != nil {
		for _, s := range p.Checkpoint.Snapshots {
			dest := filepath.Join(opts.GraphsRoot, s.Graph)
			step := RestoreStep{Graph: s.Graph, Snapshot: s.ID, Dest: dest}
			m, err := snapshotManifest(ctx, replica, s.Graph, s.ID)
			if err != nil {
				return nil, err
			}
			if loc := opts.postgresDest(m); loc != nil {
				step.postgres, step.Workspace = loc, loc.String()
				if m.SourceKind() == "postgres" {
					step.Dest = ""
				}
				p.Steps = append(p.Steps, fmt.Sprintf("restore %s/%s into %s (one transaction; the state it replaces kept as a snapshot)", s.Graph, s.ID, loc))
			} else {
				p.Steps = append(p.Steps, fmt.Sprintf("restore %s/%s into %s (verified, swapped in by rename)", s.Graph, s.ID, dest))
			}
			if step.Dest != "" && opts.GraphsRoot == "" {
				return nil, fmt.Errorf("graph %s keeps files: restoring it needs a graphs root", s.Graph)
			}
			p.Restores = append(p.Restores, step)
		}
	}
	return p, nil
}

func orLatest(id string) string {
	if id == "" {
		return "latest"
	}
	return id
}

// Outcome is what Failover did.
type Outcome struct {
	Plan *Plan `json:"plan"`
	// Possible says whether the failover runs as asked: no blockers, or
	// forced. A dry run that finds it impossible succeeds, saying so.
	Possible bool                    `json:"possible"`
	Switch   *Switch                 `json:"switch,omitempty"`
	Restored []*backup.RestoreResult `json:"restored,omitempty"`
}

// ErrBlocked: the failover needs --force.
var ErrBlocked = &problem.Error{Kind: problem.NeedsForce, Code: "conflict", Remedy: problem.Force, Msg: "failover refused"}

// Failover carries out plan on replica (the new primary): it records the
// switch there, registers the old primary as a target (without probing:
// it may be down), and restores the checkpoint's graphs if asked. The
// caller persists the switch for later commands (SaveRedirect).
func Failover(ctx context.Context, replica *repo.Repository, plan *Plan, opts FailoverOptions) (*Outcome, error) {
	out := &Outcome{Plan: plan, Possible: len(plan.Blockers) == 0 || opts.Force}
	if opts.DryRun {
		return out, nil // the answer is the plan, possible or not
	}
	if !out.Possible {
		return out, fmt.Errorf("%w: %v", ErrBlocked.With(plan.Target, problem.Force), plan.Blockers)
	}
	host, _ := os.Hostname()
	sw := &Switch{Time: time.Now().UTC(), From: plan.From, To: plan.To, Target: plan.Target, Host: host,
		Forced: len(plan.Blockers) > 0, Automatic: opts.Automatic}
	if plan.Checkpoint != nil {
		sw.Checkpoint = plan.Checkpoint.ID
	}
	if err := replica.PutMeta(ctx, failoverDir+"/"+sw.Time.Format("20060102T150405.000000000Z"), sw); err != nil {
		return out, fmt.Errorf("record the switch on the new primary: %w", err)
	}
	out.Switch = sw
	// The old primary becomes a target of the new one (unless a target
	// already points at it); entries pointing at the new primary itself go.
	targets, err := replication.ListTargets(ctx, replica)
	if err != nil {
		return out, err
	}
	tracked := false
	for _, t := range targets {
		switch t.URL {
		case plan.To:
			_ = replica.DeleteMeta(ctx, "targets/"+t.ID)
		case plan.From:
			tracked = true
		}
	}
	if !tracked {
		old := replication.Target{ID: OldPrimaryTarget, URL: plan.From, Added: sw.Time}
		if err := replica.PutMeta(ctx, "targets/"+OldPrimaryTarget, old); err != nil {
			return out, fmt.Errorf("register the old primary as a target: %w", err)
		}
	}
	if plan.OnTarget != nil && plan.Checkpoint != nil {
		// What was checked on the target is now what is known of the primary.
		onPrimary := *plan.OnTarget
		onPrimary.Location = PrimaryName
		_ = SaveValidation(ctx, replica, &Validation{Checkpoint: plan.Checkpoint.ID, Time: sw.Time, Locations: []LocationResult{onPrimary}})
	}
	for _, step := range plan.Restores {
		ref, err := replica.FindSnapshot(ctx, step.Graph, step.Snapshot)
		if err != nil {
			return out, err
		}
		// A checkpoint from before checkpoints named only good snapshots
		// may name a flagged or mid-ingestion one: restore the graph's
		// newest good snapshot instead, as "latest" would.
		var passed []repo.PassedOver
		if m, err := replica.Cache().Manifest(ctx, ref); err == nil && !m.Good() {
			refs, err := replica.ListSnapshots(ctx, step.Graph)
			if err != nil {
				return out, err
			}
			c, _, err := replica.LatestGood(ctx, step.Graph, refs)
			if err != nil {
				return out, fmt.Errorf("restore %s: the checkpoint's snapshot %s is %s, and %w", step.Graph, ref.ID, m.NotGoodReason(), err)
			}
			ref, passed = c.Ref, []repo.PassedOver{{ID: m.ID, Reason: m.NotGoodReason()}}
		}
		res, err := backup.RestoreGraph(ctx, replica, ref, step.Dest, step.postgres, backup.RestoreOptions{})
		if res != nil {
			res.PassedOver = passed
		}
		if err != nil {
			return out, fmt.Errorf("restore %s: %w", step.Graph, err)
		}
		out.Restored = append(out.Restored, res)
	}
	return out, nil
}

// History returns the failovers recorded in r, oldest first.
func History(ctx context.Context, r *repo.Repository) ([]Switch, error) {
	names, err := r.ListMeta(ctx, failoverDir)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Switch
	for _, n := range names {
		var s Switch
		if err := r.GetMeta(ctx, failoverDir+"/"+n, &s); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Completed is a failover that already happened, found again.
type Completed struct {
	Switch Switch `json:"switch"`
	// Restored are the graphs restored now because their directories were
	// missing; Present those already in place.
	Restored []*backup.RestoreResult `json:"restored,omitempty"`
	Present  []string                `json:"present,omitempty"`
}

// FindCompleted looks in primary (the repository in use now) for the
// failover that made it the primary from target (an id or URL): a
// failover run again after it completed. nil when there is none.
func FindCompleted(ctx context.Context, primary *repo.Repository, primaryURL, target string) (*Switch, error) {
	hist, err := History(ctx, primary)
	if err != nil {
		return nil, err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		sw := hist[i]
		if sw.To == primaryURL && (sw.Target == target || sw.To == target) {
			return &sw, nil
		}
	}
	return nil, nil
}

// FinishRestores restores into graphsRoot every graph of the switch's
// checkpoint whose directory is missing, or, for a graph in PostgreSQL,
// whose workspace is empty (a failover --restore interrupted before it
// restored them all); graphs already there are left alone.
func FinishRestores(ctx context.Context, primary *repo.Repository, sw *Switch, graphsRoot string, opts FailoverOptions) (*Completed, error) {
	out := &Completed{Switch: *sw}
	if sw.Checkpoint == "" {
		return out, nil
	}
	cp, err := primary.LoadCheckpoint(ctx, sw.Checkpoint)
	if err != nil {
		return out, fmt.Errorf("checkpoint %s of the failover: %w", sw.Checkpoint, err)
	}
	for _, s := range cp.Snapshots {
		dest := filepath.Join(graphsRoot, s.Graph)
		ref, err := primary.FindSnapshot(ctx, s.Graph, s.ID)
		if err != nil {
			return out, err
		}
		m, err := primary.Cache().Manifest(ctx, ref)
		if err != nil {
			return out, err
		}
		pg := opts.postgresDest(m)
		if pg == nil {
			if _, err := os.Stat(dest); err == nil {
				out.Present = append(out.Present, s.Graph)
				continue
			}
		} else {
			if empty, err := postgres.Empty(ctx, *pg); err != nil {
				return out, err
			} else if !empty {
				out.Present = append(out.Present, s.Graph)
				continue
			}
			if m.SourceKind() == "postgres" {
				dest = ""
			}
		}
		res, err := backup.RestoreGraph(ctx, primary, ref, dest, pg, backup.RestoreOptions{AllowNotGood: true})
		if err != nil {
			return out, fmt.Errorf("restore %s: %w", s.Graph, err)
		}
		out.Restored = append(out.Restored, res)
	}
	return out, nil
}

func snapshotManifest(ctx context.Context, r *repo.Repository, graph, id string) (*repo.Manifest, error) {
	ref, err := r.FindSnapshot(ctx, graph, id)
	if err != nil {
		return nil, err
	}
	return r.Cache().Manifest(ctx, ref)
}
