package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/blob"
)

// CheckpointPrefix is where recovery checkpoints live. A checkpoint names one
// snapshot per graph; it is written after every snapshot it names exists,
// and it pins them against retention.
const CheckpointPrefix = "checkpoints/"

// Checkpoint is one consistent set of snapshots spanning several graphs.
type Checkpoint struct {
	Version   int                  `json:"version"`
	ID        string               `json:"id"`
	Time      time.Time            `json:"time"`
	Note      string               `json:"note,omitempty"`
	Snapshots []CheckpointSnapshot `json:"snapshots"`
}

// CheckpointSnapshot is one graph's snapshot in a checkpoint.
type CheckpointSnapshot struct {
	Graph    string       `json:"graph"`
	ID       string       `json:"id"`
	LightRAG *GraphCounts `json:"lightrag,omitempty"`
	// Note says why the checkpoint names an older snapshot than the one
	// its backup took (that one was flagged or mid-ingestion), or that the
	// snapshot is resumable and which documents LightRAG takes up again.
	Note string `json:"note,omitempty"`
	// Resumable: the snapshot was cut while LightRAG was ingesting, in a
	// state it resumes from.
	Resumable bool `json:"resumable,omitempty"`
}

// SaveCheckpoint writes c with create-if-absent.
func (r *Repository) SaveCheckpoint(ctx context.Context, c *Checkpoint) error {
	if _, err := ParseSnapshotID(c.ID); err != nil {
		return fmt.Errorf("checkpoint id: %w", err)
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return err
	}
	key := CheckpointPrefix + c.ID
	if err := blob.PutBytes(ctx, r.store, key, r.sealObject(plain, key), &blob.PutOptions{IfAbsent: true, Retain: r.retain()}); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", c.ID, err)
	}
	return nil
}

// LoadCheckpoint reads checkpoint id.
func (r *Repository) LoadCheckpoint(ctx context.Context, id string) (*Checkpoint, error) {
	key := CheckpointPrefix + id
	stored, err := blob.ReadAll(ctx, r.store, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("checkpoint %s: %w", id, ErrSnapshotMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", id, err)
	}
	plain, err := r.openObject(stored, key)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	var c Checkpoint
	if err := json.Unmarshal(plain, &c); err != nil || c.ID != id {
		return nil, fmt.Errorf("checkpoint %s: %w", id, ErrCorrupt)
	}
	return &c, nil
}

// ListCheckpoints returns the ids of all checkpoints, oldest first.
func (r *Repository) ListCheckpoints(ctx context.Context) ([]string, error) {
	var ids []string
	err := blob.Walk(ctx, r.store, CheckpointPrefix, func(o blob.Object) error {
		id := strings.TrimPrefix(o.Key, CheckpointPrefix)
		if _, err := ParseSnapshotID(id); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	return ids, err
}

// Pins maps "graph/snapshot" to the checkpoints that pin it.
func (r *Repository) Pins(ctx context.Context) (map[string][]string, error) {
	ids, err := r.ListCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	pins := map[string][]string{}
	for _, id := range ids {
		c, err := r.LoadCheckpoint(ctx, id)
		if errors.Is(err, ErrSnapshotMissing) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, s := range c.Snapshots {
			k := s.Graph + "/" + s.ID
			pins[k] = append(pins[k], c.ID)
		}
	}
	return pins, nil
}
