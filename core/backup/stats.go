package backup

import (
	"context"
	"fmt"
	"sort"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// GraphStats summarise one graph's snapshots.
type GraphStats struct {
	Graph     string `json:"graph"`
	Snapshots int    `json:"snapshots"`
	Latest    string `json:"latest"`
	// LatestSize is the size of the newest snapshot's files.
	LatestSize int64 `json:"latest_size_bytes"`
	Flagged    int   `json:"flagged_snapshots"`
	// AddedBytes is the plaintext a snapshot stored first, on average over
	// the graph's last ten snapshots but its oldest kept one: how much a
	// backup of it adds. Null while the graph keeps one snapshot (nothing
	// to average).
	AddedBytes *int64 `json:"added_bytes_per_snapshot"`
	// LogicalBytes adds up the file sizes of the graph's snapshots;
	// StoredBytes is what the distinct chunks they name take in storage
	// (compressed, encrypted; a chunk two graphs share counts for both:
	// each graph's footprint), whichever backup stored them, so it stays
	// true after older snapshots are forgotten; DedupRatio is the one over
	// the other. UniqueBytes is those chunks' plaintext.
	LogicalBytes int64   `json:"logical_bytes"`
	StoredBytes  int64   `json:"stored_bytes"`
	UniqueBytes  int64   `json:"unique_bytes"`
	DedupRatio   float64 `json:"dedup_ratio"`
	recent       []int64
	refs         []repo.SnapshotRef
}

// RepoStats summarise a repository.
type RepoStats struct {
	Location  string       `json:"location"`
	ID        string       `json:"id"`
	Encrypted bool         `json:"encrypted"`
	Snapshots int          `json:"snapshots"`
	Graphs    []GraphStats `json:"graphs"`
	// LogicalBytes adds up the file sizes of every snapshot: what storing
	// each snapshot whole would take.
	LogicalBytes int64 `json:"logical_bytes"`
	// UniqueChunks and UniqueBytes count the distinct chunks named (plaintext).
	UniqueChunks int   `json:"unique_chunks"`
	UniqueBytes  int64 `json:"unique_bytes"`
	// Objects counts the objects under chunks/ holding them: packs of
	// chunks, and chunks stored on their own (format 1).
	Objects int `json:"objects"`
	// StoredChunks and StoredBytes are what chunks/ holds (objects and
	// their bytes), from a listing (only with list=true; null otherwise:
	// not measured).
	StoredChunks *int    `json:"stored_chunks"`
	StoredBytes  *int64  `json:"stored_bytes"`
	DedupRatio   float64 `json:"dedup_ratio"`
}

// Stats reads every manifest (through the cache) and, with list, lists
// chunks/ for the stored size.
func Stats(ctx context.Context, r *repo.Repository, list bool) (*RepoStats, error) {
	idx, err := r.Cache().Index(ctx)
	if err != nil {
		return nil, err
	}
	s := &RepoStats{Location: r.Store().Location(), ID: r.ID(), Encrypted: r.Encrypted(), Snapshots: len(idx.Snapshots),
		UniqueChunks: idx.Chunks.Len()}
	for _, size := range idx.Chunks.All() {
		s.UniqueBytes += int64(size)
	}
	for range idx.Chunks.Objects() {
		s.Objects++
	}
	graphs := map[string]*GraphStats{}
	infos, err := r.Cache().Infos(ctx, idx.Snapshots)
	if err != nil {
		return nil, err
	}
	for _, info := range infos {
		sum, tot := info.Summary, info.Totals
		g := graphs[sum.Graph]
		if g == nil {
			g = &GraphStats{Graph: sum.Graph}
			graphs[sum.Graph] = g
		}
		g.Snapshots++
		g.refs = append(g.refs, repo.SnapshotRef{Graph: sum.Graph, ID: sum.ID, Time: sum.Time})
		g.Latest, g.LatestSize = sum.ID, tot.SizeBytes // refs are oldest first
		// The first snapshot stored the whole graph: not a backup's usual addition.
		if g.Snapshots > 1 {
			if g.recent = append(g.recent, tot.AddedBytes); len(g.recent) > 10 {
				g.recent = g.recent[1:]
			}
		}
		if !sum.LightRAG.Valid() {
			g.Flagged++
		}
		g.LogicalBytes += tot.SizeBytes
		s.LogicalBytes += tot.SizeBytes
	}
	for _, g := range graphs {
		var sum int64
		for _, b := range g.recent {
			sum += b
		}
		if len(g.recent) > 0 {
			avg := sum / int64(len(g.recent))
			g.AddedBytes = &avg
		}
		if err := g.footprint(ctx, r); err != nil {
			return nil, err
		}
		g.recent, g.refs = nil, nil
		if g.StoredBytes > 0 {
			g.DedupRatio = float64(g.LogicalBytes) / float64(g.StoredBytes)
		}
		s.Graphs = append(s.Graphs, *g)
	}
	sort.Slice(s.Graphs, func(i, j int) bool { return s.Graphs[i].Graph < s.Graphs[j].Graph })
	if list {
		var chunks int
		var bytes int64
		err := blob.Walk(ctx, r.Store(), repo.ChunkPrefix, func(o blob.Object) error {
			chunks++
			bytes += o.Size
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list chunks: %w", err)
		}
		s.StoredChunks, s.StoredBytes = &chunks, &bytes
		if bytes > 0 {
			s.DedupRatio = float64(s.LogicalBytes) / float64(bytes)
		}
	} else if s.UniqueBytes > 0 {
		s.DedupRatio = float64(s.LogicalBytes) / float64(s.UniqueBytes)
	}
	return s, nil
}

// footprint sums what the distinct chunks g's snapshots name take: their
// stored length in packs (a chunk stored alone, in a format 1 repository,
// counts its plaintext: its object's size is known only from a listing).
// One graph's chunks are held at a time, in a ChunkSet (48 bytes each).
func (g *GraphStats) footprint(ctx context.Context, r *repo.Repository) error {
	set := &repo.ChunkSet{}
	for _, ref := range g.refs {
		m, err := r.Cache().Manifest(ctx, ref)
		if err != nil {
			return err
		}
		set.AddManifest(m)
		set.Seal()
	}
	var last repo.ChunkID
	first := true
	for c := range set.Refs() {
		if !first && c.ID == last {
			continue // the same chunk in another pack
		}
		first, last = false, c.ID
		g.UniqueBytes += int64(c.Size)
		if c.Length > 0 {
			g.StoredBytes += int64(c.Length)
		} else {
			g.StoredBytes += int64(c.Size)
		}
	}
	return nil
}
