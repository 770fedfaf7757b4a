package retention

import (
	"slices"
	"sync"

	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

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
	// Deletes is how many deletes run at once. Default: what the store
	// keeps in flight (blob.RequestsOf), at least 16.
	Deletes int
	// WaitWriters bounds how long Prune waits for the backups and
	// replications that were running when it published what it will
	// delete. Default 1 hour.
	WaitWriters time.Duration
}

// PruneResult is what Prune found and did. Its counts are of objects
// under chunks/: packs of chunks, and chunks stored on their own (format 1).
type PruneResult struct {
	Referenced     int   `json:"referenced_chunks"`
	Stored         int   `json:"stored_chunks"`
	Unreferenced   int   `json:"unreferenced_chunks"`
	UnreferencedSz int64 `json:"unreferenced_bytes"`
	// Recent are unreferenced chunks written since the oldest backup still
	// running began: they may be its uploads, so a later prune decides.
	Recent int `json:"recent_chunks_kept"`
	// Rescued are chunks a snapshot committed while Prune waited named
	// again: they stay.
	Rescued int `json:"rescued_chunks"`
	Deleted int `json:"deleted_chunks"`
	// Locked are unreferenced chunks the object lock keeps for now; a
	// prune after LockedUntil (the earliest) can delete them.
	Locked      int       `json:"locked_chunks_kept"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Compactable are packs a quarter or more of which no snapshot names
	// (CompactableSz bytes); Compacted of them were rewritten with only the
	// rest, freeing CompactedSz.
	Compactable   int   `json:"compactable_packs"`
	CompactableSz int64 `json:"compactable_bytes"`
	Compacted     int   `json:"compacted_packs"`
	CompactedSz   int64 `json:"compacted_bytes_freed"`
	// DeadSweeps are records of earlier prunes that died, removed.
	DeadSweeps int `json:"dead_prunes_cleaned"`
	// StaleTemps are temporary files of writes killed over an hour ago
	// (a local folder), removed.
	StaleTemps int  `json:"stale_temporaries_removed,omitempty"`
	DryRun     bool `json:"dry_run"`
}

// Prune deletes the chunks that no snapshot names. Backups go on while it
// runs: it takes a lease that excludes only another prune, publishes what
// it means to delete, waits for the backups and replications that were
// already running, reads every manifest again and deletes what is still
// named by none (the protocol is in repo/sweep.go). It is the one
// operation that lists chunks/.
func Prune(ctx context.Context, r *repo.Repository, opts PruneOptions) (*PruneResult, error) {
	if opts.Deletes <= 0 {
		opts.Deletes = max(16, blob.RequestsOf(r.Store()))
	}
	if opts.WaitWriters <= 0 {
		opts.WaitWriters = time.Hour
	}
	lease, err := r.AcquireLease(ctx, repo.Prune, "prune", opts.Lease)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	res := &PruneResult{DryRun: opts.DryRun}
	if !opts.DryRun {
		if res.DeadSweeps, err = r.RemoveDeadSweeps(ctx, opts.Lease); err != nil {
			return nil, fmt.Errorf("prune: remove the records of dead prunes: %w", err)
		}
	}

	// A chunk written after the oldest running backup began may be one of
	// its uploads, named by no manifest yet. Leave those to a later prune,
	// so the backups that start now need not wait for this one. (Safety
	// does not rest on this: see the wait below.)
	cutoff, err := oldestWriter(ctx, r, lease, opts.Lease)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	// From every manifest, not the kept index: what prune deletes must be
	// named by no manifest at all.
	idx, err := r.Cache().Rebuild(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: read snapshots: %w", err)
	}
	for range idx.Chunks.Objects() {
		res.Referenced++
	}
	live := map[repo.ChunkID]int64{} // a pack's stored bytes the snapshots name
	for id, n := range idx.Chunks.Packs() {
		live[id] = n
	}
	var (
		garbage []repo.ChunkID
		sizes   []int64 // of garbage, in the same order
		compact []repo.ChunkID
	)
	err = blob.Walk(ctx, r.Store(), repo.ChunkPrefix, func(o blob.Object) error {
		id, err := repo.ParseChunkID(o.Key[strings.LastIndex(o.Key, "/")+1:])
		if err != nil {
			return nil // not a chunk graphkeep wrote; leave it alone
		}
		res.Stored++
		if idx.Chunks.HasObject(id) {
			// A pack holding much that no snapshot names is rewritten
			// with only what they name.
			if n, ok := live[id]; ok && o.Size > 0 && o.Size <= maxCompacted &&
				float64(o.Size-n) >= compactAt*float64(o.Size) && o.ModTime.Before(cutoff) {
				compact = append(compact, id)
				res.CompactableSz += o.Size - n
			}
			return nil
		}
		if !o.ModTime.Before(cutoff) {
			res.Recent++
			return nil
		}
		garbage = append(garbage, id)
		sizes = append(sizes, o.Size)
		res.UnreferencedSz += o.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune: list chunks: %w", err)
	}
	idx, live = nil, nil
	res.Unreferenced = len(garbage)
	res.Compactable = len(compact)
	if opts.DryRun {
		return res, nil
	}
	if len(garbage) == 0 && len(compact) == 0 {
		res.StaleTemps = removeStaleTemps(ctx, r)
		return res, nil
	}

	// Writers keep off every chunk in the packs to compact as well: a
	// backup that needs one stores it again.
	sweep, err := r.PublishSweep(ctx, lease, append(slices.Clone(garbage), compact...))
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = r.EndSweep(ctx, sweep)
	}()
	// Writers that took their lease before the record was visible may rely
	// on a chunk in it: wait for them to finish, then read the manifests
	// again. Writers that come later see the record and keep off.
	writers, err := r.LiveLeases(ctx, opts.Lease)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	var waitFor []string
	for _, l := range writers {
		if l.Kind == repo.Shared {
			waitFor = append(waitFor, l.Key())
		}
	}
	if err := r.PublishSweepWaits(ctx, sweep, waitFor); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if err := r.WaitLeases(ctx, waitFor, opts.WaitWriters, opts.Lease); err != nil {
		return nil, fmt.Errorf("prune: nothing deleted: %w; run prune again when it has finished", err)
	}
	idx, err = r.Cache().Rebuild(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: read snapshots again: %w", err)
	}
	doomed := garbage[:0]
	for i, id := range garbage {
		if idx.Chunks.HasObject(id) {
			res.Rescued++
			res.UnreferencedSz -= sizes[i]
			continue
		}
		doomed = append(doomed, id)
	}
	res.Unreferenced -= res.Rescued
	if err := compactPacks(ctx, r, lease, idx.Chunks, compact, res); err != nil {
		return res, fmt.Errorf("prune: %w (compacted %d of %d packs; run prune again)", err, res.Compacted, len(compact))
	}
	idx = nil

	var deleted atomic.Int64
	var lockMu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Deletes)
	for _, id := range doomed {
		g.Go(func() error {
			if err := lease.Check(); err != nil {
				return fmt.Errorf("prune stopped: %w", err)
			}
			// Under object lock a chunk may not be deletable yet: leave it
			// for a later prune instead of failing (or, on a versioned
			// bucket, hiding it under a delete marker while it stays).
			if locked, err := stillLocked(gctx, r, id, res, &lockMu); err != nil || locked {
				return err
			}
			if err := r.Store().Delete(gctx, repo.ChunkKey(id)); err != nil && !errors.Is(err, blob.ErrNotFound) {
				return err
			}
			deleted.Add(1)
			return nil
		})
	}
	err = g.Wait()
	res.Deleted += int(deleted.Load())
	if err != nil {
		return res, fmt.Errorf("prune: %w (deleted %d of %d unreferenced chunks; run prune again)", err, res.Deleted, len(doomed))
	}
	res.StaleTemps = removeStaleTemps(ctx, r)
	return res, nil
}

// compactAt is the share of a pack no snapshot names at which prune
// rewrites it with only the rest. LightRAG rewrites records all through its
// files, so a pack's chunks die one by one; without compaction a
// repository under a keep-last policy held about twice what its snapshots
// name.
const compactAt = 0.25

// maxCompacted bounds the packs prune compacts: it holds one whole in
// memory (packs are 8 MiB unless a repository chose bigger).
const maxCompacted = 64 << 20

// compactPacks rewrites each pack of compact with only the chunks named
// in chunks (the manifests read after the wait); a pack none of whose
// chunks is named any more is deleted.
func compactPacks(ctx context.Context, r *repo.Repository, lease *repo.Lease, chunks *repo.ChunkSet, compact []repo.ChunkID, res *PruneResult) error {
	for _, id := range compact {
		if err := lease.Check(); err != nil {
			return fmt.Errorf("prune stopped: %w", err)
		}
		if locked, err := stillLocked(ctx, r, id, res, nil); err != nil {
			return err
		} else if locked {
			continue
		}
		if !chunks.HasObject(id) {
			if err := r.Store().Delete(ctx, repo.ChunkKey(id)); err != nil && !errors.Is(err, blob.ErrNotFound) {
				return err
			}
			res.Deleted++
			continue
		}
		freed, err := r.CompactPack(ctx, id, func(c repo.ChunkID) bool { return chunks.HasIn(c, id) })
		if err != nil {
			return err
		}
		if freed > 0 {
			res.Compacted++
			res.CompactedSz += freed
		}
	}
	return nil
}

// stillLocked reports whether object lock keeps the object id for now,
// and counts it in res (under mu, when given).
func stillLocked(ctx context.Context, r *repo.Repository, id repo.ChunkID, res *PruneResult, mu *sync.Mutex) (bool, error) {
	until, err := r.LockedUntil(ctx, repo.ChunkKey(id))
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		return false, err
	}
	if until.IsZero() {
		return false, nil
	}
	if mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	res.Locked++
	if res.LockedUntil.IsZero() || until.Before(res.LockedUntil) {
		res.LockedUntil = until
	}
	return true, nil
}

// oldestWriter returns when the oldest shared lease other than own was
// taken, less the clock skew allowed, or now when there is none.
func oldestWriter(ctx context.Context, r *repo.Repository, own *repo.Lease, opts repo.LeaseOptions) (time.Time, error) {
	leases, err := r.LiveLeases(ctx, opts)
	if err != nil {
		return time.Time{}, err
	}
	// With no backup running, chunks written from now on are the uploads
	// of backups that start during this prune.
	oldest := time.Now()
	skew := time.Duration(0)
	for _, l := range leases {
		if l.Key() == own.Key() || l.Kind != repo.Shared {
			continue
		}
		if l.Created.Before(oldest) {
			oldest = l.Created
			// The holder's clock, not ours: allow for skew.
			skew = opts.Skew
			if skew <= 0 {
				skew = 30 * time.Second
			}
		}
	}
	return oldest.Add(-skew), nil
}

// staleTempAge: a write that began this long ago and left its temporary
// file has certainly been killed.
const staleTempAge = time.Hour

// removeStaleTemps clears the temporary files killed writes left where the
// store keeps them (a local folder); a failure only leaves them for later.
func removeStaleTemps(ctx context.Context, r *repo.Repository) int {
	sw, ok := blob.Find[blob.TempSweeper](r.Store())
	if !ok {
		return 0
	}
	n, _ := sw.RemoveStaleTemps(ctx, "", staleTempAge)
	return n
}
