package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// VerifyOptions choose how deep Verify looks.
type VerifyOptions struct {
	// ReadData downloads, decodes and hashes every chunk; without it Verify
	// only checks that every chunk exists.
	ReadData bool
	// Workers is how many chunks are checked at once. Default 16.
	Workers int
	// Progress, when set, is called after each chunk.
	Progress func(done, total int)
}

// Damage is one chunk that is missing or corrupt, and where it is used.
type Damage struct {
	Chunk string `json:"chunk"`
	// Object is the key of the object that holds it (a pack, or the chunk
	// on its own).
	Object string `json:"object"`
	// Offset and Length are the chunk's bytes in its pack (absent for a
	// chunk stored on its own): what to copy back from a replica's object.
	Offset  int64    `json:"offset,omitempty"`
	Length  int      `json:"length,omitempty"`
	Problem string   `json:"problem"`
	UsedBy  []string `json:"used_by"` // "graph/snapshot:path"
}

// Unsafe is a manifest entry a restore refuses or tames: a path that would
// escape the destination, or a mode with setuid, setgid or sticky bits.
type Unsafe struct {
	Snapshot string `json:"snapshot"` // graph/id
	Path     string `json:"path,omitempty"`
	Problem  string `json:"problem"`
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Snapshots int      `json:"snapshots"`
	Chunks    int      `json:"chunks"`
	BytesRead int64    `json:"bytes_read"`
	ReadData  bool     `json:"read_data"`
	Damaged   []Damage `json:"damaged"`
	Unsafe    []Unsafe `json:"unsafe"`
}

// OK reports whether nothing is damaged or unsafe.
func (v *VerifyResult) OK() bool { return len(v.Damaged) == 0 && len(v.Unsafe) == 0 }

