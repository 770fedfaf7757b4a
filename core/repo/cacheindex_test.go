package repo_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Index keeps what it found on local disk and reads only the manifests new
// since: with the cached manifests gone and the kept index in place, one new
// snapshot costs at most one manifest read, not one per snapshot in the history. A
// forgotten snapshot's chunks leave the index; a damaged index is rebuilt.
func TestIndexReadsOnlyNewManifests(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	if _, err := repo.Init(ctx, store, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	want := map[repo.ChunkID]int{}
	save := func(i int) *repo.Manifest {
		var id repo.ChunkID
		copy(id[:], fmt.Sprintf("chunk-%04d", i))
		m := &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(time.Now()), Graph: "g", Time: time.Now(),
			Files: []repo.FileEntry{{Path: "f", Type: repo.TypeFile, Size: int64(100 + i), Chunks: []repo.ChunkRef{{ID: id, Size: 100 + i}}}}}
		if err := r.SaveManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
		want[id] = 100 + i
		return m
	}
	var ms []*repo.Manifest
	for i := range 20 {
		ms = append(ms, save(i))
	}
	check := func(what string) {
		t.Helper()
		idx, err := r.Cache().Index(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(maps.Collect(idx.Chunks.All()), want) {
			t.Fatalf("%s: index names %d chunks, want %d", what, idx.Chunks.Len(), len(want))
		}
	}
	check("first index")

	// Drop every cached manifest: only the kept index is left.
	if err := os.RemoveAll(filepath.Join(r.Cache().Dir(), "snapshots")); err != nil {
		t.Fatal(err)
	}
	save(20)
	before, _ := blob.StatsOf(store)
	check("one new snapshot")
	after, _ := blob.StatsOf(store)
	if got := after.Sub(before).Gets; got > 1 {
		t.Fatalf("indexing one new snapshot of 21 read %d objects, want at most 1", got)
	}

	// Forget one: its chunk leaves the index.
	if err := r.DeleteSnapshot(ctx, ms[3].Ref()); err != nil {
		t.Fatal(err)
	}
	for id := range ms[3].ChunkIDs() {
		delete(want, id)
	}
	check("after a forget")

	// A damaged index is rebuilt from the manifests.
	p := filepath.Join(r.Cache().Dir(), "index-v1.bin")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	check("damaged index")
	// A killed write's temporary file goes once it is old; a fresh one
	// (another process writing now) stays.
	stale, fresh := filepath.Join(r.Cache().Dir(), ".tmp-index-1"), filepath.Join(r.Cache().Dir(), ".tmp-index-2")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(stale, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := r.Cache().Rebuild(ctx)
	if err != nil || !maps.Equal(maps.Collect(rebuilt.Chunks.All()), want) {
		t.Fatalf("Rebuild: %v, %d chunks, want %d", err, rebuilt.Chunks.Len(), len(want))
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("a killed write's index file is left: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a write in progress lost its file: %v", err)
	}
}
