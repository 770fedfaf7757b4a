package api

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
)

// TestJobsAreBounded: at most Running run at once, the rest wait queued;
// duplicate backups of a graph join the queued one; a full queue is a 429;
// finished jobs are forgotten beyond Kept.
func TestJobsAreBounded(t *testing.T) {
	js := newJobs(NewMetrics(), JobLimits{Running: 1, Queued: 3, Kept: 2})
	defer js.shutdown(5 * time.Second)
	release := make(chan struct{})
	var running, maxRunning atomic.Int32
	work := func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}
	first, err := js.Submit("restore", "g1", work)
	if err != nil {
		t.Fatal(err)
	}
	for first.State != JobRunning {
		time.Sleep(time.Millisecond)
		first, _ = js.Get(first.ID)
	}
	var backups []Job
	for i := 0; i < 500; i++ {
		j, err := js.Submit("backup", "g1", work)
		if err != nil {
			t.Fatalf("backup request %d: %v", i, err)
		}
		backups = append(backups, j)
	}
	for _, j := range backups {
		if j.ID != backups[0].ID || j.State != JobQueued {
			t.Fatalf("500 backups of one graph while one job runs: %s %s, want all to join %s", j.ID, j.State, backups[0].ID)
		}
	}
	if _, err := js.Submit("restore", "g2", work); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Submit("restore", "g3", work); err != nil {
		t.Fatal(err)
	}
	_, err = js.Submit("restore", "g4", work)
	var e *Error
	if !errors.As(err, &e) || e.Status != 429 {
		t.Fatalf("a fourth queued job: %v, want a 429", err)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		done := 0
		for _, j := range js.List() {
			if j.Finished != nil {
				done++
			}
		}
		if done >= 2 && running.Load() == 0 && len(js.List()) <= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs: %+v", js.List())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d jobs ran at once, want 1", m)
	}
}
