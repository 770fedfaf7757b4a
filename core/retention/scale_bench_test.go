package retention_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/providers/local"
)

// manyChunks lists a synthetic chunks/ of ids (sorted) and counts deletes
// instead of storing a million objects; everything else goes to Store.
type manyChunks struct {
	blob.Store
	ids     []repo.ChunkID
	deleted atomic.Int64
}

func (s *manyChunks) List(ctx context.Context, opts blob.ListOptions) ([]blob.Object, string, error) {
	if opts.Prefix != repo.ChunkPrefix {
		return s.Store.List(ctx, opts)
	}
	from, _ := strconv.Atoi(opts.Token)
	n := opts.PageSize
	if n <= 0 {
		n = blob.DefaultPageSize
	}
	var out []blob.Object
	old := time.Now().Add(-time.Hour)
	for i := from; i < len(s.ids) && len(out) < n; i++ {
		out = append(out, blob.Object{Key: repo.ChunkKey(s.ids[i]), Size: 1 << 20, ModTime: old})
	}
	next := ""
	if from+len(out) < len(s.ids) {
		next = strconv.Itoa(from + len(out))
	}
	return out, next, nil
}

func (s *manyChunks) Delete(ctx context.Context, key string) error {
	if strings.HasPrefix(key, repo.ChunkPrefix) {
		s.deleted.Add(1)
		return nil
	}
	return s.Store.Delete(ctx, key)
}

// BenchmarkPruneMillionChunks prunes a repository of 1,000,000 chunks, 90%
// named by 100 snapshots, and reports the peak of the heap it grew
// (target: under 256 MiB).
func BenchmarkPruneMillionChunks(b *testing.B) {
	const chunks, snapshots, named = 1_000_000, 100, 900_000
	ctx := context.Background()
	mem, err := local.Open(ctx, fmt.Sprintf("mem://scale-%d", seq.Add(1)), local.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := repo.Init(ctx, mem, repo.InitOptions{}); err != nil {
		b.Fatal(err)
	}
	store := &manyChunks{Store: mem, ids: make([]repo.ChunkID, chunks)}
	for i := range store.ids {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(i))
		store.ids[i] = sha256.Sum256(n[:])
	}
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	per := named / snapshots
	for s := 0; s < snapshots; s++ {
		var files []repo.FileEntry
		for f := 0; f < 10; f++ {
			var refs []repo.ChunkRef
			for _, id := range store.ids[s*per+f*per/10 : s*per+(f+1)*per/10] {
				refs = append(refs, repo.ChunkRef{ID: id, Size: 1 << 20})
			}
			files = append(files, repo.FileEntry{Path: fmt.Sprintf("f%d", f), Type: repo.TypeFile, Chunks: refs})
		}
		m := &repo.Manifest{Version: repo.FormatVersion, ID: repo.NewSnapshotID(time.Now().Add(time.Duration(s) * time.Second)),
			Graph: "g", Time: time.Now(), Files: files}
		if err := r.SaveManifest(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	slices.SortFunc(store.ids, func(a, b repo.ChunkID) int { return bytes.Compare(a[:], b[:]) })

	b.ResetTimer()
	var peak uint64
	for b.Loop() {
		runtime.GC()
		base := heapObjects()
		stop := make(chan struct{})
		sampled := make(chan uint64)
		go func() {
			var top uint64
			for {
				if h := heapObjects(); h > base && h-base > top {
					top = h - base
				}
				select {
				case <-stop:
					sampled <- top
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		store.deleted.Store(0)
		res, err := retention.Prune(ctx, r, retention.PruneOptions{Lease: quickLeases})
		close(stop)
		peak = max(peak, <-sampled)
		if err != nil {
			b.Fatal(err)
		}
		if res.Referenced != named || res.Deleted != chunks-named || store.deleted.Load() != int64(chunks-named) {
			b.Fatalf("prune = %+v, %d deletes", res, store.deleted.Load())
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
