// Package service is graphkeep's application layer: every use case the CLI,
// the API, the scheduler and the dashboard share, each once. A front end
// parses its input, makes one call here and renders the typed result; it
// never opens a repository or a target itself. Errors carry a kind and a
// neutral remedy (core/problem) for the front end to put in its own words.
package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
)

// Opener opens the storage a repository or target URL names.
type Opener = replication.Opener

// Config is what a Service is built from: values only, read by the front
// end from its flags, environment and files.
type Config struct {
	// PrimaryURL is the primary repository's URL as configured; a failover
	// recorded in StateDir redirects it.
	PrimaryURL string
	// Open opens repositories and targets.
	Open Opener
	// Password unlocks an encrypted repository ("" for none).
	Password string
	// KeyCache remembers the key derived from Password between runs (nil:
	// derive it in every run).
	KeyCache repo.KeyCache
	// CacheDir holds the manifest caches ("" for the user cache dir).
	CacheDir string
	// StateDir records failovers and the targets last seen, so that a
	// failover finds them when the primary is gone ("" records nothing).
	StateDir string
	// Lease tunes the leases of the work this service runs.
	Lease repo.LeaseOptions
	// Backup holds every backup's settings (quiet window, maximum wait);
	// Lease and Progress are set per run.
	Backup backup.Options
	// Sources lists the graphs this machine knows (graphs root and
	// explicit ones).
	Sources func() ([]backup.Source, error)
	// GraphsRoot is where graphs live; restores and failovers put graphs
	// there ("" when not configured).
	GraphsRoot string
	// RestoreRoots, when set, confine restores that ask for it (the API's)
	// to these directories.
	RestoreRoots []string
	// BackupInterval is the default schedule (health calls a graph stale
	// after two); 24h when zero.
	BackupInterval time.Duration
	// Schedule is what the server runs by itself, for the cost estimate of
	// Stats (BackupInterval is every graph's interval unless GraphIntervals
	// says otherwise; a zero interval is a task that does not run).
	Schedule Schedule
	// Retention is the default policy of a cleanup.
	Retention retention.Policy
	// GraphRetention overrides Retention for single graphs (scheduled
	// cleanup).
	GraphRetention map[string]retention.Policy
	// Redact makes a URL fit to show (secret-looking parts hidden).
	Redact func(url string) string
	// Hooks let a front end observe what happened (metrics, caches).
	Hooks Hooks
}

// Schedule is the scheduled work Stats prices.
type Schedule struct {
	GraphIntervals      map[string]time.Duration
	ReplicationInterval time.Duration
	CleanupInterval     time.Duration
	CheckpointInterval  time.Duration
}

// Hooks are called after the events they name; any may be nil.
type Hooks struct {
	// Snapshot follows every snapshot this service commits.
	Snapshot func(m *repo.Manifest, took time.Duration)
	// Changed follows every change of the repository's snapshots,
	// checkpoints or targets made through this service.
	Changed func()
	// Redirected follows a failover that moved the primary.
	Redirected func(from, to string)
}

// Service runs the use cases on one primary repository. It is safe for
// concurrent use; the primary is opened on first use and replaced by a
// failover.
type Service struct {
	cfg Config

	mu      sync.RWMutex
	primary *repo.Repository
	url     string // the primary's URL, after redirects
	noted   *recovery.Redirect
}

// New makes a Service. Nothing is opened yet.
func New(cfg Config) *Service {
	if cfg.BackupInterval <= 0 {
		cfg.BackupInterval = 24 * time.Hour
	}
	if cfg.Sources == nil {
		cfg.Sources = func() ([]backup.Source, error) { return nil, nil }
	}
	return &Service{cfg: cfg}
}

// ErrNoRepository: no primary URL was configured.
var ErrNoRepository = &problem.Error{Kind: problem.Invalid, Code: "no_repository", Remedy: problem.GiveRepository,
	Msg: "no repository is configured"}

// ErrSwitchNotRecorded: a failover switched the primary, but this machine
// could not remember it.
var ErrSwitchNotRecorded = problem.New(problem.Internal, "switch_not_recorded",
	"the switch is recorded in the new primary, but this machine could not remember it")

// Observe adds hooks (a server's metrics and caches, made after the
// service): each is called after the one the Config set.
func (s *Service) Observe(h Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Hooks = chainHooks(s.cfg.Hooks, h)
}

