package api

import (
	"testing"
	"time"
)

// A running job's progress carries its rate since it started and the time
// left at that rate; a finished one its rate over its whole run, no ETA.
func TestJobProgressRate(t *testing.T) {
	start := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	p := JobProgress{Bytes: 100 << 20, TotalBytes: 400 << 20}
	p.rate(&start, nil, start.Add(10*time.Second))
	if p.BytesPerSecond != 10<<20 || p.ETASeconds == nil || *p.ETASeconds != 30 {
		t.Fatalf("running: %+v", p)
	}
	end := start.Add(20 * time.Second)
	done := JobProgress{Bytes: 400 << 20, TotalBytes: 400 << 20}
	done.rate(&start, &end, end.Add(time.Hour))
	if done.BytesPerSecond != 20<<20 || done.ETASeconds != nil {
		t.Fatalf("finished: %+v", done)
	}
	queued := JobProgress{TotalBytes: 400 << 20}
	queued.rate(nil, nil, start)
	if queued.BytesPerSecond != 0 || queued.ETASeconds != nil {
		t.Fatalf("queued: %+v", queued)
	}
}
