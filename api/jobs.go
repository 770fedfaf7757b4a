package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
)

// Job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// Job is long work the API runs in the background: backup, restore,
// cleanup, validation, failover. Jobs live in the instance that runs them.
type Job struct {
	ID       string      `json:"id"`
	Kind     string      `json:"kind"`
	Target   string      `json:"target,omitempty"` // what it works on: a graph, a checkpoint
	State    string      `json:"state"`
	Progress JobProgress `json:"progress"`
	Result   any         `json:"result,omitempty"`
	Error    *Error      `json:"error,omitempty"`
	Created  time.Time   `json:"created"`
	Started  *time.Time  `json:"started,omitempty"`
	Finished *time.Time  `json:"finished,omitempty"`
}

// JobProgress is how far a job is. While it runs, the rate is its bytes
// over the time since it started, and the ETA what is left at that rate
// (absent until there is a rate).
type JobProgress struct {
	Bytes      int64 `json:"bytes"`
	TotalBytes int64 `json:"total_bytes"`
	Files      int   `json:"files"`
	TotalFiles int   `json:"total_files"`
	// BytesPerSecond since the job started; absent before any byte.
	BytesPerSecond float64 `json:"bytes_per_second,omitempty"`
	// ETASeconds is the time left at that rate, while the job runs.
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
}

type job struct {
	mu     sync.Mutex
	Job    Job
	cancel context.CancelFunc
	done   chan struct{}
}

func (j *job) snapshot() Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.Job
	out.Progress.rate(out.Started, out.Finished, time.Now())
	return out
}

// rate fills BytesPerSecond and, while running, ETASeconds.
func (p *JobProgress) rate(started, finished *time.Time, now time.Time) {
	if started == nil || p.Bytes <= 0 {
		return
	}
	end := now
	if finished != nil {
		end = *finished
	}
	elapsed := end.Sub(*started).Seconds()
	if elapsed <= 0 {
		return
	}
	p.BytesPerSecond = float64(p.Bytes) / elapsed
	if finished == nil && p.TotalBytes >= p.Bytes {
		eta := float64(p.TotalBytes-p.Bytes) / p.BytesPerSecond
		p.ETASeconds = &eta
	}
}

// Work is a job's body; progress may be called from any goroutine.
type Work func(ctx context.Context, progress func(backup.Progress)) (any, error)

// Jobs runs and remembers jobs. At most Limits.Running run at once (the
// rest wait, queued, in order); at most Limits.Queued wait; a request for
// work already queued (a backup of the same graph, a cleanup, ...) joins
// the queued job instead of adding one; finished jobs are remembered up to
// Limits.Kept.
type Jobs struct {
	mu     sync.Mutex
	byID   map[string]*job
	order  []string
	queued int
	slots  chan struct{}
	limits JobLimits
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	m      *Metrics
}

// JobLimits bound the jobs of a server; zero fields take defaults.
type JobLimits struct {
	// Running jobs at once. Default 2: a backup holds ~120 MiB.
	Running int `yaml:"max_running_jobs"`
	// Queued jobs at most; more are refused (429). Default 100.
	Queued int `yaml:"max_queued_jobs"`
	// Kept finished jobs. Default 1,000.
	Kept int `yaml:"kept_jobs"`
}

func (l *JobLimits) applyDefaults() {
	if l.Running <= 0 {
		l.Running = 2
	}
	if l.Queued <= 0 {
		l.Queued = 100
	}
	if l.Kept <= 0 {
		l.Kept = 1000
	}
}

// coalescing kinds: a queued job of the kind, on the same target, does
// what a new request would (it has not started yet).
var coalescing = map[string]bool{"backup": true, "checkpoint": true, "replicate": true, "cleanup": true}

// errTooManyJobs: the queue is full.
var errTooManyJobs = errors.New("too many jobs queued")

func newJobs(m *Metrics, limits JobLimits) *Jobs {
	limits.applyDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Jobs{byID: map[string]*job{}, ctx: ctx, cancel: cancel, m: m, limits: limits, slots: make(chan struct{}, limits.Running)}
}

