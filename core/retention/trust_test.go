package retention_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
)

// listings records the prefixes a store was listed under.
type listings struct {
	blob.Store
	mu       sync.Mutex
	prefixes []string
}

func (l *listings) List(ctx context.Context, opts blob.ListOptions) ([]blob.Object, string, error) {
	l.mu.Lock()
	l.prefixes = append(l.prefixes, opts.Prefix)
	l.mu.Unlock()
	return l.Store.List(ctx, opts)
}

// listedSnapshots reports whether the store was listed under snapshots/
// since the last call.
func (l *listings) listedSnapshots() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	listed := false
	for _, p := range l.prefixes {
		listed = listed || strings.HasPrefix(p, repo.SnapshotPrefix)
	}
	l.prefixes = nil
	return listed
}

// A backup trusts the index it kept, listing no snapshot, until a prune
// (on another host, with its own cache) has ended or died: then it lists,
// finds the forgotten parent gone and stores again what the prune deleted.
// Trusting the kept index there would name deleted chunks: the unchanged
// file's entry would come from the forgotten parent.
func TestBackupTrustsItsIndexUntilAPruneEnds(t *testing.T) {
	ctx := context.Background()
	_, mem := sweepRepo(t)
	store := &listings{Store: mem}
	open := func() *repo.Repository {
		r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	here, elsewhere := open(), open()
	content := randomBytes(300<<10, 7)
	dir := graphDir(t, content)

	first, err := quickBackup(t, here, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	store.listedSnapshots()
	second, err := quickBackup(t, here, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if store.listedSnapshots() {
		t.Fatal("a backup with no prune since the last listed the snapshots")
	}
	if second.Parent != first.ID {
		t.Fatalf("parent %q, want the last backup %s (the index keeps its own snapshots)", second.Parent, first.ID)
	}

	// Elsewhere: forget both, prune their chunks.
	for _, m := range []*repo.Manifest{first, second} {
		if err := elsewhere.DeleteSnapshot(ctx, m.Ref()); err != nil {
			t.Fatal(err)
		}
	}
	res, err := retention.Prune(ctx, elsewhere, retention.PruneOptions{Lease: quickLeases})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted == 0 {
		t.Fatalf("prune = %+v: want the forgotten snapshots' chunks deleted", res)
	}
	store.listedSnapshots()
	third, err := quickBackup(t, here, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !store.listedSnapshots() {
		t.Fatal("the first backup after a prune ended did not list the snapshots")
	}
	if third.Parent != "" {
		t.Fatalf("parent %q: a forgotten snapshot", third.Parent)
	}
	allChunksThere(t, mem, third)
	restoresTo(t, here, third, content)

	if _, err := quickBackup(t, here, "g", dir, nil); err != nil {
		t.Fatal(err)
	}
	if store.listedSnapshots() {
		t.Fatal("the second backup after the prune listed the snapshots again")
	}
}

// A prune killed after deleting leaves no ended record: every backup lists
// until the next prune ends the dead sweep; then they trust again.
func TestBackupListsWhileADeadSweepIsOpen(t *testing.T) {
	ctx := context.Background()
	_, mem := sweepRepo(t)
	store := &listings{Store: mem}
	here, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	content := randomBytes(300<<10, 8)
	dir := graphDir(t, content)
	first, err := quickBackup(t, here, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The killed prune: it condemned the forgotten snapshot's chunks and
	// deleted one before dying.
	if err := here.DeleteSnapshot(ctx, first.Ref()); err != nil {
		t.Fatal(err)
	}
	dead, err := here.AcquireLease(ctx, repo.Prune, "prune", quickLeases)
	if err != nil {
		t.Fatal(err)
	}
	var ids []repo.ChunkID
	for id := range first.Objects() {
		ids = append(ids, id)
	}
	sweep, err := here.PublishSweep(ctx, dead, ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := here.PublishSweepWaits(ctx, sweep, nil); err != nil {
		t.Fatal(err)
	}
	if err := mem.Delete(ctx, repo.ChunkKey(ids[0])); err != nil {
		t.Fatal(err)
	}
	_ = dead.Release() // as kill -9 plus expiry would

	store.listedSnapshots()
	for i := range 2 {
		m, err := quickBackup(t, here, "g", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !store.listedSnapshots() {
			t.Fatalf("backup %d with a dead sweep open did not list the snapshots", i+1)
		}
		allChunksThere(t, mem, m)
	}
	res, err := retention.Prune(ctx, here, retention.PruneOptions{Lease: quickLeases})
	if err != nil {
		t.Fatal(err)
	}
	if res.DeadSweeps != 1 {
		t.Fatalf("prune = %+v: want the dead sweep ended", res)
	}
	for i, want := range []bool{true, false} {
		m, err := quickBackup(t, here, "g", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := store.listedSnapshots(); got != want {
			t.Fatalf("backup %d after the prune: listed snapshots %v, want %v", i+1, got, want)
		}
		allChunksThere(t, mem, m)
		restoresTo(t, here, m, content)
	}
}

// Prune removes the ended records older than repo.SweepLogKept, keeps the
// recent ones and any it cannot date.
func TestPruneKeepsEndedRecordsForAWeek(t *testing.T) {
	ctx := context.Background()
	r, store := sweepRepo(t)
	old := repo.SweepPrefix + "20200101T000000Z-0123456789ab/ended"
	recent := repo.SweepPrefix + "20991231T000000Z-0123456789ab/ended"
	undated := repo.SweepPrefix + "manual/ended"
	for _, key := range []string{old, recent, undated} {
		if err := blob.PutBytes(ctx, store, key, []byte("x\n"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := retention.Prune(ctx, r, retention.PruneOptions{Lease: quickLeases}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(keysUnder(t, store, repo.SweepPrefix), " ")
	if want := recent + " " + undated; got != want {
		t.Fatalf("records after prune: %s, want %s", got, want)
	}
}

// Forgetting every snapshot of a graph leaves them in the trusted index
// (no prune ran): the next backup has no parent and succeeds.
func TestBackupAfterEverySnapshotWasForgotten(t *testing.T) {
	ctx := context.Background()
	r, store := sweepRepo(t)
	content := randomBytes(200<<10, 9)
	dir := graphDir(t, content)
	var made []*repo.Manifest
	for range 2 {
		m, err := quickBackup(t, r, "g", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, m)
	}
	for _, m := range made {
		if err := retention.DeleteSnapshot(ctx, r, m.Ref()); err != nil {
			t.Fatal(err)
		}
	}
	m, err := quickBackup(t, r, "g", dir, nil)
	if err != nil {
		t.Fatalf("backup after forgetting every snapshot: %v", err)
	}
	if m.Parent != "" {
		t.Fatalf("parent %q: a forgotten snapshot", m.Parent)
	}
	allChunksThere(t, store, m)
	restoresTo(t, r, m, content)
}
