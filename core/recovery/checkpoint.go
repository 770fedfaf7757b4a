// Package recovery answers the operator's question when the primary storage
// is lost: which consistent state of all my graphs can I bring back, from
// where, and how. Checkpoints name one snapshot per graph; validation
// checks every copy; failover promotes a target to primary.
package recovery

import (
	"strings"

	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/repo"
)

// ErrNoCheckpoint: no such checkpoint (or none at all).
var ErrNoCheckpoint = &problem.Error{Kind: problem.NotFound, Code: "not_found", Remedy: problem.ListCheckpoints, Msg: "no such checkpoint"}

// CreateOptions tune CreateCheckpoint.
type CreateOptions struct {
	Note   string
	Backup backup.Options
}

// CreateCheckpoint snapshots every source (the workspaces of one
// PostgreSQL database at one instant), then writes one checkpoint naming
// those snapshots with their LightRAG counts. A checkpoint names
// only good snapshots: when a graph's new snapshot is flagged or
// mid-ingestion, it names that graph's newest good one, with a note. The
// checkpoint is written only after every snapshot it names exists; if any
// graph fails to back up, or has no good snapshot, none is written.
func CreateCheckpoint(ctx context.Context, r *repo.Repository, sources []backup.Source, opts CreateOptions) (*repo.Checkpoint, error) {
	if len(sources) == 0 {
		return nil, errors.New("a checkpoint needs at least one graph")
	}
	start := time.Now()
	cp := &repo.Checkpoint{Version: r.Format(), ID: repo.NewSnapshotID(start), Time: start.UTC(), Note: opts.Note}
	// The graphs of one PostgreSQL database are read at one instant.
	bo := opts.Backup
	bo.OneInstant = true
	for _, out := range backup.CreateAll(ctx, r, sources, bo) {
		if out.Err != nil {
			return nil, fmt.Errorf("checkpoint not written: graph %q: %w", out.Graph, out.Err)
		}
		m := out.Result.Manifest
		entry := repo.CheckpointSnapshot{Graph: m.Graph, ID: m.ID, LightRAG: m.LightRAG}
		if !m.Good() {
			good, err := latestGood(ctx, r, m.Graph)
			if err != nil {
				return nil, fmt.Errorf("checkpoint not written: graph %q: the new snapshot %s is %s, and %w", m.Graph, m.ID, m.NotGoodReason(), err)
			}
			entry = repo.CheckpointSnapshot{Graph: good.Graph, ID: good.ID, LightRAG: good.LightRAG,
				Note: fmt.Sprintf("the new snapshot %s is %s; this is the newest good one", m.ID, m.NotGoodReason())}
			m = good
		}
		if m.Resumable() {
			entry.Resumable = true
			resumes := "resumable: on start LightRAG takes up again " + m.Consistency.Resume.String()
			entry.Note = strings.TrimPrefix(entry.Note+"; "+resumes, "; ")
		}
		cp.Snapshots = append(cp.Snapshots, entry)
	}
	if err := r.SaveCheckpoint(ctx, cp); err != nil {
		return nil, err
	}
	return cp, nil
}

// Checkpoints returns every checkpoint, newest first.
func Checkpoints(ctx context.Context, r *repo.Repository) ([]*repo.Checkpoint, error) {
	ids, err := r.ListCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var out []*repo.Checkpoint
	for _, id := range ids {
		cp, err := r.LoadCheckpoint(ctx, id)
		if errors.Is(err, repo.ErrSnapshotMissing) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// Find resolves "latest", a full id, or a unique prefix of one.
func Find(ctx context.Context, r *repo.Repository, id string) (*repo.Checkpoint, error) {
	all, err := Checkpoints(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: there are no checkpoints", ErrNoCheckpoint.With("", problem.CreateCheckpoint))
	}
	if id == "latest" || id == "" {
		return all[0], nil
	}
	var match []*repo.Checkpoint
	for _, cp := range all {
		if cp.ID == id {
			return cp, nil
		}
		if len(id) >= 4 && len(cp.ID) > len(id) && cp.ID[:len(id)] == id {
			match = append(match, cp)
		}
	}
	if len(match) == 1 {
		return match[0], nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoCheckpoint.With(id, problem.ListCheckpoints), id)
}

// DeleteCheckpoint removes a checkpoint: its snapshots are no longer pinned
// (they stay until retention forgets them).
func DeleteCheckpoint(ctx context.Context, r *repo.Repository, id string) error {
	if _, err := r.LoadCheckpoint(ctx, id); err != nil {
		return fmt.Errorf("%w: %v", ErrNoCheckpoint, err)
	}
	if err := r.Store().Delete(ctx, repo.CheckpointPrefix+id); err != nil {
		return err
	}
	return r.DeleteMeta(ctx, validationDir+"/"+id)
}

// latestGood is graph's newest good snapshot.
func latestGood(ctx context.Context, r *repo.Repository, graph string) (*repo.Manifest, error) {
	refs, err := r.ListSnapshots(ctx, graph)
	if err != nil {
		return nil, err
	}
	c, _, err := r.LatestGood(ctx, graph, refs)
	if err != nil {
		return nil, err
	}
	return r.Cache().Manifest(ctx, c.Ref)
}
