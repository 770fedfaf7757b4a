package repo

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/problem"
)

// Immutable repositories. With a lock policy (init on an S3 bucket created
// with object lock), every object the repository needs (config, keys,
// chunks, manifests, checkpoints, meta) is written with a retention of
// Retention from its write: no one, graphkeep included, can delete or
// change that version before then (compliance), or only with the bypass
// permission (governance). ExtendLocks pushes the retention of everything
// still referenced forward before it lapses. Forget refuses a snapshot
// still locked and says until when; prune leaves locked chunks and reports
// them. Leases, prune records and probes are never locked.

// LockPolicy is a repository's object lock policy.
type LockPolicy struct {
	Mode             string `json:"mode"` // blob.Governance or blob.Compliance
	RetentionSeconds int64  `json:"retention_seconds"`
}

// Retention is how long each write stays locked.
func (p *LockPolicy) Retention() time.Duration {
	return time.Duration(p.RetentionSeconds) * time.Second
}

// Validate checks the policy.
func (p *LockPolicy) Validate() error {
	if p.Mode != blob.Governance && p.Mode != blob.Compliance {
		return problem.Errorf(problem.Invalid, problem.NoRemedy, "", "object lock mode %q: use %s or %s", p.Mode, blob.Governance, blob.Compliance)
	}
	if p.RetentionSeconds < 1 {
		return problem.Errorf(problem.Invalid, problem.NoRemedy, "", "object lock retention %s: give a positive duration, such as 30 days", p.Retention())
	}
	return nil
}

// ErrLocked: the object is locked and cannot be deleted yet.
var ErrLocked = problem.New(problem.Conflict, "locked", "locked by the repository's object lock")

// ErrLockUnavailable: the storage cannot lock objects.
var ErrLockUnavailable = problem.New(problem.Invalid, "lock_unavailable", "the storage cannot lock objects")

// Lock is the repository's lock policy, nil when it has none.
func (r *Repository) Lock() *LockPolicy { return r.cfg.Lock }

// retain is the retention of an object written now (nil without a policy).
func (r *Repository) retain() *blob.Retention {
	return retentionFrom(r.cfg.Lock, time.Now())
}

func retentionFrom(p *LockPolicy, now time.Time) *blob.Retention {
	if p == nil {
		return nil
	}
	return &blob.Retention{Mode: p.Mode, Until: now.Add(p.Retention()).Truncate(time.Second).Add(time.Second)}
}

// CheckLockable makes sure store can honour p before anything is written.
func CheckLockable(ctx context.Context, store blob.Store, p *LockPolicy) error {
	return checkLockable(ctx, store, p)
}

// RetentionFor is the retention p gives an object written at now (nil
// without a policy).
func RetentionFor(p *LockPolicy, now time.Time) *blob.Retention { return retentionFrom(p, now) }

// checkLockable makes sure store can honour p before anything is written.
func checkLockable(ctx context.Context, store blob.Store, p *LockPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	lk, ok := blob.LockerOf(store)
	if !ok {
		return fmt.Errorf("%s: %w: object lock needs S3 (or an S3-compatible server with object lock)", store.Location(), ErrLockUnavailable)
	}
	on, err := lk.LockEnabled(ctx)
	if err != nil {
		return err
	}
	if !on {
		return fmt.Errorf("%s: %w: the bucket was created without object lock; create a bucket with object lock enabled (it cannot be turned on later for an existing bucket on most servers)", store.Location(), ErrLockUnavailable)
	}
	return nil
}

// bucketDefaultLock is the policy of a bucket that locks every new object
// by default, nil for any other store.
func bucketDefaultLock(ctx context.Context, store blob.Store) (*LockPolicy, error) {
	lk, ok := blob.LockerOf(store)
	if !ok {
		return nil, nil
	}
	if on, err := lk.LockEnabled(ctx); err != nil || !on {
		return nil, err
	}
	mode, d, err := lk.DefaultRetention(ctx)
	if err != nil || mode == "" {
		return nil, err
	}
	return &LockPolicy{Mode: mode, RetentionSeconds: int64(d / time.Second)}, nil
}

