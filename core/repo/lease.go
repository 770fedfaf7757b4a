package repo

import (
	"slices"

	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/graphkeep/graphkeep/blob"
)

// Leases keep work that must not overlap apart across processes and hosts:
// one prune at a time, and exclusive work (none today but kept in the
// format) apart from everything. Backups and replication take shared
// leases, which a prune never blocks: it waits for them instead (see
// sweep.go). A lease is an object under leases/ with an expiry its
// holder renews; a holder that dies stops renewing, and its lease stops
// counting after TTL (plus a margin for clock skew). Nothing else is needed
// to recover from a crash.
//
// Acquiring writes the lease first and then looks for conflicting ones; when
// it finds one it withdraws and waits. Two acquirers that race can both
// withdraw, never both proceed.

// LeasePrefix is where leases live.
const LeasePrefix = "leases/"

// Lease kinds.
const (
	// Shared is held by work that writes manifests naming chunks (backup,
	// replication). Shared leases never conflict with each other or with
	// Prune.
	Shared = "shared"
	// Prune is held by a prune. Two prunes never run at once.
	Prune = "prune"
	// Exclusive conflicts with every other lease.
	Exclusive = "exclusive"
)

// LeaseOptions tune leases; zero fields take defaults.
type LeaseOptions struct {
	// TTL is how long a lease counts without renewal. Default 2 minutes.
	TTL time.Duration
	// Skew is added to TTL to tolerate clocks that disagree. Default 30s.
	Skew time.Duration
	// Wait bounds how long Acquire waits for conflicting leases. Default 10
	// minutes.
	Wait time.Duration
	// Poll is the time between looks while waiting. Default 2s.
	Poll time.Duration
}

