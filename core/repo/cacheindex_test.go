package repo_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers/local"
)

// newRepoWithCache is a new repository in memory, opened with a cache of
// its own.
func newRepoWithCache(t *testing.T) (*repo.Repository, blob.Store) {
	t.Helper()
	store := newStore(t)
	if _, err := repo.Init(context.Background(), store, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r, store
}

// Index keeps what it found on local disk and reads only the manifests new
// since: with the cached manifests gone and the kept index in place, one new
// snapshot costs at most one manifest read, not one per snapshot in the history. A
// forgotten snapshot's chunks leave the index; a damaged index is rebuilt.
func TestIndexReadsOnlyNewManifests(t *testing.T) {
	ctx := context.Background()
	r, store := newRepoWithCache(t)
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
	p := filepath.Join(r.Cache().Dir(), "index-v3.bin")
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

// Known lists the snapshots only when the kept index may name a deleted
// chunk: never checked, a sweep open, a sweep ended that its last check
// did not see, or that check older than the trust window. Add makes a new
// snapshot part of the index a Known without listing returns.
func TestKnownListsOnlyWhenItMust(t *testing.T) {
	ctx := context.Background()
	r, store := newRepoWithCache(t)
	save := func(i int) *repo.Manifest {
		var id repo.ChunkID
		copy(id[:], fmt.Sprintf("chunk-%04d", i))
		m := &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(time.Now()), Graph: "g", Time: time.Now(),
			Files: []repo.FileEntry{{Path: "f", Type: repo.TypeFile, Size: 10, Chunks: []repo.ChunkRef{{ID: id, Size: 10}}}}}
		if err := r.SaveManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := save(1)
	known := func(what string, log repo.SweepLog, wantList bool) *repo.Index {
		t.Helper()
		before, _ := blob.StatsOf(store)
		idx, err := r.Cache().Known(ctx, log)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := blob.StatsOf(store)
		if listed := after.Sub(before).Lists > 0; listed != wantList {
			t.Fatalf("%s: listed %v, want %v", what, listed, wantList)
		}
		return idx
	}
	now := func(ended ...string) repo.SweepLog { return repo.SweepLog{Read: time.Now(), Ended: ended} }

	known("never checked", now(), true)
	idx := known("checked, nothing since", now(), false)
	if len(idx.Snapshots) != 1 || idx.Snapshots[0].Key() != first.Ref().Key() {
		t.Fatalf("trusted index has %v, want %v", idx.Snapshots, first.Ref())
	}

	second := save(2) // as a backup does: commit, then Add
	r.Cache().Add(second)
	idx = known("a snapshot added", now(), false)
	if len(idx.Snapshots) != 2 || idx.Snapshots[1].Key() != second.Ref().Key() || !idx.Chunks.Has(second.Files[0].Chunks[0].ID) {
		t.Fatalf("after Add the index has %v, want both snapshots and their chunks", idx.Snapshots)
	}

	known("a sweep open", repo.SweepLog{Read: time.Now(), Open: true}, true)
	known("a sweep ended", now("20261206T000000Z-aaaaaaaaaaaa"), true)
	known("that sweep accounted for", now("20261206T000000Z-aaaaaaaaaaaa"), false)
	known("its record expired", now(), false)
	known("another ended", now("20261206T010000Z-bbbbbbbbbbbb"), true)

	// A check whose log was read two hours ago is past the trust window.
	old := repo.SweepLog{Read: time.Now().Add(-2 * time.Hour), Ended: []string{"20261206T020000Z-cccccccccccc"}}
	known("checked with an old log", old, true)
	known("last check too old", now("20261206T020000Z-cccccccccccc"), true)
	known("checked again", now("20261206T020000Z-cccccccccccc"), false)

	// A listing without a log (stats, replication) keeps the check, unless
	// it rebuilt: a forgotten snapshot.
	if _, err := r.Cache().Index(ctx); err != nil {
		t.Fatal(err)
	}
	known("after a listing that added nothing", now(), false)
	if err := r.DeleteSnapshot(ctx, first.Ref()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Cache().Index(ctx); err != nil {
		t.Fatal(err)
	}
	known("after a rebuild", now(), true)
}

// BenchmarkKnownTrusted is what a backup pays for its index when it need
// not list: a kept index of 10,000 snapshots loaded, their refs made, one
// snapshot added.
func BenchmarkKnownTrusted(b *testing.B) {
	ctx := context.Background()
	store, err := local.Open(ctx, fmt.Sprintf("mem://bench-known-%d", seq.Add(1)), local.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := repo.Init(ctx, store, repo.InitOptions{}); err != nil {
		b.Fatal(err)
	}
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now().Add(-30 * 24 * time.Hour)
	var ms []*repo.Manifest
	for i := range 10000 {
		var id repo.ChunkID
		copy(id[:], fmt.Sprintf("chunk-%06d", i%500))
		at := t0.Add(time.Duration(i) * time.Minute)
		ms = append(ms, &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(at), Graph: fmt.Sprintf("g%02d", i%10), Time: at,
			Files: []repo.FileEntry{{Path: "f", Type: repo.TypeFile, Size: 10, Chunks: []repo.ChunkRef{{ID: id, Size: 10}}}}})
	}
	log := repo.SweepLog{Read: time.Now()}
	if _, err := r.Cache().Known(ctx, log); err != nil {
		b.Fatal(err)
	}
	r.Cache().Add(ms...)
	b.ResetTimer()
	for range b.N {
		idx, err := r.Cache().Known(ctx, log)
		if err != nil {
			b.Fatal(err)
		}
		if len(idx.Snapshots) < 10000 {
			b.Fatalf("%d snapshots", len(idx.Snapshots))
		}
		r.Cache().Add(ms[len(ms)-1])
	}
}

// Add appends to a journal beside the kept index instead of rewriting it;
// a torn append loses only what it was adding; once the journal passes a
// quarter of the index (and 256 KiB) it is folded in.
func TestAddJournalsAndFolds(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepoWithCache(t)
	log := repo.SweepLog{Read: time.Now()}
	if _, err := r.Cache().Known(ctx, log); err != nil {
		t.Fatal(err)
	}
	index, journal := filepath.Join(r.Cache().Dir(), "index-v3.bin"), filepath.Join(r.Cache().Dir(), "index-v3.add")
	before, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	manifest := func(i, chunks int) *repo.Manifest {
		at := t0.Add(time.Duration(i) * time.Second)
		m := &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(at), Graph: "g", Time: at, Files: []repo.FileEntry{{Path: "f", Type: repo.TypeFile}}}
		for c := range chunks {
			var id repo.ChunkID
			copy(id[:], fmt.Sprintf("chunk-%04d-%04d", i, c))
			m.Files[0].Chunks = append(m.Files[0].Chunks, repo.ChunkRef{ID: id, Size: 10})
		}
		return m
	}
	has := func(what string, want int) {
		t.Helper()
		idx, err := r.Cache().Known(ctx, log)
		if err != nil {
			t.Fatal(err)
		}
		if len(idx.Snapshots) != want || idx.Chunks.Len() != want*3 {
			t.Fatalf("%s: %d snapshots, %d chunks; want %d, %d", what, len(idx.Snapshots), idx.Chunks.Len(), want, want*3)
		}
	}
	r.Cache().Add(manifest(0, 3), manifest(1, 3))
	r.Cache().Add(manifest(2, 3))
	if after, _ := os.ReadFile(index); !bytes.Equal(after, before) {
		t.Fatal("Add rewrote the index")
	}
	has("three added", 3)

	// A torn last append: the two before it stay.
	data, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journal, data[:len(data)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	has("the last append torn", 2)
	r.Cache().Add(manifest(2, 3))
	has("added again after the torn append", 3)

	// Big snapshots: the journal passes 256 KiB and is folded in.
	for i := 3; i < 9; i++ {
		m := manifest(i, 3)
		for c := range 2000 {
			var id repo.ChunkID
			copy(id[:], fmt.Sprintf("chunk-%04d-%04d", i, 3+c))
			m.Files = append(m.Files, repo.FileEntry{Path: fmt.Sprintf("f%d", c), Type: repo.TypeFile, Chunks: []repo.ChunkRef{{ID: id, Size: 10}}})
		}
		r.Cache().Add(m)
	}
	folded, err := os.Stat(index)
	if err != nil || folded.Size() < 4*2003*36 {
		t.Fatalf("index after %d KiB of adds: %v, %v; want them folded in", 6*2003*36>>10, folded, err)
	}
	if info, err := os.Stat(journal); err == nil && info.Size() >= 256<<10 {
		t.Fatalf("journal of %d bytes after folding", info.Size())
	}
	idx, err := r.Cache().Known(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Snapshots) != 9 || idx.Chunks.Len() != 3*3+6*2003 {
		t.Fatalf("after folding: %d snapshots, %d chunks", len(idx.Snapshots), idx.Chunks.Len())
	}
}
