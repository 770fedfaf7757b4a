package retention

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// ErrPinned: a checkpoint pins the snapshot.
var ErrPinned = problem.New(problem.Conflict, "conflict", "pinned by a checkpoint")

// PruneOptions tune Prune.
type PruneOptions struct {
	DryRun bool
	Lease  repo.LeaseOptions
	// Deletes is how many deletes run at once. Default 16.
	Deletes int
}

// PruneResult is what Prune found and did.
type PruneResult struct {
	Referenced     int   `json:"referenced_chunks"`
	Stored         int   `json:"stored_chunks"`
	Unreferenced   int   `json:"unreferenced_chunks"`
	UnreferencedSz int64 `json:"unreferenced_bytes"`
	Deleted        int   `json:"deleted_chunks"`
	DryRun         bool  `json:"dry_run"`
}

// Prune deletes the chunks that no snapshot names. It holds the exclusive
// lease throughout: no backup runs meanwhile, so no backup can be relying on
// a chunk Prune deletes. It is the one operation that lists chunks/.
func Prune(ctx context.Context, r *repo.Repository, opts PruneOptions) (*PruneResult, error) {
	if opts.Deletes <= 0 {
		opts.Deletes = 16
	}
	lease, err := r.AcquireLease(ctx, repo.Exclusive, "prune", opts.Lease)
	if err != nil {
		return nil, err
	}
	defer lease.Release()

	// From every manifest, not the kept index: what prune deletes must be
	// named by no manifest at all.
	idx, err := r.Cache().Rebuild(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: read snapshots: %w", err)
	}
	res := &PruneResult{Referenced: len(idx.Chunks), DryRun: opts.DryRun}
	var garbage []string
	err = blob.Walk(ctx, r.Store(), repo.ChunkPrefix, func(o blob.Object) error {
		id, err := repo.ParseChunkID(o.Key[strings.LastIndex(o.Key, "/")+1:])
		if err != nil {
			return nil // not a chunk graphkeep wrote; leave it alone
		}
		res.Stored++
		if _, ok := idx.Chunks[id]; !ok {
			garbage = append(garbage, o.Key)
			res.UnreferencedSz += o.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune: list chunks: %w", err)
	}
	res.Unreferenced = len(garbage)
	if opts.DryRun || len(garbage) == 0 {
		return res, nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Deletes)
	for _, key := range garbage {
		g.Go(func() error {
			if err := lease.Check(); err != nil {
				return fmt.Errorf("prune stopped: %w", err)
			}
			if err := r.Store().Delete(gctx, key); err != nil {
				return err
			}
			mu.Lock()
			res.Deleted++
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, fmt.Errorf("prune: %w (deleted %d of %d unreferenced chunks; run prune again)", err, res.Deleted, len(garbage))
	}
	return res, nil
}
