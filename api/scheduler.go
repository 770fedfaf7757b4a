package api

import (
	"context"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/core/service"
	"github.com/graphkeep/graphkeep/core/watch"
)

// Schedule says what the server does by itself. Zero intervals disable a
// task. Windows are aligned to the clock (slot = unix time / interval), so
// every instance on a repository agrees on them; an instance runs a task
// for a window only after winning that window's claim object, created with
// create-if-absent: two instances never run the same scheduled backup twice
// in one interval.
type Schedule struct {
	// BackupInterval is every graph's backup interval unless Graphs says
	// otherwise.
	BackupInterval time.Duration `yaml:"backup_interval"`
	// Graphs overrides the interval and retention of single graphs.
	Graphs              map[string]GraphSchedule `yaml:"graphs"`
	ReplicationInterval time.Duration            `yaml:"replication_interval"`
	CleanupInterval     time.Duration            `yaml:"cleanup_interval"`
	CheckpointInterval  time.Duration            `yaml:"checkpoint_interval"`
	// LockExtendInterval runs lock extend (primary and locked targets);
	// keep it well under a third of the retention.
	LockExtendInterval time.Duration `yaml:"lock_extend_interval"`
	// Continuous turns on continuous protection (core/watch) for every
	// graph: each settled state is backed up, at most once per
	// ContinuousMinInterval (default 10s) a graph.
	Continuous            bool          `yaml:"continuous"`
	ContinuousMinInterval time.Duration `yaml:"continuous_min_interval"`
}

// GraphSchedule is one graph's own schedule.
type GraphSchedule struct {
	BackupInterval time.Duration     `yaml:"backup_interval"`
	Retention      *retention.Policy `yaml:"retention"`
}

// Scheduler runs the schedule.
type Scheduler struct {
	s        *Server
	sched    Schedule
	done     map[string]int64 // task -> last slot handled by this instance
	tick     time.Duration
	lastTidy time.Time
}

// NewScheduler makes a scheduler for s.
func NewScheduler(s *Server, sched Schedule) *Scheduler {
	return &Scheduler{s: s, sched: sched, done: map[string]int64{}, tick: time.Second}
}

// Run ticks until ctx ends.
func (sc *Scheduler) Run(ctx context.Context) {
	for {
		sc.Tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(sc.tick):
		}
	}
}

// Tick starts every task whose window has come and whose claim this
// instance wins.
func (sc *Scheduler) Tick(ctx context.Context, now time.Time) {
	svc := sc.s.svc
	sources, err := svc.Sources()
	if err != nil {
		sc.s.log.Warn("scheduler: list graphs", "error", err)
		return
	}
	for _, src := range sources {
		interval := sc.sched.BackupInterval
		if gs, ok := sc.sched.Graphs[src.Graph]; ok && gs.BackupInterval > 0 {
			interval = gs.BackupInterval
		}
		sc.maybe(ctx, now, "backup-"+src.Graph, interval, func() {
			sc.submit("backup", src.Graph, func(ctx context.Context, progress func(backup.Progress)) (any, error) {
				return svc.BackupSource(ctx, src, progress)
			})
		})
	}
	sc.maybe(ctx, now, "replicate", sc.sched.ReplicationInterval, func() {
		sc.submit("replicate", "", func(ctx context.Context, _ func(backup.Progress)) (any, error) {
			return svc.Replicate(ctx, "", "")
		})
	})
	sc.maybe(ctx, now, "cleanup", sc.sched.CleanupInterval, func() {
		sc.submit("cleanup", "", func(ctx context.Context, _ func(backup.Progress)) (any, error) {
			return svc.ScheduledCleanup(ctx)
		})
	})
	sc.maybe(ctx, now, "lock-extend", sc.sched.LockExtendInterval, func() {
		sc.submit("lock-extend", "", func(ctx context.Context, _ func(backup.Progress)) (any, error) {
			return svc.ExtendAllLocks(ctx)
		})
	})
	sc.maybe(ctx, now, "checkpoint", sc.sched.CheckpointInterval, func() {
		sc.submit("checkpoint", "", func(ctx context.Context, progress func(backup.Progress)) (any, error) {
			return svc.CreateCheckpoint(ctx, nil, "scheduled", progress)
		})
	})
	if now.Sub(sc.lastTidy) > time.Hour {
		sc.lastTidy = now
		_ = svc.TidyClaims(ctx, now, 24*time.Hour)
	}
}

// maybe runs start once per window of interval, if this instance claims it.
func (sc *Scheduler) maybe(ctx context.Context, now time.Time, task string, interval time.Duration, start func()) {
	if interval <= 0 {
		return
	}
	slot := now.Unix() / int64(interval.Seconds())
	if sc.done[task] >= slot {
		return
	}
	sc.done[task] = slot
	won, err := sc.s.svc.Claim(ctx, task, slot, now)
	switch {
	case err != nil:
		sc.s.log.Warn("scheduler: claim", "task", task, "error", err)
		sc.done[task] = slot - 1 // try again next tick
		return
	case !won:
		return // another instance runs this window
	}
	start()
}

// Watch runs continuous protection of every graph the server knows until
// ctx ends; each RPO is recorded as graphkeep_watch_rpo_seconds.
func (s *Server) Watch(ctx context.Context, sched Schedule) error {
	return s.svc.Watch(ctx, service.WatchRequest{All: true, MinInterval: sched.ContinuousMinInterval, Logger: s.log,
		OnSnapshot: func(ev watch.Event) {
			if ev.Err == nil {
				s.m.ObserveRPO(ev.Graph, ev.RPO)
			}
		}})
}

// submit queues scheduled work; a full queue is logged (the next window
// tries again).
func (sc *Scheduler) submit(kind, target string, work Work) {
	if _, err := sc.s.jobs.Submit(kind, target, work); err != nil {
		sc.s.log.Warn("scheduler: job not queued", "kind", kind, "target", target, "error", err)
	}
}
