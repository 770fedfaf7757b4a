package repo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Infos keeps the list entries of the snapshots it listed: listing them
// again reads no manifest, even with every cached manifest gone; a new
// snapshot costs one manifest read; a forgotten one leaves the list; a
// damaged file is rebuilt from the manifests.
func TestInfosReadOnlyNewManifests(t *testing.T) {
	ctx := context.Background()
	r, store := newRepoWithCache(t)
	var want []repo.SnapshotInfo
	save := func(graph string, i int) *repo.Manifest {
		var id repo.ChunkID
		copy(id[:], fmt.Sprintf("chunk-%04d", i))
		m := &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(time.Now().Add(time.Duration(i) * time.Second)), Graph: graph,
			Time: time.Now().UTC().Truncate(time.Millisecond), Totals: repo.Totals{Files: 1, SizeBytes: int64(100 + i), AddedBytes: int64(i)},
			Files: []repo.FileEntry{{Path: "f", Type: repo.TypeFile, Size: int64(100 + i), Chunks: []repo.ChunkRef{{ID: id, Size: 100 + i}}}}}
		if err := r.SaveManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m.Info())
		return m
	}
	list := func(what string, graph string) []repo.SnapshotInfo {
		t.Helper()
		refs, err := r.ListSnapshots(ctx, graph)
		if err != nil {
			t.Fatal(err)
		}
		infos, err := r.Cache().Infos(ctx, refs)
		if err != nil {
			t.Fatal(err)
		}
		return infos
	}
	var ms []*repo.Manifest
	for i := range 20 {
		ms = append(ms, save("g", i))
	}
	other := save("h", 99)
	want = want[:20]
	if got := list("first", "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("first listing:\n%+v\nwant\n%+v", got, want)
	}

	// Every cached manifest gone: the kept list still answers.
	if err := os.RemoveAll(filepath.Join(r.Cache().Dir(), "snapshots")); err != nil {
		t.Fatal(err)
	}
	before, _ := blob.StatsOf(store)
	if got := list("again", "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("second listing differs:\n%+v", got)
	}
	after, _ := blob.StatsOf(store)
	if got := after.Sub(before).Gets; got != 0 {
		t.Fatalf("listing 20 snapshots again read %d objects, want none", got)
	}
	save("g", 20)
	if got := list("one new", "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("listing with one new snapshot differs:\n%+v", got)
	}
	again, _ := blob.StatsOf(store)
	if got := again.Sub(after).Gets; got > 1 {
		t.Fatalf("listing 21 snapshots, one of them new, read %d objects, want at most 1", got)
	}

	// Forgotten: it leaves the list; the other graph's entry stays.
	if err := r.DeleteSnapshot(ctx, ms[3].Ref()); err != nil {
		t.Fatal(err)
	}
	want = append(want[:3:3], want[4:]...)
	if got := list("after a forget", "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a forget:\n%+v", got)
	}
	if got := list("other graph", "h"); len(got) != 1 || !reflect.DeepEqual(got[0], other.Info()) {
		t.Fatalf("the other graph's entry: %+v", got)
	}

	// Damaged: rebuilt from the manifests.
	if err := os.WriteFile(filepath.Join(r.Cache().Dir(), "infos-v3.json"), []byte(`{"g/x": tru`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := list("damaged", "g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after damage:\n%+v", got)
	}
}