func (o *LeaseOptions) applyDefaults() {
	if o.TTL <= 0 {
		o.TTL = 2 * time.Minute
	}
	if o.Skew <= 0 {
		o.Skew = 30 * time.Second
	}
	if o.Wait <= 0 {
		o.Wait = 10 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
}

// LeaseInfo is a lease object's content.
type LeaseInfo struct {
	Kind    string    `json:"kind"`
	Purpose string    `json:"purpose"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Boot and PIDNS identify the holder's kernel boot and pid namespace,
	// so a process on the same host can tell that the holder is gone
	// without waiting for the lease to expire.
	Boot  string `json:"boot,omitempty"`
	PIDNS string `json:"pid_ns,omitempty"`
}

// dead reports whether the lease no longer counts: expired (with skew), or
// held by a process of this host, boot and pid namespace that is gone.
func (info *LeaseInfo) dead(skew time.Duration) (bool, string) {
	if time.Now().After(info.Expires.Add(skew)) {
		return true, "expired"
	}
	me := localHolder()
	// Only a holder certainly of this kernel and pid namespace can be
	// looked up; anywhere else (another machine that happens to share the
	// host name, another container, a boot before) the lease counts until
	// it expires.
	switch {
	case info.Host == "" || info.Host != me.host || info.Boot == "" || info.Boot != me.boot:
		return false, ""
	case info.PIDNS == "" || info.PIDNS != me.pidns || info.PID <= 0:
		return false, ""
	case !processExists(info.PID):
		return true, fmt.Sprintf("process %d is gone", info.PID)
	}
	return false, ""
}

type holder struct{ host, boot, pidns string }

// localHolder is this process's host, boot id and pid namespace ("" where
// the system does not say).
var localHolder = sync.OnceValue(func() holder {
	h := holder{}
	h.host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.boot = strings.TrimSpace(string(b))
	}
	h.pidns, _ = os.Readlink("/proc/self/ns/pid")
	return h
})

// ErrLeaseBusy: conflicting work held the repository for the whole wait.
var ErrLeaseBusy = problem.New(problem.Conflict, "conflict", "the repository is busy")

// Lease is a held lease. Release it when the work ends.
type Lease struct {
	repo *Repository
	key  string
	info LeaseInfo
	opts LeaseOptions

	mu          sync.Mutex
	lastRenewed time.Time
	renewErr    error
	stop        chan struct{}
	done        chan struct{}
}

// AcquireLease takes a lease of kind Shared, Prune or Exclusive for
// purpose ("backup g1", "prune"). A lease waits while a conflicting one is
// held: an exclusive one conflicts with every lease, a prune with another
// prune.
func (r *Repository) AcquireLease(ctx context.Context, kind, purpose string, opts LeaseOptions) (*Lease, error) {
	opts.applyDefaults()
	host, _ := os.Hostname()
	deadline := time.Now().Add(opts.Wait)
	for {
		now := time.Now().UTC()
		l := &Lease{
			repo: r,
			key:  LeasePrefix + kind + "-" + now.Format("20060102T150405Z") + "-" + randomHex(6),
			info: LeaseInfo{Kind: kind, Purpose: purpose, Host: host, PID: os.Getpid(), Created: now, Expires: now.Add(opts.TTL),
				Boot: localHolder().boot, PIDNS: localHolder().pidns},
			opts: opts,
		}
		if err := l.write(ctx); err != nil {
			return nil, fmt.Errorf("take %s lease: %w", kind, err)
		}
		l.lastRenewed = now
		blocker, err := r.conflictingLease(ctx, l)
		if err != nil {
			_ = l.delete()
			return nil, err
		}
		if blocker == nil {
			l.stop, l.done = make(chan struct{}), make(chan struct{})
			go l.renew()
			return l, nil
		}
		_ = l.delete()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s lease held by pid %d on %s for %q since %s; waited %s. If that process is gone, its lease expires by itself within %s",
				ErrLeaseBusy, blocker.Kind, blocker.PID, blocker.Host, blocker.Purpose,
				blocker.Created.Format(time.RFC3339), opts.Wait, opts.TTL+opts.Skew)
		}
		// Jitter, so two acquirers that withdrew together do not collide again.
		wait := opts.Poll/2 + rand.N(opts.Poll)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// conflictingLease returns a live lease that conflicts with l, if any, and
// deletes dead ones it finds along the way.
func (r *Repository) conflictingLease(ctx context.Context, l *Lease) (*LeaseInfo, error) {
	var blocker *LeaseInfo
	err := blob.Walk(ctx, r.store, LeasePrefix, func(o blob.Object) error {
		if o.Key == l.key || blocker != nil {
			return nil
		}
		other, err := r.readLease(ctx, o.Key)
		if errors.Is(err, blob.ErrNotFound) {
			return nil // released since the listing
		}
		if err != nil {
			return err
		}
		if dead, _ := other.dead(l.opts.Skew); dead {
			_ = r.store.Delete(ctx, o.Key) // its holder is gone
			return nil
		}
		if conflicts(l.info.Kind, other.Kind) {
			blocker = other
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check leases: %w", err)
	}
	return blocker, nil
}

func conflicts(a, b string) bool {
	return a == Exclusive || b == Exclusive || (a == Prune && b == Prune)
}

func knownLeaseKind(kind string) bool {
	return kind == Shared || kind == Prune || kind == Exclusive
}

// LiveLeases lists the leases whose holders are alive (renewed within TTL
// plus skew, and not a gone process of this host).
func (r *Repository) LiveLeases(ctx context.Context, opts LeaseOptions) ([]LeaseState, error) {
	all, err := r.Leases(ctx, opts)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(l LeaseState) bool { return !l.Alive }), nil
}

// leaseAlive reports whether the lease at key is still held.
func (r *Repository) leaseAlive(ctx context.Context, key string, opts LeaseOptions) (bool, error) {
	opts.applyDefaults()
	info, err := r.readLease(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	dead, _ := info.dead(opts.Skew)
	return !dead, nil
}

// WaitLeases waits until none of the leases at keys is held any more
// (released, or expired because its holder died), polling every
// opts.Poll, for at most wait.
func (r *Repository) WaitLeases(ctx context.Context, keys []string, wait time.Duration, opts LeaseOptions) error {
	opts.applyDefaults()
	deadline := time.Now().Add(wait)
	for len(keys) > 0 {
		alive, err := r.leaseAlive(ctx, keys[0], opts)
		if err != nil {
			return err
		}
		if !alive {
			keys = keys[1:]
			continue
		}
		if time.Now().After(deadline) {
			info, _ := r.readLease(ctx, keys[0])
			what := keys[0]
			if info != nil {
				what = fmt.Sprintf("%q (pid %d on %s, since %s)", info.Purpose, info.PID, info.Host, info.Created.Format(time.RFC3339))
			}
			return fmt.Errorf("%w: waited %s for %s to finish", ErrLeaseBusy, wait, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(opts.Poll):
		}
	}
	return nil
}

func (r *Repository) readLease(ctx context.Context, key string) (*LeaseInfo, error) {
	data, err := blob.ReadAll(ctx, r.store, key)
	if err != nil {
		return nil, err
	}
	var info LeaseInfo
	if err := json.Unmarshal(data, &info); err != nil || !knownLeaseKind(info.Kind) {
		// Unreadable: treat it as exclusive until it ages out by mtime.
		info = LeaseInfo{Kind: Exclusive, Purpose: "unreadable lease " + strings.TrimPrefix(key, LeasePrefix), Expires: time.Now().Add(time.Minute)}
		if a, statErr := r.store.Stat(ctx, key); statErr == nil {
			info.Expires = a.ModTime.Add(2 * time.Minute)
		}
	}
	return &info, nil
}

func (l *Lease) write(ctx context.Context) error {
	data, _ := json.Marshal(l.info)
	return blob.PutBytes(ctx, l.repo.store, l.key, data, &blob.PutOptions{ContentType: "application/json"})
}

func (l *Lease) delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.repo.store.Delete(ctx, l.key)
}

func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.opts.TTL / 4)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		now := time.Now().UTC()
		l.info.Expires = now.Add(l.opts.TTL)
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.TTL/4)
		err := l.write(ctx)
		cancel()
		l.mu.Lock()
		if err == nil {
			l.lastRenewed = now
		}
		l.renewErr = err
		l.mu.Unlock()
	}
}

// Check reports whether the lease is still certainly held: renewed within
// its TTL. Work that relies on the lease (a backup about to commit) checks
// it last, and gives up when it fails.
func (l *Lease) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if age := time.Since(l.lastRenewed); age > l.opts.TTL {
		return fmt.Errorf("lost the %s lease: not renewed for %s (last error: %v)", l.info.Kind, age.Round(time.Second), l.renewErr)
	}
	return nil
}

// Key is the lease's object key.
func (l *Lease) Key() string { return l.key }

// Release stops renewing and deletes the lease.
func (l *Lease) Release() error {
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	return l.delete()
}

// LeaseState is one lease object and whether it still counts.
type LeaseState struct {
	ID string `json:"id"`
	LeaseInfo
	Alive bool `json:"alive"`
	// Why names why a lease no longer counts.
	Why string `json:"why,omitempty"`
}

// Key is the lease's object key.
func (l LeaseState) Key() string { return LeasePrefix + l.ID }

// ErrLeaseAlive: breaking a lease whose holder still renews it.
var ErrLeaseAlive = &problem.Error{Kind: problem.NeedsForce, Code: "lease_alive", Msg: "the lease is held", Remedy: problem.Force}

// Leases lists every lease object, oldest first, with whether it counts.
func (r *Repository) Leases(ctx context.Context, opts LeaseOptions) ([]LeaseState, error) {
	opts.applyDefaults()
	var out []LeaseState
	err := blob.Walk(ctx, r.store, LeasePrefix, func(o blob.Object) error {
		info, err := r.readLease(ctx, o.Key)
		if errors.Is(err, blob.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		dead, why := info.dead(opts.Skew)
		out = append(out, LeaseState{ID: strings.TrimPrefix(o.Key, LeasePrefix), LeaseInfo: *info, Alive: !dead, Why: why})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// BreakLease deletes lease id. A lease that still counts is refused unless
// force: its holder may be working (and, if alive, writes it again at its
// next renewal).
func (r *Repository) BreakLease(ctx context.Context, id string, force bool, opts LeaseOptions) (LeaseState, error) {
	opts.applyDefaults()
	if id == "" || strings.ContainsAny(id, "/\\") {
		return LeaseState{}, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "%q is not a lease id", id)
	}
	key := LeasePrefix + id
	info, err := r.readLease(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return LeaseState{}, problem.Errorf(problem.NotFound, problem.NoRemedy, "", "no lease %q", id)
	}
	if err != nil {
		return LeaseState{}, err
	}
	dead, why := info.dead(opts.Skew)
	st := LeaseState{ID: id, LeaseInfo: *info, Alive: !dead, Why: why}
	if !dead && !force {
		return st, fmt.Errorf("lease %s (%s, %q) is held by pid %d on %s, renewed until %s: %w; stop that process; if it is gone for good, break the lease anyway",
			id, info.Kind, info.Purpose, info.PID, info.Host, info.Expires.Format(time.RFC3339), ErrLeaseAlive)
	}
	if err := r.store.Delete(ctx, key); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return st, err
	}
	return st, nil
}
