package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Options tune Replicate; zero fields take defaults.
type Options struct {
	// Parallel is how many objects are copied at once. Default 8.
	Parallel int
	// ObjectTimeout bounds one object's copy, so a target that stops
	// answering fails the run instead of hanging it. Default 2 minutes.
	ObjectTimeout time.Duration
	// Graph limits this run to one graph; "" means every graph the target
	// takes.
	Graph string
	// Lease tunes the shared lease held on the primary (no prune meanwhile).
	Lease repo.LeaseOptions
	// CacheDir is the manifest cache root; "" means the primary's.
	CacheDir string
}

func (o *Options) applyDefaults() {
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.ObjectTimeout <= 0 {
		o.ObjectTimeout = 2 * time.Minute
	}
}

// Result is what one run moved.
type Result struct {
	Target      string `json:"target"`
	Snapshots   int    `json:"snapshots_copied"`
	Chunks      int    `json:"chunks_copied"`
	Bytes       int64  `json:"bytes_copied"`
	Checkpoints int    `json:"checkpoints_copied"`
	Deleted     int    `json:"snapshots_deleted"`
	// LockedKept are snapshots forgotten on the primary that the target's
	// lock keeps for now (mirror deletes).
	LockedKept int           `json:"snapshots_locked_kept,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// Replicate brings target t (storage dst) up to date with r. The order
// keeps the target consistent at every instant: the config first, then for
// each missing snapshot its missing chunks and only then its manifest, then
// checkpoints whose snapshots are all there, then meta. Killed at any point,
// a later run resumes where this one stopped.
func Replicate(ctx context.Context, r *repo.Repository, t Target, dst blob.Store, opts Options) (*Result, error) {
	opts.applyDefaults()
	start := time.Now()
	res := &Result{Target: t.ID}
	if dst.Location() == r.Store().Location() {
		return res, problem.Errorf(problem.Invalid, problem.RemoveTarget, t.ID, "target %s is the primary itself (after a failover?)", t.ID)
	}
	lease, err := r.AcquireLease(ctx, repo.Shared, "replicate to "+t.ID, opts.Lease)
	if err != nil {
		return res, err
	}
	defer lease.Release()

	// A target with a lock policy of its own gets every object locked.
	c := &copier{src: r.Store(), dst: dst, opts: opts, res: res, retain: repo.RetentionFor(t.Lock, start)}
	fresh, err := ensureConfig(ctx, r, c)
	if err != nil {
		return res, err
	}
	// A target that held nothing when this run began has no chunk to find:
	// skip the HEAD before each copy.
	c.fresh = fresh
	view := r.OnStore(dst, opts.CacheDir).WithLock(t.Lock)
	// A prune may run on the target too (it is a repository): hold a shared
	// lease there, and keep off the chunks a prune running there may delete
	// (repo/sweep.go), as a backup does.
	targetLease, err := view.AcquireLease(ctx, repo.Shared, "replicate from "+r.Store().Location(), opts.Lease)
	if err != nil {
		return res, fmt.Errorf("target %s: %w", t.ID, err)
	}
	defer targetLease.Release()
	if c.condemned, err = view.Condemned(ctx, targetLease, opts.Lease); err != nil {
		return res, fmt.Errorf("target %s: %w", t.ID, err)
	}
	// What the target holds, from its kept index: only its manifests new
	// since the last run are read.
	held, err := view.Cache().Index(ctx)
	if err != nil {
		return res, fmt.Errorf("target %s: read its manifests: %w", t.ID, err)
	}
	have := held.Snapshots
	onTarget := map[string]bool{}
	for _, ref := range have {
		onTarget[ref.Key()] = true
	}
	copied := map[repo.ChunkID]bool{} // by this run
	idx, err := r.Cache().Index(ctx)
	if err != nil {
		return res, err
	}
	onPrimary := map[string]bool{}
	for _, ref := range idx.Snapshots {
		onPrimary[ref.Key()] = true
		if !t.Includes(ref.Graph) || (opts.Graph != "" && ref.Graph != opts.Graph) || onTarget[ref.Key()] {
			continue
		}
		m, err := r.Cache().Manifest(ctx, ref)
		if errors.Is(err, repo.ErrSnapshotMissing) {
			continue // forgotten since the listing
		}
		if err != nil {
			return res, err
		}
		var need []repo.ChunkID
		for id := range m.Objects() {
			if (!held.Chunks.HasObject(id) && !copied[id]) || c.condemned.Has(id) {
				need = append(need, id)
			}
		}
		if err := c.chunks(ctx, need); err != nil {
			return res, fmt.Errorf("target %s: snapshot %s/%s: %w", t.ID, ref.Graph, ref.ID, err)
		}
		for _, id := range need {
			copied[id] = true
		}
		if err := c.object(ctx, ref.Key(), true); err != nil {
			return res, fmt.Errorf("target %s: manifest %s/%s: %w", t.ID, ref.Graph, ref.ID, err)
		}
		onTarget[ref.Key()] = true
		res.Snapshots++
	}
	if err := c.checkpoints(ctx, r, onTarget); err != nil {
		return res, fmt.Errorf("target %s: %w", t.ID, err)
	}
	if err := c.passwords(ctx); err != nil {
		return res, fmt.Errorf("target %s: %w", t.ID, err)
	}
	if err := c.meta(ctx); err != nil {
		return res, fmt.Errorf("target %s: %w", t.ID, err)
	}
	if t.MirrorDeletes && opts.Graph == "" {
		for _, ref := range have {
			if t.Includes(ref.Graph) && !onPrimary[ref.Key()] {
				err := view.DeleteSnapshot(ctx, ref)
				if errors.Is(err, repo.ErrLocked) {
					res.LockedKept++ // the target's lock keeps it for now
					continue
				}
				if err != nil {
					return res, fmt.Errorf("target %s: %w", t.ID, err)
				}
				res.Deleted++
			}
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// ensureConfig copies graphkeep.repo to an empty target, or checks that the
// target holds this repository. fresh reports that the target was empty.
func ensureConfig(ctx context.Context, r *repo.Repository, c *copier) (fresh bool, err error) {
	cfg, ok, err := repo.ReadConfig(ctx, c.dst)
	switch {
	case err != nil:
		return false, fmt.Errorf("read the target's config: %w", err)
	case ok && cfg.ID != r.ID():
		return false, fmt.Errorf("%s: %w (id %s, this repository is %s)", c.dst.Location(), ErrForeignTarget, cfg.ID, r.ID())
	case ok:
		// Same repository: a password changed on the primary (its config
		// rewrapped) must change on the target too.
		return false, c.sameObject(ctx, repo.ConfigKey)
	}
	empty := true
	if objs, _, err := c.dst.List(ctx, blob.ListOptions{Prefix: repo.ChunkPrefix, PageSize: 1}); err != nil || len(objs) > 0 {
		empty = false
	}
	return empty, c.object(ctx, repo.ConfigKey, true)
}

// copier moves objects as stored, with bounded parallelism and a timeout
// per object.
type copier struct {
	src, dst blob.Store
	opts     Options
	res      *Result
	fresh    bool // the target held no chunks when the run began
	// condemned are chunks a prune running on the target may delete.
	condemned *repo.Condemned
	// retain locks what is written (the target's lock policy), or nil.
	retain *blob.Retention
	mu     sync.Mutex
}

// object copies key; with ifAbsent an object already there is success.
func (c *copier) object(ctx context.Context, key string, ifAbsent bool) error {
	octx, cancel := context.WithTimeout(ctx, c.opts.ObjectTimeout)
	defer cancel()
	n, err := blob.Transfer(octx, c.dst, key, c.src, key, &blob.PutOptions{IfAbsent: ifAbsent, Retain: c.retain}, blob.RetryPolicy{Attempts: 3})
	if ifAbsent && errors.Is(err, blob.ErrExists) {
		return nil
	}
	if err != nil {
		return err
	}
	atomic.AddInt64(&c.res.Bytes, n)
	return nil
}

// chunks copies the chunks the target lacks. A chunk already there (from
// a run that was killed before its manifest) is not copied again.
func (c *copier) chunks(ctx context.Context, ids []repo.ChunkID) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallel)
	for _, id := range ids {
		key := repo.ChunkKey(id)
		g.Go(func() error {
			condemned := c.condemned.Any() && c.condemned.Has(id)
			if condemned {
				// A prune running on the target may delete it: copy it
				// again once that prune has ended.
				if err := c.condemned.Wait(gctx); err != nil {
					return fmt.Errorf("wait for the prune running on the target: %w", err)
				}
			}
			if !c.fresh && !condemned {
				sctx, cancel := context.WithTimeout(gctx, c.opts.ObjectTimeout)
				there, err := blob.Exists(sctx, c.dst, key)
				cancel()
				if err != nil {
					return err
				}
				if there {
					return nil
				}
			}
			if err := c.object(gctx, key, false); err != nil {
				return err
			}
			c.mu.Lock()
			c.res.Chunks++
			c.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// checkpoints copies each checkpoint whose snapshots are all on the target.
func (c *copier) checkpoints(ctx context.Context, r *repo.Repository, onTarget map[string]bool) error {
	ids, err := r.ListCheckpoints(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		key := repo.CheckpointPrefix + id
		if there, err := blob.Exists(ctx, c.dst, key); err != nil || there {
			if err != nil {
				return err
			}
			continue
		}
		cp, err := r.LoadCheckpoint(ctx, id)
		if err != nil {
			return err
		}
		complete := true
		for _, s := range cp.Snapshots {
			if !onTarget[repo.SnapshotRef{Graph: s.Graph, ID: s.ID}.Key()] {
				complete = false
			}
		}
		if !complete {
			continue // a partial target does not claim the checkpoint
		}
		if err := c.object(ctx, key, true); err != nil {
			return err
		}
		c.res.Checkpoints++
	}
	return nil
}

// sameObject copies key when the target's copy differs from the source's.
func (c *copier) sameObject(ctx context.Context, key string) error {
	src, err := blob.ReadAll(ctx, c.src, key)
	if err != nil {
		return err
	}
	dst, err := blob.ReadAll(ctx, c.dst, key)
	if err == nil && bytes.Equal(src, dst) {
		return nil
	}
	return c.object(ctx, key, false)
}

// passwords makes the target's keys/ what the primary's is: a password
// added there opens the target, and one removed (say, leaked) no longer
// does.
func (c *copier) passwords(ctx context.Context) error {
	want := map[string]bool{}
	err := blob.Walk(ctx, c.src, repo.KeyPrefix, func(o blob.Object) error {
		want[o.Key] = true
		if _, err := c.dst.Stat(ctx, o.Key); err == nil {
			return nil // a key object never changes once written
		}
		return c.object(ctx, o.Key, false)
	})
	if err != nil {
		return fmt.Errorf("copy keys: %w", err)
	}
	return blob.Walk(ctx, c.dst, repo.KeyPrefix, func(o blob.Object) error {
		if want[o.Key] {
			return nil
		}
		if err := c.dst.Delete(ctx, o.Key); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("remove key %s: %w", o.Key, err)
		}
		return nil
	})
}

// meta copies the shared documents (targets, failover record) that differ,
// so a promoted target knows everything the primary knew. Per-target status
// stays with the primary that measured it.
func (c *copier) meta(ctx context.Context) error {
	return blob.Walk(ctx, c.src, repo.MetaPrefix, func(o blob.Object) error {
		if strings.HasPrefix(o.Key, repo.MetaPrefix+statusDir+"/") {
			return nil
		}
		if a, err := c.dst.Stat(ctx, o.Key); err == nil && a.Size == o.Size && !a.ModTime.Before(o.ModTime) {
			return nil
		}
		return c.object(ctx, o.Key, false)
	})
}
