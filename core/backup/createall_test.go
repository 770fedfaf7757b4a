package backup_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers/local"
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

// holdCommits holds the manifest writes of one graph until released (or
// ten seconds have passed, which it records).
type holdCommits struct {
	blob.Store
	graph    string
	release  chan struct{}
	timedOut atomic.Bool
}

func (h *holdCommits) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	if strings.HasPrefix(key, repo.SnapshotPrefix+h.graph+"/") {
		select {
		case <-h.release:
		case <-time.After(10 * time.Second):
			h.timedOut.Store(true)
		}
	}
	return h.Store.Put(ctx, key, r, opts)
}

// A graph takes its turn only while its files are read: its commit (and
// the wait for its last uploads), a round trip or two on a remote store,
// overlaps the next graph's reading. Holding the turn to the end made a
// no-change backup of 100 graphs at 30 ms take 1.6 s instead of 0.6 s.
func TestCreateAllReadsTheNextGraphWhileOneCommits(t *testing.T) {
	ctx := context.Background()
	mem, err := local.Open(ctx, fmt.Sprintf("mem://backup-test-%d", seq.Add(1)), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &holdCommits{Store: mem, graph: "a", release: make(chan struct{})}
	r, err := repo.Init(ctx, store, repo.InitOptions{AvgChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var srcs []backup.Source
	for i, g := range []string{"a", "b"} {
		dir := filepath.Join(root, g)
		if err := fixture.Generate(dir, fixture.Spec{Docs: 2, EmbeddingDim: 32, Seed: uint64(40 + i)}); err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, backup.Source{Graph: g, Dir: dir})
	}
	var once sync.Once
	defer backup.SetAfterReadHook(func(path string) {
		if strings.HasPrefix(path, srcs[1].Dir+string(filepath.Separator)) {
			once.Do(func() { close(store.release) })
		}
	})()
	for _, o := range backup.CreateAll(ctx, r, srcs, backup.Options{Quiet: -1, Graphs: 1}) {
		if o.Err != nil {
			t.Fatalf("graph %s: %v", o.Graph, o.Err)
		}
	}
	if store.timedOut.Load() {
		t.Fatal("graph b was read only after graph a had committed: a held its turn while committing")
	}
}
