package api

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/repo"
)

// views keeps the read models that requests would otherwise rebuild from
// storage on every call: the snapshot list (refreshed when older than
// snapshotsTTL or after a change through this instance) and the system
// health (refreshed in the background). Reads stay fast whatever the
// repository's size; other instances' changes show within the TTL.
type views struct {
	s *Server

	mu        sync.Mutex
	snaps     []repo.Summary
	snapsAt   time.Time
	encoded   map[string][]byte // graph -> its snapshot list as JSON, for snapsAt
	health    *recovery.Health
	healthAt  time.Time
	healthErr error
}

const (
	snapshotsTTL = 2 * time.Second
	healthTTL    = 10 * time.Second
)

func newViews(s *Server) *views { return &views{s: s} }

// invalidate drops the cached views after a change through this instance.
func (v *views) invalidate() {
	v.mu.Lock()
	v.snapsAt, v.healthAt = time.Time{}, time.Time{}
	v.encoded = nil
	v.mu.Unlock()
}

// snapshots returns every snapshot, oldest first.
func (v *views) snapshots(ctx context.Context) ([]repo.Summary, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if time.Since(v.snapsAt) < snapshotsTTL {
		return v.snaps, nil
	}
	out, err := v.s.svc.Snapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	v.snaps, v.snapsAt, v.encoded = out, time.Now(), map[string][]byte{}
	return out, nil
}

// graphSnapshotsJSON returns graph's snapshot list, encoded once per
// refresh: listing a thousand snapshots costs a copy, not an encoding.
func (v *views) graphSnapshotsJSON(ctx context.Context, graph string) ([]byte, error) {
	if err := v.s.svc.CheckGraph(ctx, graph); err != nil {
		return nil, err
	}
	all, err := v.snapshots(ctx)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if b, ok := v.encoded[graph]; ok {
		return b, nil
	}
	mine := []repo.Summary{}
	for _, s := range all {
		if s.Graph == graph {
			mine = append(mine, s)
		}
	}
	b, err := json.MarshalIndent(mine, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	if v.encoded != nil {
		v.encoded[graph] = b
	}
	return b, nil
}

// systemHealth returns the cached health, computing it when missing or
// stale; refresh recomputes it now.
func (v *views) systemHealth(ctx context.Context, refresh bool) (*recovery.Health, error) {
	v.mu.Lock()
	h, at, err := v.health, v.healthAt, v.healthErr
	v.mu.Unlock()
	if !refresh && h != nil && time.Since(at) < healthTTL {
		return h, err
	}
	return v.computeHealth(ctx)
}

func (v *views) computeHealth(ctx context.Context) (*recovery.Health, error) {
	h, err := v.s.svc.Health(ctx)
	v.mu.Lock()
	v.health, v.healthAt, v.healthErr = h, time.Now(), err
	v.mu.Unlock()
	if h != nil {
		v.s.m.ObserveHealth(h)
	}
	return h, err
}

// RefreshLoop keeps the health view (and the gauges it feeds) fresh until
// ctx ends.
func (s *Server) RefreshLoop(ctx context.Context) {
	for {
		_, _ = s.view.computeHealth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(healthTTL):
		}
	}
}
