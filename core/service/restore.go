package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
)

// RestoreRequest names what to restore and where.
type RestoreRequest struct {
	// Graph and Snapshot ("latest", an id or a unique prefix); or All:
	// every graph's latest good snapshot.
	Graph, Snapshot string
	All             bool
	// To is the destination ("" for the graph's own directory); with All,
	// each graph goes to To/GRAPH.
	To string
	// AllowNotGood restores a flagged or mid-ingestion snapshot named by
	// its id.
	AllowNotGood bool
	// AllowOutsideLinks restores symlinks that point outside the
	// destination.
	AllowOutsideLinks bool
	// Force restores into a directory that holds files but no LightRAG
	// data, or another graph's (kept as an undo copy).
	Force bool
	// Confined keeps the destination inside the graphs root or a restore
	// root, symlinks resolved (requests from the network).
	Confined bool
	// A graph in PostgreSQL: ToWorkspace clones it into another workspace
	// (of To when To is a postgres:// URL, else of its own database);
	// To may name another database. DryRun says per table what the
	// restore would add, remove and change, and writes nothing.
	ToWorkspace string
	DryRun      bool
}

// RestorePlan is a prepared restore: what goes where.
type RestorePlan struct {
	Items []RestoreItem
	req   RestoreRequest
}

// RestoreItem is one graph of a plan.
type RestoreItem struct {
	Choice repo.Choice
	Dest   string
	// NewGraph is the graph Dest becomes: a new directory of the graphs
	// root is a graph from then on ("" when Dest is no new graph).
	NewGraph string
	// Postgres is where a snapshot of a PostgreSQL graph goes (nil for a
	// directory's); InPlace: the graph's own workspace.
	Postgres *postgres.Location
	InPlace  bool
	// UndoGraph is the graph the undo snapshot of what a restore into
	// PostgreSQL replaces is kept as.
	UndoGraph string
}

