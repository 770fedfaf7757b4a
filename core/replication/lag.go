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
// manifests on both sides and reads them through the caches; it never
// lists chunks.
func ComputeLag(ctx context.Context, r *repo.Repository, t Target, dst blob.Store, cacheDir string) (*Lag, error) {
	view := r.OnStore(dst, cacheDir)
	have, err := view.ListSnapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	lag := &Lag{Latest: map[string]string{}}
	onTarget := map[string]bool{}
	targetChunks := map[repo.ChunkID]bool{}
	for _, ref := range have {
		onTarget[ref.Key()] = true
		lag.Latest[ref.Graph] = ref.ID // sorted oldest first
		if m, err := view.Cache().Manifest(ctx, ref); err == nil {
			for id := range m.ChunkIDs() {
				targetChunks[id] = true
			}
		}
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
		for id, size := range m.ChunkIDs() {
			if !targetChunks[id] && !counted[id] {
				counted[id] = true
				lag.Bytes += int64(size)
			}
		}
	}
	if !lag.OldestMissing.IsZero() {
		lag.RPOSeconds = time.Since(lag.OldestMissing).Seconds()
	}
	return lag, nil
}
