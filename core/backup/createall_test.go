package backup_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
)

// Graphs backed up together share one lease and one read of the
// repository's snapshots; a graph that fails does not stop the others, and
// each commits a complete snapshot.
func TestCreateAllBacksUpGraphsTogether(t *testing.T) {
	ctx := context.Background()
	r, store := newRepo(t, "pw")
	root := t.TempDir()
	var srcs []backup.Source
	for i, g := range []string{"a", "b", "c", "d"} {
		dir := filepath.Join(root, g)
		if err := fixture.Generate(dir, fixture.Spec{Docs: 3 + i, EmbeddingDim: 32, Seed: uint64(20 + i)}); err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, backup.Source{Graph: g, Dir: dir})
	}
	srcs = append(srcs[:2], append([]backup.Source{{Graph: "gone", Dir: filepath.Join(root, "gone")}}, srcs[2:]...)...)

	before, _ := blob.StatsOf(store)
	out := backup.CreateAll(ctx, r, srcs, backup.Options{Quiet: -1, Graphs: 2, Uploads: 3})
	after, _ := blob.StatsOf(store)
	if len(out) != len(srcs) {
		t.Fatalf("%d outcomes for %d graphs", len(out), len(srcs))
	}
	for i, o := range out {
		if o.Graph != srcs[i].Graph {
			t.Fatalf("outcome %d is graph %q, want %q (the order of the sources)", i, o.Graph, srcs[i].Graph)
		}
		if o.Graph == "gone" {
			if o.Err == nil {
				t.Fatal("a graph whose directory is missing was backed up")
			}
			continue
		}
		if o.Err != nil {
			t.Fatalf("graph %s: %v", o.Graph, o.Err)
		}
		dest := filepath.Join(t.TempDir(), o.Graph)
		if _, err := backup.Restore(ctx, r, o.Result.Manifest.Ref(), dest, backup.RestoreOptions{}); err != nil {
			t.Fatalf("restore %s: %v", o.Graph, err)
		}
		sameTree(t, srcs[i].Dir, dest)
	}
	// One lease taken and given back, one listing of the snapshots (and one
	// of the leases, one of running prunes), whatever the number of graphs.
	if got := after.Sub(before); got.Lists != 3 || got.Deletes != 1 {
		t.Fatalf("requests %+v: want 3 lists (leases, running prunes, snapshots) and 1 delete (the lease) for 5 graphs", got)
	}
	refs, err := r.ListSnapshots(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 4 {
		t.Fatalf("%d snapshots, want 4", len(refs))
	}
	// A second run of the same graphs finds every chunk known.
	out = backup.CreateAll(ctx, r, append(srcs[:2:2], srcs[3:]...), backup.Options{Quiet: -1})
	for _, o := range out {
		if o.Err != nil || o.Result.Manifest.Totals.StoredBytes != 0 {
			t.Fatalf("graph %s again: err %v, stored %d bytes, want nothing new", o.Graph, o.Err, o.Result.Manifest.Totals.StoredBytes)
		}
	}
}
