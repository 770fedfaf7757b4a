package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/graphkeep/graphkeep/core/repo"
)

// WatchOptions tune Watch and RunOnce; zero fields take defaults.
type WatchOptions struct {
	// Interval between probes and between reconcile rounds. Default 10s.
	Interval time.Duration
	// ProbeTimeout bounds one probe. Default 5s.
	ProbeTimeout time.Duration
	Hysteresis   Hysteresis
	Replicate    Options
	// Only limits the work to one target id.
	Only string
	// OnEvent, when set, hears what happens (called from several goroutines).
	OnEvent func(Event)
}

func (o *WatchOptions) applyDefaults() {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 5 * time.Second
	}
}

// Event is one thing that happened to a target.
type Event struct {
	Time   time.Time `json:"time"`
	Target string    `json:"target"`
	// Kind: "state" (health changed), "replicated", "failed".
	Kind   string  `json:"kind"`
	State  string  `json:"state,omitempty"`
	Result *Result `json:"result,omitempty"`
	Err    error   `json:"-"`
}

// RunOnce probes and replicates every target (or opts.Only) once and
// returns the results; the error joins the targets that failed.
func RunOnce(ctx context.Context, r *repo.Repository, open Opener, opts WatchOptions) ([]*Result, error) {
	opts.applyDefaults()
	targets, err := selectTargets(ctx, r, opts.Only)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, ErrNoTargets
	}
	var results []*Result
	var errs []error
	for _, t := range targets {
		res, err := syncTarget(ctx, r, open, t, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.ID, err))
			continue
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

// Watch keeps targets in sync until ctx ends. Probes run on their own
// clock, so a target that stops answering turns UNREACHABLE on schedule
// even while a copy to it is stuck; that copy is then cancelled. Targets
// that fail are retried with exponential backoff (5s doubling to 5
// minutes), reset when a probe succeeds. A target outage never touches the
// primary.
func Watch(ctx context.Context, r *repo.Repository, open Opener, opts WatchOptions) error {
	opts.applyDefaults()
	w := &watcher{r: r, open: open, opts: opts, running: map[string]context.CancelFunc{}, backoff: map[string]*backoff{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.loop(ctx, w.probeAll)
	}()
	w.loop(ctx, w.reconcileAll)
	wg.Wait()
	return nil
}

type watcher struct {
	r       *repo.Repository
	open    Opener
	opts    WatchOptions
	mu      sync.Mutex
	running map[string]context.CancelFunc // copies in flight, by target
	backoff map[string]*backoff
}

type backoff struct {
	next  time.Time
	delay time.Duration
}

func (w *watcher) loop(ctx context.Context, round func(context.Context)) {
	for {
		round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.opts.Interval):
		}
	}
}

func (w *watcher) emit(e Event) {
	if w.opts.OnEvent != nil {
		e.Time = time.Now().UTC()
		w.opts.OnEvent(e)
	}
}

func (w *watcher) probeAll(ctx context.Context) {
	targets, err := selectTargets(ctx, w.r, w.opts.Only)
	if err != nil {
		return
	}
	for _, t := range targets {
		latency, err := probeTarget(ctx, w.open, t, w.opts.ProbeTimeout)
		if ctx.Err() != nil {
			return
		}
		before, _ := LoadStatus(ctx, w.r, t.ID)
		st, recErr := Record(ctx, w.r, t.ID, err, latency, w.opts.Hysteresis)
		if recErr != nil {
			continue
		}
		if st.State != before.State {
			w.emit(Event{Target: t.ID, Kind: "state", State: st.State, Err: err})
		}
		w.mu.Lock()
		switch {
		case st.State == Unreachable:
			if cancel := w.running[t.ID]; cancel != nil {
				cancel() // do not wait for a stuck copy's timeouts
			}
		case err == nil && w.backoff[t.ID] != nil:
			w.backoff[t.ID].next = time.Time{} // answering again: retry now
		}
		w.mu.Unlock()
	}
}

func (w *watcher) reconcileAll(ctx context.Context) {
	targets, err := selectTargets(ctx, w.r, w.opts.Only)
	if err != nil {
		return
	}
	for _, t := range targets {
		st, _ := LoadStatus(ctx, w.r, t.ID)
		w.mu.Lock()
		bo := w.backoff[t.ID]
		if bo == nil {
			bo = &backoff{}
			w.backoff[t.ID] = bo
		}
		skip := st.State == Unreachable || time.Now().Before(bo.next)
		tctx, cancel := context.WithCancel(ctx)
		if !skip {
			w.running[t.ID] = cancel
		}
		w.mu.Unlock()
		if skip {
			cancel()
			continue
		}
		res, err := replicateTo(tctx, w.r, w.open, t, w.opts.Replicate)
		cancel()
		w.mu.Lock()
		delete(w.running, t.ID)
		if err != nil {
			bo.delay = min(max(bo.delay*2, 5*time.Second), 5*time.Minute)
			bo.next = time.Now().Add(bo.delay)
		} else {
			*bo = backoff{}
		}
		w.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		_, _ = Record(ctx, w.r, t.ID, err, 0, w.opts.Hysteresis)
		if err != nil {
			w.emit(Event{Target: t.ID, Kind: "failed", Err: err})
			continue
		}
		w.emit(Event{Target: t.ID, Kind: "replicated", Result: res})
	}
}

// syncTarget probes a target, replicates to it, and records both outcomes.
func syncTarget(ctx context.Context, r *repo.Repository, open Opener, t Target, opts WatchOptions) (*Result, error) {
	latency, err := probeTarget(ctx, open, t, opts.ProbeTimeout)
	st, _ := Record(ctx, r, t.ID, err, latency, opts.Hysteresis)
	if err != nil {
		return nil, fmt.Errorf("%w (target is %s)", err, st.State)
	}
	res, err := replicateTo(ctx, r, open, t, opts.Replicate)
	_, _ = Record(ctx, r, t.ID, err, 0, opts.Hysteresis)
	return res, err
}

func probeTarget(ctx context.Context, open Opener, t Target, timeout time.Duration) (time.Duration, error) {
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dst, err := open(octx, t.URL)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	return Probe(ctx, dst, timeout)
}

func replicateTo(ctx context.Context, r *repo.Repository, open Opener, t Target, opts Options) (*Result, error) {
	dst, err := open(ctx, t.URL)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	return Replicate(ctx, r, t, dst, opts)
}

func selectTargets(ctx context.Context, r *repo.Repository, only string) ([]Target, error) {
	if only == "" {
		return ListTargets(ctx, r)
	}
	t, err := GetTarget(ctx, r, only)
	if err != nil {
		return nil, err
	}
	return []Target{t}, nil
}
