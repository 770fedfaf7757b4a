package replication

import (
	"context"
	"errors"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Lag is how far a target is behind the primary.
type Lag struct {
	// Snapshots the target lacks, and the bytes (plaintext of the chunks
	// they name that the target lacks) it would take to catch up.
	Snapshots int   `json:"lag_snapshots"`
	Bytes     int64 `json:"lag_bytes"`
	// OldestMissing is the time of the oldest snapshot the target lacks;
	// RPO is its age: the data an operator would lose failing over now.
	OldestMissing time.Time `json:"oldest_missing,omitempty"`
	RPOSeconds    float64   `json:"rpo_seconds"`
	// Latest maps each graph to the newest snapshot the target holds.
	Latest map[string]string `json:"latest"`
}

// ComputeLag compares what the primary and the target hold. It lists
// manifests on both sides; what the target's manifests name comes from its
// kept index (only manifests new since the last look are read), and only the
// primary's manifests the target lacks are read. It never lists chunks.
func ComputeLag(ctx context.Context, r *repo.Repository, t Target, dst blob.Store, cacheDir string) (*Lag, error) {
	view := r.OnStore(dst, cacheDir)
	held, err := view.Cache().Index(ctx)
	if err != nil {
		return nil, err
	}
	lag := &Lag{Latest: map[string]string{}}
	onTarget := map[string]bool{}
	targetChunks := held.Chunks
	for _, ref := range held.Snapshots {
		onTarget[ref.Key()] = true
		lag.Latest[ref.Graph] = ref.ID // sorted oldest first
	}
	refs, err := r.ListSnapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	counted := map[repo.ChunkID]bool{}
	for _, ref := range refs {
		if !t.Includes(ref.Graph) || onTarget[ref.Key()] {
			continue
		}
		m, err := r.Cache().Manifest(ctx, ref)
		if errors.Is(err, repo.ErrSnapshotMissing) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lag.Snapshots++
		if lag.OldestMissing.IsZero() || m.Time.Before(lag.OldestMissing) {
			lag.OldestMissing = m.Time
		}
		for id, size := range m.Objects() {
			if !targetChunks.HasObject(id) && !counted[id] {
				counted[id] = true
				lag.Bytes += size
			}
		}
	}
	if !lag.OldestMissing.IsZero() {
		lag.RPOSeconds = time.Since(lag.OldestMissing).Seconds()
	}
	return lag, nil
}
