// Package replication keeps full, consistent copies of a repository in
// other buckets (targets), on any provider. A target holds the same
// repository (same id, same keys): chunks are copied as stored, then
// manifests, then checkpoints and meta, so a target is a restorable
// repository at every instant. Only what a target lacks moves.
package replication

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Opener opens the storage a repository URL names. Callers pass
// providers.Open; core does not know the providers.
type Opener func(ctx context.Context, url string) (blob.Store, error)

// Target is a bucket (any provider) that receives a replica.
type Target struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Graphs limits the replica to these graphs; empty means all.
	Graphs []string `json:"graphs,omitempty"`
	// MirrorDeletes removes from the target the snapshots forgotten on the
	// primary. Off by default: a target keeps what it received.
	MirrorDeletes bool      `json:"mirror_deletes"`
	Added         time.Time `json:"added"`
	// Lock is the target's own object lock policy: everything replicated
	// there is written locked by it (the classic immutable off-site copy).
	Lock *repo.LockPolicy `json:"lock,omitempty"`
}

// Includes reports whether graph is replicated to t.
func (t Target) Includes(graph string) bool {
	return len(t.Graphs) == 0 || slices.Contains(t.Graphs, graph)
}

const targetsDir = "targets"

// Errors callers act on.
var (
	ErrUnknownTarget  = &problem.Error{Kind: problem.NotFound, Code: "not_found", Remedy: problem.AddTarget, Msg: "no such target"}
	ErrTargetExists   = &problem.Error{Kind: problem.Conflict, Code: "conflict", Msg: "a target with that id exists"}
	ErrForeignTarget  = &problem.Error{Kind: problem.Invalid, Code: "unprocessable", Msg: "the target holds a different repository"}
	ErrNoTargets      = &problem.Error{Kind: problem.NotFound, Code: "not_found", Remedy: problem.AddTarget, Msg: "no targets"}
	ErrTargetNotReady = &problem.Error{Kind: problem.Invalid, Code: "unprocessable", Msg: "the target cannot be used"}
)

// AddTarget registers t after checking that its storage answers and holds
// nothing, or a replica of this repository.
func AddTarget(ctx context.Context, r *repo.Repository, open Opener, t Target) error {
	if err := repo.CheckGraphID(t.ID); err != nil {
		return fmt.Errorf("target id: %w", err)
	}
	for _, g := range t.Graphs {
		if err := repo.CheckGraphID(g); err != nil {
			return err
		}
	}
	if _, err := GetTarget(ctx, r, t.ID); err == nil {
		return fmt.Errorf("target %q: %w; remove it first", t.ID, ErrTargetExists)
	}
	store, err := open(ctx, t.URL)
	if err != nil {
		return fmt.Errorf("target %q is not reachable: %w: %w", t.ID, ErrTargetNotReady, err)
	}
	defer store.Close()
	if store.Location() == r.Store().Location() {
		return fmt.Errorf("target %q is the primary repository itself: %w", t.ID, ErrTargetNotReady)
	}
	if err := checkTargetRepo(ctx, r, store); err != nil {
		return fmt.Errorf("target %q: %w", t.ID, err)
	}
	if _, err := Probe(ctx, store, 10*time.Second); err != nil {
		return fmt.Errorf("target %q does not accept writes: %w: %w", t.ID, ErrTargetNotReady, err)
	}
	if t.Lock != nil {
		if err := repo.CheckLockable(ctx, store, t.Lock); err != nil {
			return fmt.Errorf("target %q: %w", t.ID, err)
		}
	}
	if t.Added.IsZero() {
		t.Added = time.Now().UTC()
	}
	return r.PutMeta(ctx, targetsDir+"/"+t.ID, t)
}

// checkTargetRepo accepts an empty location or one holding this
// repository.
func checkTargetRepo(ctx context.Context, r *repo.Repository, store blob.Store) error {
	cfg, ok, err := repo.ReadConfig(ctx, store)
	switch {
	case err != nil:
		return err
	case !ok:
		return nil
	case cfg.ID != r.ID():
		return fmt.Errorf("%w (id %s, this repository is %s): choose an empty bucket or prefix", ErrForeignTarget, cfg.ID, r.ID())
	}
	return nil
}

// ListTargets returns the registered targets, by id.
func ListTargets(ctx context.Context, r *repo.Repository) ([]Target, error) {
	ids, err := r.ListMeta(ctx, targetsDir)
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	var out []Target
	for _, id := range ids {
		t, err := GetTarget(ctx, r, id)
		if errors.Is(err, ErrUnknownTarget) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// GetTarget returns target id.
func GetTarget(ctx context.Context, r *repo.Repository, id string) (Target, error) {
	var t Target
	err := r.GetMeta(ctx, targetsDir+"/"+id, &t)
	if errors.Is(err, repo.ErrMetaMissing) {
		return t, fmt.Errorf("target %q: %w", id, ErrUnknownTarget)
	}
	return t, err
}

// RemoveTarget forgets target id (its bucket is left as it is).
func RemoveTarget(ctx context.Context, r *repo.Repository, id string) error {
	if _, err := GetTarget(ctx, r, id); err != nil {
		return err
	}
	if err := r.DeleteMeta(ctx, targetsDir+"/"+id); err != nil {
		return err
	}
	return r.DeleteMeta(ctx, statusDir+"/"+id)
}