// LockedUntil says until when key's current version is locked (zero when
// it is not, or the repository has no lock policy).
func (r *Repository) LockedUntil(ctx context.Context, key string) (time.Time, error) {
	if r.cfg.Lock == nil {
		return time.Time{}, nil
	}
	lk, ok := blob.LockerOf(r.store)
	if !ok {
		return time.Time{}, nil
	}
	ret, err := lk.Retention(ctx, key)
	if err != nil {
		return time.Time{}, err
	}
	if ret.Until.After(time.Now()) {
		return ret.Until, nil
	}
	return time.Time{}, nil
}

// ExtendResult says what an extension pass did.
type ExtendResult struct {
	// Objects the repository needs; Checked of them were old enough to ask
	// their retention; Extended got a new one, until Until.
	Objects  int       `json:"objects"`
	Checked  int       `json:"checked"`
	Extended int       `json:"extended"`
	Until    time.Time `json:"until"`
	Duration float64   `json:"duration_seconds"`
}

// ExtendLocks pushes the retention of every object the repository still
// needs (config, keys, every snapshot's manifest and chunks, checkpoints,
// meta) to a full Retention from now when it would lapse within window.
// Cheap: an object written less than Retention - window ago cannot lapse
// that soon and is not even asked (its listing time says so); only older
// ones cost a retention read, and only those close to lapsing a write.
func (r *Repository) ExtendLocks(ctx context.Context, window time.Duration, parallel int) (*ExtendResult, error) {
	p := r.cfg.Lock
	if p == nil {
		return nil, fmt.Errorf("%w: this repository has no object lock policy", ErrLockUnavailable)
	}
	lk, ok := blob.LockerOf(r.store)
	if !ok {
		return nil, fmt.Errorf("%s: %w", r.store.Location(), ErrLockUnavailable)
	}
	if window <= 0 || window > p.Retention() {
		window = p.Retention() / 3
	}
	start := time.Now()
	target := retentionFrom(p, start)
	res := &ExtendResult{Until: target.Until}
	idx, err := r.Cache().Rebuild(ctx)
	if err != nil {
		return nil, err
	}
	// Objects old enough to lapse within window, from the listings.
	soon := start.Add(window - p.Retention())
	var due []string
	consider := func(key string, mod time.Time) {
		res.Objects++
		if mod.Before(soon) {
			due = append(due, key)
		}
	}
	if a, err := r.store.Stat(ctx, ConfigKey); err == nil {
		consider(ConfigKey, a.ModTime)
	} else {
		return nil, err
	}
	for _, prefix := range []string{KeyPrefix, SnapshotPrefix, CheckpointPrefix, MetaPrefix} {
		if err := blob.Walk(ctx, r.store, prefix, func(o blob.Object) error { consider(o.Key, o.ModTime); return nil }); err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
	}
	err = blob.Walk(ctx, r.store, ChunkPrefix, func(o blob.Object) error {
		id, err := ParseChunkID(path.Base(o.Key))
		if err == nil && idx.Chunks.HasObject(id) {
			consider(o.Key, o.ModTime)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list chunks: %w", err)
	}
	var checked, extended atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, parallel))
	limit := start.Add(window)
	for _, key := range due {
		g.Go(func() error {
			checked.Add(1)
			cur, err := lk.Retention(gctx, key)
			if errors.Is(err, blob.ErrNotFound) {
				return nil // forgotten meanwhile
			}
			if err != nil {
				return err
			}
			if cur.Until.After(limit) {
				return nil
			}
			if err := lk.Retain(gctx, key, *target); err != nil {
				return fmt.Errorf("extend the lock of %s: %w", key, err)
			}
			extended.Add(1)
			return nil
		})
	}
	err = g.Wait()
	res.Checked, res.Extended = int(checked.Load()), int(extended.Load())
	res.Duration = time.Since(start).Seconds()
	return res, err
}