// Restore prepares and runs req.
func (s *Service) Restore(ctx context.Context, req RestoreRequest, progress func(graph string) func(backup.Progress)) ([]*backup.RestoreResult, error) {
	plan, err := s.PrepareRestore(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.RunRestore(ctx, plan, progress)
}

// PrepareRestore resolves the snapshots and destinations of req, and
// refuses what would fail (a snapshot not good, a destination outside the
// roots) before anything is written.
func (s *Service) PrepareRestore(ctx context.Context, req RestoreRequest) (*RestorePlan, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	var choices []repo.Choice
	if req.All {
		snaps, err := r.ListSnapshots(ctx, "")
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, ref := range snaps {
			if seen[ref.Graph] {
				continue
			}
			seen[ref.Graph] = true
			c, _, err := r.LatestGood(ctx, ref.Graph, snaps)
			if err != nil {
				return nil, err
			}
			choices = append(choices, c)
		}
		if len(choices) == 0 {
			return nil, problem.Errorf(problem.NotFound, problem.NoRemedy, "", "the repository holds no snapshots")
		}
	} else {
		if err := s.checkGraph(ctx, r, req.Graph); err != nil {
			return nil, err
		}
		c, err := r.Resolve(ctx, req.Graph, req.Snapshot)
		if err != nil {
			return nil, err
		}
		m, err := r.Cache().Manifest(ctx, c.Ref)
		if err != nil {
			return nil, err
		}
		if !m.Good() && !req.AllowNotGood {
			return nil, fmt.Errorf("snapshot %s/%s is %s: %w", c.Ref.Graph, c.Ref.ID, m.NotGoodReason(), repo.ErrNotGood.With(c.Ref.Graph, problem.AllowNotGood))
		}
		choices = []repo.Choice{c}
	}
	plan := &RestorePlan{req: req}
	for _, c := range choices {
		m, err := r.Cache().Manifest(ctx, c.Ref)
		if err != nil {
			return nil, err
		}
		if m.Postgres != nil {
			it, err := s.postgresDest(ctx, c, m, req)
			if err != nil {
				return nil, err
			}
			plan.Items = append(plan.Items, it)
			continue
		}
		if req.ToWorkspace != "" || postgres.IsURL(req.To) {
			return nil, problem.Errorf(problem.Invalid, problem.NoRemedy, c.Ref.Graph, "snapshot %s/%s is of a directory, not of a PostgreSQL workspace: restore it into a directory", c.Ref.Graph, c.Ref.ID)
		}
		if req.DryRun {
			return nil, problem.Errorf(problem.Invalid, problem.NoRemedy, c.Ref.Graph, "a dry run compares a PostgreSQL workspace; snapshot %s/%s is of a directory", c.Ref.Graph, c.Ref.ID)
		}
		dest, err := s.restoreDest(c.Ref.Graph, req)
		if err != nil {
			return nil, err
		}
		if err := s.checkDestOwner(ctx, r, c.Ref.Graph, dest, req.Force); err != nil {
			return nil, err
		}
		plan.Items = append(plan.Items, RestoreItem{Choice: c, Dest: dest, NewGraph: s.newGraphAt(c.Ref.Graph, dest)})
	}
	return plan, nil
}

// RunRestore restores each item of plan, verified and swapped into place.
// Graphs restore a few at once, sharing one read-ahead (its window, memory
// budget and file slots): one graph's start and end overlap another's
// downloads. Results come in the plan's order; on the first failure the
// graphs still running stop (their destinations untouched) and those done
// are returned with the error.
func (s *Service) RunRestore(ctx context.Context, plan *RestorePlan, progress func(graph string) func(backup.Progress)) ([]*backup.RestoreResult, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(graphsRestoredAtOnce)
	downloads := backup.NewDownloads(gctx, r, 0)
	defer downloads.Close()
	done := make([]*backup.RestoreResult, len(plan.Items))
	for i, it := range plan.Items {
		opts := backup.RestoreOptions{AllowNotGood: plan.req.AllowNotGood, Force: plan.req.Force, AllowOutsideLinks: plan.req.AllowOutsideLinks, Downloads: downloads}
		if progress != nil {
			opts.Progress = progress(it.Choice.Ref.Graph)
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if it.Postgres != nil {
				res, err := s.restorePostgres(gctx, r, it, plan.req, opts)
				if res != nil {
					res.PassedOver = it.Choice.Passed
					done[i] = res
				}
				return err
			}
			res, err := backup.Restore(gctx, r, it.Choice.Ref, it.Dest, opts)
			if err != nil {
				return err
			}
			res.PassedOver = it.Choice.Passed
			res.NewGraph = it.NewGraph
			done[i] = res
			return nil
		})
	}
	err = g.Wait()
	var results []*backup.RestoreResult
	for _, res := range done {
		if res != nil {
			results = append(results, res)
		}
	}
	return results, err
}

// graphsRestoredAtOnce: enough for one graph's start and end to overlap
// another's downloads; more only hold more manifests in memory.
const graphsRestoredAtOnce = 3

// ErrOutsideRestoreRoots: a confined restore named a destination outside
// the roots.
var ErrOutsideRestoreRoots = problem.New(problem.Invalid, "outside_restore_roots", "outside the restore roots")

// restoreDest is where graph goes: To (To/GRAPH with All), else the graph's
// known directory, else GRAPHS_ROOT/GRAPH. A confined destination must lie
// inside the graphs root or a restore root once every symlink is resolved.
func (s *Service) restoreDest(graph string, req RestoreRequest) (string, error) {
	if req.To == "" {
		if src, err := s.Source(graph); err == nil {
			return src.Dir, nil
		}
		if s.cfg.GraphsRoot == "" {
			return "", problem.Errorf(problem.Invalid, problem.SetGraphsRoot, graph, "where to? no destination was given and no graphs root is configured for graph %q", graph)
		}
		return filepath.Join(s.cfg.GraphsRoot, graph), nil
	}
	to := req.To
	if req.All {
		to = filepath.Join(to, graph)
	}
	if !req.Confined {
		return to, nil
	}
	var roots []string
	for _, root := range append([]string{s.cfg.GraphsRoot}, s.cfg.RestoreRoots...) {
		if root != "" {
			roots = append(roots, root)
		}
	}
	candidates := roots
	if !filepath.IsAbs(to) && len(roots) > 0 {
		candidates = roots[:1] // a relative path is relative to the graphs root (else the restore root)
	}
	for _, root := range candidates {
		abs, err := resolveExisting(root)
		if err != nil {
			continue
		}
		dest := to
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(abs, dest)
		}
		real, err := resolveExisting(filepath.Clean(dest))
		if err != nil {
			return "", problem.Errorf(problem.Invalid, problem.NoRemedy, req.To, "restore destination %q: %v", req.To, err)
		}
		if rel, err := filepath.Rel(abs, real); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			if info, err := os.Stat(real); err == nil && !info.IsDir() {
				return "", &problem.Error{Kind: problem.Invalid, Code: "not_a_directory", Object: req.To,
					Msg: fmt.Sprintf("restore destination %q is a file, not a directory; name a new or graph directory", req.To)}
			}
			return real, nil
		}
	}
	return "", fmt.Errorf("restores may only write inside %v; %q is not (symlinks resolved): %w", roots, req.To, ErrOutsideRestoreRoots.With(req.To, problem.NoRemedy))
}