func chainHooks(a, b Hooks) Hooks {
	return Hooks{
		Snapshot: func(m *repo.Manifest, took time.Duration) {
			if a.Snapshot != nil {
				a.Snapshot(m, took)
			}
			if b.Snapshot != nil {
				b.Snapshot(m, took)
			}
		},
		Changed: func() {
			if a.Changed != nil {
				a.Changed()
			}
			if b.Changed != nil {
				b.Changed()
			}
		},
		Redirected: func(from, to string) {
			if a.Redirected != nil {
				a.Redirected(from, to)
			}
			if b.Redirected != nil {
				b.Redirected(from, to)
			}
		},
	}
}

// PrimaryURL is the primary's URL, after any failover recorded on this
// machine, and the redirect that moved it (nil when none).
func (s *Service) PrimaryURL() (string, *recovery.Redirect, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.url != "" {
		return s.url, s.noted, nil
	}
	if s.cfg.PrimaryURL == "" {
		return "", nil, ErrNoRepository
	}
	to, r, err := recovery.Resolve(s.cfg.StateDir, s.cfg.PrimaryURL)
	if err != nil {
		return "", nil, err
	}
	s.url, s.noted = to, r
	return to, r, nil
}

// Primary returns the open primary repository, opening it on first use.
func (s *Service) Primary(ctx context.Context) (*repo.Repository, error) {
	r, _, err := s.openPrimary(ctx, "")
	return r, err
}

// openOptions open the primary and the replicas with this service's
// password, manifest cache and key cache.
func (s *Service) openOptions() repo.OpenOptions {
	return repo.OpenOptions{Password: s.cfg.Password, CacheDir: s.cfg.CacheDir, KeyCache: s.cfg.KeyCache}
}

// openLeased opens the primary when it is not open yet, taking a shared
// lease for purpose while the key is derived (repo.OpenLeased); it returns
// that lease, or nil when the primary was already open (the caller's work
// then takes its own).
func (s *Service) openLeased(ctx context.Context, purpose string) (*repo.Lease, error) {
	_, lease, err := s.openPrimary(ctx, purpose)
	return lease, err
}

// openPrimary returns the open primary, opening it on first use; with a
// purpose, an opening also takes a shared lease for it (nil when the
// primary was open already).
func (s *Service) openPrimary(ctx context.Context, purpose string) (*repo.Repository, *repo.Lease, error) {
	s.mu.RLock()
	r := s.primary
	s.mu.RUnlock()
	if r != nil {
		return r, nil, nil
	}
	store, err := s.primaryStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := s.openOptions()
	var lease *repo.Lease
	if purpose != "" {
		r, lease, err = repo.OpenLeased(ctx, store, opts, repo.Shared, purpose, s.cfg.Lease)
	} else {
		r, err = repo.Open(ctx, store, opts)
	}
	if err != nil {
		_ = store.Close()
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.primary != nil { // another call won: use its repository
		if lease != nil {
			_ = lease.Release()
		}
		_ = store.Close()
		return s.primary, nil, nil
	}
	s.primary = r
	return r, lease, nil
}

// Close releases the primary's storage.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.primary == nil {
		return nil
	}
	err := s.primary.Store().Close()
	s.primary = nil
	return err
}

// switchPrimary makes replica (at url) the primary of this service.
func (s *Service) switchPrimary(replica *repo.Repository, url string) {
	s.mu.Lock()
	old, from := s.primary, s.url
	s.primary, s.url = replica, url
	s.mu.Unlock()
	if old != nil && old != replica {
		_ = old.Store().Close()
	}
	if s.cfg.Hooks.Redirected != nil {
		s.cfg.Hooks.Redirected(from, url)
	}
	s.changed()
}

func (s *Service) changed() {
	if s.cfg.Hooks.Changed != nil {
		s.cfg.Hooks.Changed()
	}
}

// openTarget opens a target's repository: same id as the primary
// (primary may be nil when it is gone).
func (s *Service) openReplica(ctx context.Context, primary *repo.Repository, id, url string) (*repo.Repository, error) {
	store, err := s.cfg.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", id, err)
	}
	var replica *repo.Repository
	if primary != nil {
		cfg, ok, err := repo.ReadConfig(ctx, store)
		switch {
		case err != nil:
			err = fmt.Errorf("target %s: %w", id, err)
		case !ok:
			err = &problem.Error{Kind: problem.Conflict, Code: "target_empty", Object: id, Remedy: problem.Replicate,
				Msg: fmt.Sprintf("target %s holds no repository yet, so there is nothing there to fail over to", id), Err: repo.ErrNotARepository}
		case cfg.ID != primary.ID():
			err = problem.Errorf(problem.Invalid, problem.NoRemedy, id, "target %s holds repository %s, the primary is %s", id, cfg.ID, primary.ID())
		}
		if err != nil {
			_ = store.Close()
			return nil, err
		}
		return primary.OnStore(store, s.cfg.CacheDir), nil
	}
	replica, err = repo.Open(ctx, store, s.openOptions())
	if err != nil {
		_ = store.Close()
		if errors.Is(err, repo.ErrNotARepository) {
			err = &problem.Error{Kind: problem.Conflict, Code: "target_empty", Object: id, Remedy: problem.Replicate,
				Msg: "it holds no repository yet, so there is nothing there to fail over to", Err: repo.ErrNotARepository}
		}
		return nil, fmt.Errorf("target %s: %w", id, err)
	}
	return replica, nil
}

