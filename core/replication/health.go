package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Health states of a target.
const (
	Healthy     = "HEALTHY"
	Degraded    = "DEGRADED"
	Unreachable = "UNREACHABLE"
	Unknown     = "UNKNOWN"
)

const statusDir = "target-status"

// HealthPrefix is where probes write, in the target.
const HealthPrefix = repo.HealthPrefix

// Probe writes, reads back and deletes a small object under health/ in
// dst, within timeout, and returns how long that took.
func Probe(ctx context.Context, dst blob.Store, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	key := fmt.Sprintf("%sprobe-%d", HealthPrefix, start.UnixNano())
	payload := []byte("graphkeep probe " + start.UTC().Format(time.RFC3339Nano))
	if err := blob.PutBytes(ctx, dst, key, payload, nil); err != nil {
		return 0, probeErr("write", ctx, err)
	}
	got, err := blob.ReadAll(ctx, dst, key)
	if err != nil {
		return 0, probeErr("read", ctx, err)
	}
	if !bytes.Equal(got, payload) {
		return 0, errors.New("probe read back different bytes")
	}
	if err := dst.Delete(ctx, key); err != nil {
		return 0, probeErr("delete", ctx, err)
	}
	return time.Since(start), nil
}

func probeErr(op string, ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("probe %s: no answer in time", op)
	}
	return fmt.Errorf("probe %s: %s", op, blob.Reason(err))
}

// Status is what graphkeep knows of a target's health, kept in the
// primary's meta so every process shares it.
type Status struct {
	Target               string    `json:"target"`
	State                string    `json:"status"`
	Since                time.Time `json:"since"`
	LastSuccess          time.Time `json:"last_success"`
	LastError            string    `json:"last_error,omitempty"`
	LastErrorTime        time.Time `json:"last_error_time"`
	ConsecutiveFailures  int       `json:"consecutive_failures"`
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	ProbeLatency         int64     `json:"probe_latency_ms"`
}

// Hysteresis: how many outcomes in a row move a target between states, so
// that one slow or failed request does not flap it.
type Hysteresis struct {
	// UnreachableAfter failures in a row make a target UNREACHABLE (one
	// failure makes a HEALTHY target DEGRADED). Default 3.
	UnreachableAfter int
	// HealthyAfter successes in a row make a DEGRADED or UNREACHABLE target
	// HEALTHY again. Default 2.
	HealthyAfter int
	// SlowProbe marks a target DEGRADED when probes succeed but take longer.
	// Default 5s.
	SlowProbe time.Duration
}

func (h *Hysteresis) applyDefaults() {
	if h.UnreachableAfter <= 0 {
		h.UnreachableAfter = 3
	}
	if h.HealthyAfter <= 0 {
		h.HealthyAfter = 2
	}
	if h.SlowProbe <= 0 {
		h.SlowProbe = 5 * time.Second
	}
}

// Observe updates s with one outcome (a probe or a real transfer): err nil
// is a success; latency is the probe's, or 0 for a transfer.
func (s *Status) Observe(err error, latency time.Duration, now time.Time, h Hysteresis) {
	h.applyDefaults()
	prev := s.State
	if prev == "" {
		prev = Unknown
	}
	next := prev
	if err == nil {
		s.ConsecutiveSuccesses++
		s.ConsecutiveFailures = 0
		s.LastSuccess = now
		if latency > 0 {
			s.ProbeLatency = latency.Milliseconds()
		}
		switch {
		case latency > h.SlowProbe:
			next = Degraded
		case prev == Unknown || prev == Healthy || s.ConsecutiveSuccesses >= h.HealthyAfter:
			next = Healthy
		}
	} else {
		s.ConsecutiveFailures++
		s.ConsecutiveSuccesses = 0
		s.LastError, s.LastErrorTime = err.Error(), now
		switch {
		case s.ConsecutiveFailures >= h.UnreachableAfter:
			next = Unreachable
		case prev == Healthy || prev == Unknown:
			next = Degraded
		}
	}
	if next != prev || s.Since.IsZero() {
		s.Since = now
	}
	s.State = next
}

// LoadStatus returns the stored status of target id (UNKNOWN when none).
func LoadStatus(ctx context.Context, r *repo.Repository, id string) (Status, error) {
	s := Status{Target: id, State: Unknown}
	err := r.GetMeta(ctx, statusDir+"/"+id, &s)
	if errors.Is(err, repo.ErrMetaMissing) {
		return Status{Target: id, State: Unknown}, nil
	}
	return s, err
}

// SaveStatus stores s in the primary.
func SaveStatus(ctx context.Context, r *repo.Repository, s Status) error {
	return r.PutMeta(ctx, statusDir+"/"+s.Target, s)
}

// Record loads target id's status, applies one outcome and saves it.
func Record(ctx context.Context, r *repo.Repository, id string, outcome error, latency time.Duration, h Hysteresis) (Status, error) {
	s, err := LoadStatus(ctx, r, id)
	if err != nil {
		return s, err
	}
	s.Observe(outcome, latency, time.Now().UTC(), h)
	return s, SaveStatus(ctx, r, s)
}