// resolveExisting returns p (absolute) with every symlink in its existing
// part resolved; the part that does not exist yet is appended as written.
func resolveExisting(p string) (string, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for cur := p; ; {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", err
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

// DeleteSnapshot forgets one snapshot (refused while a checkpoint pins
// it).
func (s *Service) DeleteSnapshot(ctx context.Context, graph, id string) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	ref, err := r.FindSnapshot(ctx, graph, id)
	if err != nil {
		return err
	}
	if err := retention.DeleteSnapshot(ctx, r, ref); err != nil {
		return err
	}
	s.changed()
	return nil
}

// CleanupRequest applies a retention policy and prunes.
type CleanupRequest struct {
	Graph  string            // "" for every graph
	Policy *retention.Policy // nil for the configured default
	DryRun bool
	Prune  bool
}

// CleanupResult is what a cleanup forgot and pruned.
type CleanupResult struct {
	Forget *retention.ForgetResult `json:"forget,omitempty"`
	// Graphs are the forgets of graphs with their own policy (scheduled
	// cleanup).
	Graphs map[string]*retention.ForgetResult `json:"graphs,omitempty"`
	Prune  *retention.PruneResult             `json:"prune,omitempty"`
}

// CleanupPolicy is the policy req applies (its own, else the default),
// refused when it would keep nothing.
func (s *Service) CleanupPolicy(req CleanupRequest) (retention.Policy, error) {
	policy := s.cfg.Retention
	if req.Policy != nil {
		policy = *req.Policy
	}
	return policy, policy.Validate()
}

// Cleanup forgets the snapshots the policy does not keep, then prunes when
// asked (a dry run changes nothing).
func (s *Service) Cleanup(ctx context.Context, req CleanupRequest) (*CleanupResult, error) {
	policy, err := s.CleanupPolicy(req)
	if err != nil {
		return nil, err
	}
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.checkGraph(ctx, r, req.Graph); err != nil {
		return nil, err
	}
	f, err := retention.Forget(ctx, r, req.Graph, policy, req.DryRun)
	if err != nil {
		return nil, err
	}
	out := &CleanupResult{Forget: f}
	if !req.DryRun {
		s.changed()
	}
	if req.Prune {
		if out.Prune, err = s.Prune(ctx, req.DryRun); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ScheduledCleanup forgets every graph by the default policy (when set),
// graphs with their own policy by it, then prunes once.
func (s *Service) ScheduledCleanup(ctx context.Context) (*CleanupResult, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	out := &CleanupResult{Graphs: map[string]*retention.ForgetResult{}}
	if !s.cfg.Retention.Empty() {
		if out.Forget, err = retention.Forget(ctx, r, "", s.cfg.Retention, false); err != nil {
			return out, err
		}
	}
	for g, p := range s.cfg.GraphRetention {
		if out.Graphs[g], err = retention.Forget(ctx, r, g, p, false); err != nil {
			return out, err
		}
	}
	s.changed()
	out.Prune, err = s.Prune(ctx, false)
	return out, err
}

// Prune deletes the chunks no snapshot names.
func (s *Service) Prune(ctx context.Context, dryRun bool) (*retention.PruneResult, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	return retention.Prune(ctx, r, retention.PruneOptions{DryRun: dryRun, Lease: s.cfg.Lease})
}