// Keys lists the primary's passwords (see repo.ListKeys).
func (s *Service) Keys(ctx context.Context) ([]repo.KeyInfo, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	return r.ListKeys(ctx)
}

// AddKey adds a password to the primary.
func (s *Service) AddKey(ctx context.Context, password string) (repo.KeyInfo, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return repo.KeyInfo{}, err
	}
	return r.AddKey(ctx, password)
}

// RemoveKey removes one of the primary's passwords.
func (s *Service) RemoveKey(ctx context.Context, id string) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	return r.RemoveKey(ctx, id)
}

// ChangePassword changes the password that opened the primary.
func (s *Service) ChangePassword(ctx context.Context, password string) (repo.KeyInfo, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return repo.KeyInfo{}, err
	}
	return r.ChangePassword(ctx, password)
}

// Leases lists the primary's leases with whether each still counts.
func (s *Service) Leases(ctx context.Context) ([]repo.LeaseState, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	return r.Leases(ctx, s.cfg.Lease)
}

// BreakLease deletes a lease of the primary (a live one only with force).
func (s *Service) BreakLease(ctx context.Context, id string, force bool) (repo.LeaseState, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return repo.LeaseState{}, err
	}
	return r.BreakLease(ctx, id, force, s.cfg.Lease)
}

// ExtendAllLocks extends the locks of the primary (when it has a lock
// policy) and of every target with one of its own: the scheduled task.
func (s *Service) ExtendAllLocks(ctx context.Context) (map[string]*repo.ExtendResult, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]*repo.ExtendResult{}
	if r.Lock() != nil {
		if out["primary"], err = s.ExtendLocks(ctx, 0, ""); err != nil {
			return out, err
		}
	}
	targets, err := replication.ListTargets(ctx, r)
	if err != nil {
		return out, err
	}
	for _, t := range targets {
		if t.Lock == nil {
			continue
		}
		if out[t.ID], err = s.ExtendLocks(ctx, 0, t.ID); err != nil {
			return out, fmt.Errorf("target %s: %w", t.ID, err)
		}
	}
	return out, nil
}

// primaryStore opens the primary's storage (not the repository in it).
func (s *Service) primaryStore(ctx context.Context) (blob.Store, error) {
	url, _, err := s.PrimaryURL()
	if err != nil {
		return nil, err
	}
	store, err := s.cfg.Open(ctx, url)
	if errors.Is(err, blob.ErrNotFound) {
		// The location itself is missing: a new repository, or a lost one.
		return nil, &problem.Error{Kind: problem.NotFound, Code: "not_found", Remedy: problem.CreateRepository, Msg: err.Error(), Err: err}
	}
	return store, err
}

// Undelete brings back the primary's objects deleted or overwritten since
// opts.Since, in a versioned bucket (repo.Undelete). It opens the storage,
// not the repository: the config itself may be what was hidden.
func (s *Service) Undelete(ctx context.Context, since time.Time, dryRun bool) (*repo.UndeleteResult, error) {
	store, err := s.primaryStore(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	res, err := repo.Undelete(ctx, store, repo.UndeleteOptions{Password: s.cfg.Password, Since: since, DryRun: dryRun})
	if err == nil && !dryRun {
		s.changed()
	}
	return res, err
}

// ExtendLocks extends the object locks that would lapse within window
// (repo.ExtendLocks): the primary's, or target's (by its own policy).
func (s *Service) ExtendLocks(ctx context.Context, window time.Duration, target string) (*repo.ExtendResult, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	if target == "" {
		return r.ExtendLocks(ctx, window, blob.RequestsOf(r.Store()))
	}
	t, err := replication.GetTarget(ctx, r, target)
	if err != nil {
		return nil, err
	}
	if t.Lock == nil {
		return nil, problem.Errorf(problem.Invalid, problem.NoRemedy, target, "target %s has no lock policy of its own: register it with one to have its objects locked", target)
	}
	dst, err := s.cfg.Open(ctx, t.URL)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", target, err)
	}
	defer dst.Close()
	view := r.OnStore(dst, s.cfg.CacheDir).WithLock(t.Lock)
	return view.ExtendLocks(ctx, window, blob.RequestsOf(dst))
}