// Submit queues work as a job, or returns the queued job that already does
// it (see Jobs). It fails with a 429 when the queue is full.
func (js *Jobs) Submit(kind, target string, work Work) (Job, error) {
	js.mu.Lock()
	if coalescing[kind] {
		for i := len(js.order) - 1; i >= 0; i-- {
			if j := js.byID[js.order[i]]; j != nil {
				if s := j.snapshot(); s.State == JobQueued && s.Kind == kind && s.Target == target {
					js.mu.Unlock()
					return s, nil
				}
			}
		}
	}
	if js.queued >= js.limits.Queued {
		js.mu.Unlock()
		return Job{}, &Error{Status: http.StatusTooManyRequests, Code: "too_many_jobs",
			Message: fmt.Sprintf("%v: %d are waiting; try again when some have finished (GET /jobs)", errTooManyJobs, js.queued)}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithCancel(js.ctx)
	j := &job{Job: Job{ID: "job-" + hex.EncodeToString(b[:]), Kind: kind, Target: target, State: JobQueued, Created: time.Now().UTC()},
		cancel: cancel, done: make(chan struct{})}
	js.byID[j.Job.ID] = j
	js.order = append(js.order, j.Job.ID)
	js.queued++
	js.forgetOld()
	js.mu.Unlock()
	js.m.jobs.WithLabelValues(kind, JobQueued).Inc()
	js.wg.Add(1)
	go js.run(ctx, j, work)
	return j.snapshot(), nil
}

// forgetOld drops the oldest finished jobs beyond Limits.Kept (never one
// that is queued or running).
func (js *Jobs) forgetOld() {
	finished := 0
	for _, id := range js.order {
		if js.byID[id].snapshot().Finished != nil {
			finished++
		}
	}
	keep := js.order[:0]
	for _, id := range js.order {
		if finished > js.limits.Kept && js.byID[id].snapshot().Finished != nil {
			delete(js.byID, id)
			finished--
			continue
		}
		keep = append(keep, id)
	}
	js.order = keep
}

func (js *Jobs) run(ctx context.Context, j *job, work Work) {
	defer js.wg.Done()
	defer close(j.done)
	select { // wait for a slot, queued
	case js.slots <- struct{}{}:
	case <-ctx.Done():
	}
	js.mu.Lock()
	js.queued--
	js.mu.Unlock()
	js.m.jobs.WithLabelValues(j.Job.Kind, JobQueued).Dec()
	if ctx.Err() != nil {
		end := time.Now().UTC()
		j.mu.Lock()
		j.Job.Finished, j.Job.State = &end, JobCancelled
		j.Job.Error = &Error{Status: http.StatusConflict, Code: "cancelled", Message: "the job was cancelled before it started"}
		j.mu.Unlock()
		js.m.jobsDone.WithLabelValues(j.Job.Kind, JobCancelled).Inc()
		return
	}
	defer func() { <-js.slots }()
	js.m.jobs.WithLabelValues(j.Job.Kind, JobRunning).Inc()
	now := time.Now().UTC()
	j.mu.Lock()
	j.Job.State, j.Job.Started = JobRunning, &now
	j.mu.Unlock()
	result, err := work(ctx, func(p backup.Progress) {
		j.mu.Lock()
		j.Job.Progress = JobProgress{Bytes: p.Bytes, TotalBytes: p.TotalBytes, Files: p.Files, TotalFiles: p.TotalFiles}
		j.mu.Unlock()
	})
	end := time.Now().UTC()
	j.mu.Lock()
	j.Job.Finished = &end
	switch {
	case err != nil && ctx.Err() != nil:
		j.Job.State, j.Job.Error = JobCancelled, &Error{Status: http.StatusConflict, Code: "cancelled", Message: "the job was cancelled"}
	case err != nil:
		j.Job.State, j.Job.Error = JobFailed, toAPIError(err)
		j.Job.Result = result
	default:
		j.Job.State, j.Job.Result = JobSucceeded, result
	}
	state, kind, target := j.Job.State, j.Job.Kind, j.Job.Target
	j.mu.Unlock()
	js.mu.Lock()
	js.forgetOld()
	js.mu.Unlock()
	js.m.jobs.WithLabelValues(kind, JobRunning).Dec()
	js.m.jobsDone.WithLabelValues(kind, state).Inc()
	if kind == "backup" && state == JobFailed && target != "" {
		js.m.ObserveBackupFailure(target, time.Now())
	}
}

func (js *Jobs) get(id string) (*job, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j, ok := js.byID[id]
	if !ok {
		return nil, errNotFound("no job %q on this instance", id)
	}
	return j, nil
}

// Get returns a job's state.
func (js *Jobs) Get(id string) (Job, error) {
	j, err := js.get(id)
	if err != nil {
		return Job{}, err
	}
	return j.snapshot(), nil
}

// List returns the jobs, newest first.
func (js *Jobs) List() []Job {
	js.mu.Lock()
	all := make([]*job, 0, len(js.byID))
	for _, j := range js.byID {
		all = append(all, j)
	}
	js.mu.Unlock()
	out := make([]Job, 0, len(all))
	for _, j := range all {
		out = append(out, j.snapshot())
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Created.After(out[k].Created) })
	return out
}

// Cancel asks a job to stop.
func (js *Jobs) Cancel(id string) (Job, error) {
	j, err := js.get(id)
	if err != nil {
		return Job{}, err
	}
	j.cancel()
	return j.snapshot(), nil
}

// Wait blocks until the job ends or ctx does.
func (js *Jobs) Wait(ctx context.Context, id string) (Job, error) {
	j, err := js.get(id)
	if err != nil {
		return Job{}, err
	}
	select {
	case <-j.done:
	case <-ctx.Done():
	}
	return j.snapshot(), nil
}

// shutdown cancels every job and waits for them, at most d: work that
// cannot finish is abandoned safely (manifests are written last, restores
// swap in last).
func (js *Jobs) shutdown(d time.Duration) {
	js.cancel()
	done := make(chan struct{})
	go func() { js.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// startJob submits work and answers the request: 202 with the job (and
// Location), or with ?wait=true the finished job (201 on success) or its
// error.
func (s *Server) startJob(w http.ResponseWriter, r *http.Request, kind, target string, work Work) {
	j, err := s.jobs.Submit(kind, target, work)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if r.URL.Query().Get("wait") != "true" {
		w.Header().Set("Location", "/jobs/"+j.ID)
		writeJSON(w, http.StatusAccepted, j)
		return
	}
	j, _ = s.jobs.Wait(r.Context(), j.ID)
	switch j.State {
	case JobSucceeded:
		writeJSON(w, http.StatusCreated, j)
	case JobFailed, JobCancelled:
		writeJSON(w, j.Error.Status, map[string]any{"error": j.Error, "job": j})
	default: // the client went away
		writeJSON(w, http.StatusAccepted, j)
	}
}
