package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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

var errNoSuchJob = errors.New("no such job")

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

// JobProgress is how far a job is.
type JobProgress struct {
	Bytes      int64 `json:"bytes"`
	TotalBytes int64 `json:"total_bytes"`
	Files      int   `json:"files"`
	TotalFiles int   `json:"total_files"`
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
	return j.Job
}

// Work is a job's body; progress may be called from any goroutine.
type Work func(ctx context.Context, progress func(backup.Progress)) (any, error)

// Jobs runs and remembers jobs (the newest 1,000).
type Jobs struct {
	mu     sync.Mutex
	byID   map[string]*job
	order  []string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	m      *Metrics
}

func newJobs(m *Metrics) *Jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &Jobs{byID: map[string]*job{}, ctx: ctx, cancel: cancel, m: m}
}

// Submit starts work as a job.
func (js *Jobs) Submit(kind, target string, work Work) Job {
	var b [6]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithCancel(js.ctx)
	j := &job{Job: Job{ID: "job-" + hex.EncodeToString(b[:]), Kind: kind, Target: target, State: JobQueued, Created: time.Now().UTC()},
		cancel: cancel, done: make(chan struct{})}
	js.mu.Lock()
	js.byID[j.Job.ID] = j
	js.order = append(js.order, j.Job.ID)
	for len(js.order) > 1000 {
		old := js.byID[js.order[0]]
		if old.snapshot().Finished == nil {
			break // never forget a running job
		}
		delete(js.byID, js.order[0])
		js.order = js.order[1:]
	}
	js.mu.Unlock()
	js.m.jobs.WithLabelValues(kind, JobRunning).Inc()
	js.wg.Add(1)
	go js.run(ctx, j, work)
	return j.snapshot()
}

func (js *Jobs) run(ctx context.Context, j *job, work Work) {
	defer js.wg.Done()
	defer close(j.done)
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
	state, kind := j.Job.State, j.Job.Kind
	j.mu.Unlock()
	js.m.jobs.WithLabelValues(kind, JobRunning).Dec()
	js.m.jobsDone.WithLabelValues(kind, state).Inc()
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
	j := s.jobs.Submit(kind, target, work)
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
