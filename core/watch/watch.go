// Package watch is continuous protection: it notices when a graph changes
// (file system events, with a periodic rescan for file systems that send
// none), lets the backup wait for the graph to settle, and snapshots every
// settled state. Deduplication keeps each snapshot cheap; retention with
// keep_within keeps their number bounded.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
)

// Options tune Run; zero fields take defaults.
type Options struct {
	// Backup runs one backup of src; default backup.Create on the
	// repository with BackupOptions.
	Backup func(ctx context.Context, src backup.Source) (*backup.Result, error)
	// BackupOptions are used by the default Backup.
	BackupOptions backup.Options
	// MinInterval bounds the frequency: at most one backup of a graph per
	// MinInterval. Default 10s.
	MinInterval time.Duration
	// Rescan is how often the graph is looked at without an event. Default
	// 30s.
	Rescan time.Duration
	// Poll is how often a graph in PostgreSQL is asked whether its
	// workspace changed (a database sends no file events). Default 1s.
	Poll time.Duration
	// Retention, when set, is applied to a graph (forget) after each of its
	// backups, and unreferenced chunks are pruned every PruneEvery.
	Retention  *retention.Policy
	PruneEvery time.Duration // default 1h
	// OnSnapshot is called after every backup attempt.
	OnSnapshot func(Event)
	Logger     *slog.Logger
}