// Verify checks the chunks of refs: each exists, and with ReadData each
// decodes and hashes to its id. Damage is reported, not returned as an
// error; the error is for failing to check at all.
func Verify(ctx context.Context, r *repo.Repository, refs []repo.SnapshotRef, opts VerifyOptions) (*VerifyResult, error) {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	// Every chunk, with each place it is stored, once: 48 bytes each (a
	// million chunks in 46 MiB), checked in id order.
	var chunks repo.ChunkSet
	unsafe := []Unsafe{}
	for _, ref := range refs {
		m, err := r.Cache().Manifest(ctx, ref)
		if err != nil {
			return nil, err
		}
		unsafe = append(unsafe, unsafeEntries(m)...)
		chunks.AddManifest(m)
	}
	chunks.Seal()
	total := chunks.Places()
	res := &VerifyResult{Snapshots: len(refs), Chunks: total, ReadData: opts.ReadData, Damaged: []Damage{}, Unsafe: unsafe}
	var mu sync.Mutex
	done := 0
	stats := &objectStats{r: r, seen: map[repo.ChunkID]*objectStat{}}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Workers)
	for ref := range chunks.Refs() {
		g.Go(func() error {
			problem, n, err := checkChunk(gctx, r, stats, ref, opts.ReadData)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			res.BytesRead += n
			if problem != "" {
				res.Damaged = append(res.Damaged, Damage{Chunk: ref.ID.String(), Object: repo.ChunkKey(ref.Object()), Offset: ref.Offset, Length: ref.Length, Problem: problem})
			}
			done++
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := nameUsers(ctx, r, refs, res.Damaged); err != nil {
		return nil, err
	}
	sort.Slice(res.Damaged, func(i, j int) bool { return res.Damaged[i].Chunk < res.Damaged[j].Chunk })
	return res, nil
}

// nameUsers fills in which snapshot files use each damaged chunk, reading
// the manifests again: only when something is damaged, and keeping names
// for those chunks alone.
func nameUsers(ctx context.Context, r *repo.Repository, refs []repo.SnapshotRef, damaged []Damage) error {
	if len(damaged) == 0 {
		return nil
	}
	at := map[repo.ChunkID][]int{} // chunk -> its places in damaged
	for i, d := range damaged {
		if id, err := repo.ParseChunkID(d.Chunk); err == nil {
			at[id] = append(at[id], i)
		}
	}
	for _, ref := range refs {
		m, err := r.Cache().Manifest(ctx, ref)
		if err != nil {
			return err
		}
		for _, f := range m.Files {
			use := ref.Graph + "/" + ref.ID + ":" + f.Path
			for _, c := range f.Chunks {
				for _, i := range at[c.ID] {
					if u := damaged[i].UsedBy; len(u) == 0 || u[len(u)-1] != use {
						damaged[i].UsedBy = append(u, use)
					}
				}
			}
		}
	}
	return nil
}

// unsafeEntries lists what a restore of m refuses (unsafe paths) or tames
// (special mode bits).
func unsafeEntries(m *repo.Manifest) []Unsafe {
	var out []Unsafe
	snap := m.Graph + "/" + m.ID
	if err := checkPaths(m.Files); err != nil {
		out = append(out, Unsafe{Snapshot: snap, Problem: err.Error() + " (restore refuses this snapshot)"})
	}
	for _, l := range outsideLinks(m.Files) {
		path, _, _ := strings.Cut(l, " -> ")
		out = append(out, Unsafe{Snapshot: snap, Path: path, Problem: fmt.Sprintf("symlink %s points outside the graph directory; restore refuses it unless such links are allowed", l)})
	}
	if m.RootMode&^uint32(PermBits) != 0 {
		out = append(out, Unsafe{Snapshot: snap, Path: ".", Problem: fmt.Sprintf("mode %#o has bits beyond permissions (setuid, setgid or sticky); restore applies permission bits only", m.RootMode)})
	}
	for _, f := range m.Files {
		if f.Mode&^uint32(PermBits) != 0 {
			out = append(out, Unsafe{Snapshot: snap, Path: f.Path, Problem: fmt.Sprintf("mode %#o has bits beyond permissions (setuid, setgid or sticky); restore applies permission bits only", f.Mode)})
		}
	}
	return out
}

// checkChunk returns a problem description for a damaged chunk, or an error
// when the storage could not be asked. Without readData it checks that the
// object holding the chunk exists (once per object) and, for a pack, holds
// the chunk's bytes.
func checkChunk(ctx context.Context, r *repo.Repository, stats *objectStats, ref repo.ChunkRef, readData bool) (problem string, read int64, err error) {
	if !readData {
		size, missing, err := stats.stat(ctx, ref.Object())
		switch {
		case err != nil:
			return "", 0, fmt.Errorf("check chunk %s: %w", ref.ID, err)
		case missing:
			return "missing", 0, nil
		case ref.Packed() && size < ref.Offset+int64(ref.Length):
			// A prune that compacted the pack moved the chunk.
			if _, moved, err := r.Moved(ctx, ref); err == nil && moved {
				return "", 0, nil
			}
			return fmt.Sprintf("pack %s holds %d bytes, the chunk is at %d+%d: truncated", ref.Pack, size, ref.Offset, ref.Length), 0, nil
		}
		return "", 0, nil
	}
	// Wherever it is stored (a pack or an object of its own), the chunk is
	// read, decoded and its id re-derived; stored is what was read.
	_, stored, err := r.ReadRefInto(ctx, ref, nil, nil, repo.CheckID)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return "missing", 0, nil
	case errors.Is(err, repo.ErrCorrupt):
		return err.Error(), int64(len(stored)), nil
	case err != nil:
		return "", 0, fmt.Errorf("read chunk %s: %w", ref.ID, err)
	}
	return "", int64(len(stored)), nil
}

// objectStats asks the store about each object once, however many chunks
// of it are checked.
type objectStats struct {
	r    *repo.Repository
	mu   sync.Mutex
	seen map[repo.ChunkID]*objectStat
}

type objectStat struct {
	once    sync.Once
	size    int64
	missing bool
	err     error
}

func (o *objectStats) stat(ctx context.Context, id repo.ChunkID) (size int64, missing bool, err error) {
	o.mu.Lock()
	st := o.seen[id]
	if st == nil {
		st = &objectStat{}
		o.seen[id] = st
	}
	o.mu.Unlock()
	st.once.Do(func() {
		a, err := o.r.Store().Stat(ctx, repo.ChunkKey(id))
		switch {
		case errors.Is(err, blob.ErrNotFound):
			st.missing = true
		case err != nil:
			st.err = err
		default:
			st.size = a.Size
		}
	})
	return st.size, st.missing, st.err
}
