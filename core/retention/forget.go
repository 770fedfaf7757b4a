package retention

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/graphkeep/graphkeep/core/repo"
)

// ForgetResult is what Forget decided and did.
type ForgetResult struct {
	Decisions []Decision `json:"decisions"`
	Removed   int        `json:"removed"`
	// Locked counts the snapshots the policy drops that the object lock
	// keeps for now (their decisions say until when).
	Locked int  `json:"locked"`
	DryRun bool `json:"dry_run"`
}

// Forget applies p to graph's snapshots ("" for every graph, each on its
// own) and deletes the manifests of those it does not keep. Chunks stay until
// Prune. Snapshots pinned by a checkpoint are always kept.
func Forget(ctx context.Context, r *repo.Repository, graph string, p Policy, dryRun bool) (*ForgetResult, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	refs, err := r.ListSnapshots(ctx, graph)
	if err != nil {
		return nil, err
	}
	pins, err := r.Pins(ctx)
	if err != nil {
		return nil, err
	}
	byGraph := map[string][]repo.SnapshotRef{}
	var graphs []string
	for _, ref := range refs {
		if _, ok := byGraph[ref.Graph]; !ok {
			graphs = append(graphs, ref.Graph)
		}
		byGraph[ref.Graph] = append(byGraph[ref.Graph], ref)
	}
	res := &ForgetResult{DryRun: dryRun}
	for _, g := range graphs {
		// "latest" must always have something to restore: the newest good
		// snapshot is kept whatever the policy says (newer ones may all be
		// mid-ingestion, as under continuous protection).
		good, _, err := r.LatestGood(ctx, g, byGraph[g])
		if err != nil && !errors.Is(err, repo.ErrNotGood) {
			return nil, err
		}
		for _, d := range Apply(byGraph[g], p, pins) {
			if !d.Keep && err == nil && d.Snapshot.ID == good.ID {
				d.Keep, d.Reasons = true, []string{"newest good snapshot"}
			}
			if !d.Keep {
				// A locked snapshot is kept, not a reason to stop half-way.
				until, lerr := r.LockedUntil(ctx, d.Snapshot.Key())
				if lerr != nil {
					return res, fmt.Errorf("forget: %w", lerr)
				}
				if !until.IsZero() {
					d.Keep, d.Reasons = true, []string{"locked until " + until.UTC().Format(time.RFC3339)}
					res.Locked++
				}
			}
			res.Decisions = append(res.Decisions, d)
			if d.Keep {
				continue
			}
			res.Removed++
			if dryRun {
				continue
			}
			if err := r.DeleteSnapshot(ctx, d.Snapshot); err != nil {
				return res, fmt.Errorf("forget: %w", err)
			}
		}
	}
	return res, nil
}

// DeleteSnapshot forgets one snapshot, refusing when a checkpoint pins it.
func DeleteSnapshot(ctx context.Context, r *repo.Repository, ref repo.SnapshotRef) error {
	pins, err := r.Pins(ctx)
	if err != nil {
		return err
	}
	if cps := pins[ref.Graph+"/"+ref.ID]; len(cps) > 0 {
		return fmt.Errorf("snapshot %s/%s is pinned by checkpoint %s: %w", ref.Graph, ref.ID, cps[0], ErrPinned)
	}
	return r.DeleteSnapshot(ctx, ref)
}