func (o *Options) applyDefaults(r *repo.Repository) {
	if o.MinInterval <= 0 {
		o.MinInterval = 10 * time.Second
	}
	if o.Rescan <= 0 {
		o.Rescan = 30 * time.Second
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = time.Hour
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Backup == nil {
		bo := o.BackupOptions
		o.Backup = func(ctx context.Context, src backup.Source) (*backup.Result, error) {
			return backup.Create(ctx, r, src, bo)
		}
	}
}

// Event is one backup continuous protection took.
type Event struct {
	Graph    string
	Manifest *repo.Manifest // nil when Err is set
	Err      error
	// RPO is the time from LightRAG's last write of the stored state to
	// the snapshot being committed.
	RPO      time.Duration
	Duration time.Duration
}

// Run protects sources until ctx ends; a backup in progress then stops
// without committing anything (a snapshot exists completely or not at
// all). It returns nil on a clean shutdown.
func Run(ctx context.Context, r *repo.Repository, sources []backup.Source, opts Options) error {
	if len(sources) == 0 {
		return errors.New("nothing to watch: no graphs")
	}
	opts.applyDefaults(r)
	var pruneMu sync.Mutex
	lastPrune := time.Now()
	g := &graphs{r: r, opts: opts, prune: func(ctx context.Context) {
		pruneMu.Lock()
		defer pruneMu.Unlock()
		if opts.Retention == nil || time.Since(lastPrune) < opts.PruneEvery {
			return
		}
		lastPrune = time.Now()
		if _, err := retention.Prune(ctx, r, retention.PruneOptions{Lease: opts.BackupOptions.Lease}); err != nil && ctx.Err() == nil {
			opts.Logger.Warn("watch: prune", "error", err)
		}
	}}
	var wg sync.WaitGroup
	errs := make(chan error, len(sources))
	for _, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.watch(ctx, src); err != nil {
				errs <- fmt.Errorf("graph %q: %w", src.Graph, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

type graphs struct {
	r     *repo.Repository
	opts  Options
	prune func(context.Context)
}

// watch is one graph's loop.
func (g *graphs) watch(ctx context.Context, src backup.Source) error {
	log := g.opts.Logger.With("graph", src.Graph)
	var events <-chan fsnotify.Event
	stop := func() {}
	if src.Dir != "" {
		var err error
		if events, stop, err = notify(src.Dir); err != nil && src.Postgres == nil {
			log.Warn("watch: no file system events; rescanning only", "every", g.opts.Rescan, "error", err)
		}
	}
	defer stop()
	look := &changes{dir: src.Dir}
	var poll <-chan time.Time
	if src.Postgres != nil {
		w, err := postgres.WatchChanges(ctx, src.Postgres.URL, src.Postgres.Workspace)
		if err != nil {
			return err
		}
		defer w.Close()
		look.db = w
		ticker := time.NewTicker(g.opts.Poll)
		defer ticker.Stop()
		poll = ticker.C
	}

	var err error
	if look.backedUp, err = g.lastWrite(ctx, src.Graph); err != nil { // what the newest snapshot holds
		return err
	}
	rescan := time.NewTicker(g.opts.Rescan)
	defer rescan.Stop()
	var lastRun time.Time
	dirty := true // look once at the start
	log.Info("watch: protecting", "dir", src.Dir, "postgres", pgName(src), "min_interval", g.opts.MinInterval)
	for {
		if dirty {
			dirty = false
			changed, err := look.since(ctx)
			if err != nil {
				log.Warn("watch: look at the graph", "error", err)
			}
			if changed {
				if wait := g.opts.MinInterval - time.Since(lastRun); wait > 0 && !lastRun.IsZero() {
					if !sleep(ctx, wait) {
						return nil
					}
				}
				lastRun = time.Now()
				before := look.state(ctx)
				ev := g.backupOnce(ctx, src)
				if ctx.Err() != nil {
					log.Info("watch: stopped")
					return nil
				}
				if ev.Err == nil {
					look.backedUp, look.backedUpState = ev.Manifest.Consistency.LastWrite, before
					log.Info("watch: snapshot committed", "snapshot", ev.Manifest.ID, "state", ev.Manifest.State(), "good", ev.Manifest.Good(),
						"rpo", ev.RPO.Round(time.Millisecond), "took", ev.Duration.Round(time.Millisecond),
						"added_bytes", ev.Manifest.Totals.AddedBytes)
				} else {
					log.Warn("watch: backup failed; trying again on the next change", "error", ev.Err)
				}
				dirty = true // it may have changed while the backup ran
				continue
			}
		}
		select {
		case <-ctx.Done():
			log.Info("watch: stopped")
			return nil
		case _, ok := <-events:
			if !ok {
				events = nil
			}
			dirty = true
		case <-poll:
			dirty = true
		case <-rescan.C:
			dirty = true
		}
	}
}

// changes says whether a graph changed since its last snapshot: its
// directory by its newest write, its PostgreSQL workspace by the change
// detector's state. The state is read before a backup starts: a write
// after that makes the next look back up again, never miss it.
type changes struct {
	dir           string
	db            *postgres.Changes
	backedUp      time.Time
	backedUpState string // "" until this watch took a snapshot
}

func (c *changes) since(ctx context.Context) (bool, error) {
	if c.dir != "" {
		if changed, err := changedSince(c.dir, c.backedUp); err != nil || changed {
			return changed, err
		}
	}
	if c.db == nil {
		return false, nil
	}
	st, err := c.db.State(ctx)
	if err != nil {
		return false, err
	}
	return c.backedUpState == "" || st != c.backedUpState, nil
}

func (c *changes) state(ctx context.Context) string {
	if c.db == nil {
		return ""
	}
	st, _ := c.db.State(ctx)
	return st
}

func pgName(src backup.Source) string {
	if src.Postgres == nil {
		return ""
	}
	return src.Postgres.String()
}

func (g *graphs) backupOnce(ctx context.Context, src backup.Source) Event {
	start := time.Now()
	res, err := g.opts.Backup(ctx, src)
	ev := Event{Graph: src.Graph, Err: err, Duration: time.Since(start)}
	if err == nil {
		ev.Manifest = res.Manifest
		if c := res.Manifest.Consistency; c != nil && !c.LastWrite.IsZero() {
			ev.RPO = time.Since(c.LastWrite)
		}
		if p := g.opts.Retention; p != nil {
			if _, err := retention.Forget(ctx, g.r, src.Graph, *p, false); err != nil && ctx.Err() == nil {
				g.opts.Logger.Warn("watch: forget", "graph", src.Graph, "error", err)
			}
			g.prune(ctx)
		}
	}
	if g.opts.OnSnapshot != nil && ctx.Err() == nil {
		g.opts.OnSnapshot(ev)
	}
	return ev
}

// lastWrite is the newest write the graph's newest snapshot holds (zero
// when it has none, or it was taken before graphkeep recorded it).
func (g *graphs) lastWrite(ctx context.Context, graph string) (time.Time, error) {
	refs, err := g.r.ListSnapshots(ctx, graph)
	if err != nil {
		return time.Time{}, err
	}
	ref, ok, err := g.r.Latest(ctx, graph, refs)
	if err != nil || !ok {
		return time.Time{}, err
	}
	m, err := g.r.Cache().Manifest(ctx, ref)
	if err != nil || m.Consistency == nil {
		return time.Time{}, err
	}
	return m.Consistency.LastWrite, nil
}

// changedSince reports whether anything in dir was written after t.
func changedSince(dir string, t time.Time) (bool, error) {
	if t.IsZero() {
		return true, nil
	}
	last, err := backup.LastWrite(dir)
	return last.After(t), err
}

// notify watches dir and its subdirectories; events is nil when the file
// system sends none.
func notify(dir string) (events <-chan fsnotify.Event, stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, func() {}, err
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(p)
		}
		return nil
	})
	if err != nil {
		w.Close()
		return nil, func() {}, err
	}
	go func() {
		for range w.Errors { // overflow and the like: the rescan covers them
		}
	}()
	return w.Events, func() { w.Close() }, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
