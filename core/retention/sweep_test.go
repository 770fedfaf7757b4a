package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/providers/local"
)

// quickLeases make waits in these tests a matter of milliseconds.
var quickLeases = repo.LeaseOptions{TTL: 5 * time.Second, Skew: time.Millisecond, Wait: 10 * time.Second, Poll: 10 * time.Millisecond}

func sweepRepo(t *testing.T) (*repo.Repository, blob.Store) {
	t.Helper()
	return sweepRepoPacking(t, 0)
}

// sweepRepoPacking is sweepRepo with a pack size (-1: format 1, no packs).
func sweepRepoPacking(t *testing.T, packSize int) (*repo.Repository, blob.Store) {
	t.Helper()
	ctx := context.Background()
	store, err := local.Open(ctx, fmt.Sprintf("mem://sweep-%d", seq.Add(1)), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, store, repo.InitOptions{AvgChunkSize: 64 << 10, PackSize: packSize})
	if err != nil {
		t.Fatal(err)
	}
	return r, store
}

// graphDir writes a directory whose one file holds content.
func graphDir(t *testing.T, content []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kv_store_full_docs.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func quickBackup(t *testing.T, r *repo.Repository, graph, dir string, progress func(backup.Progress)) (*repo.Manifest, error) {
	t.Helper()
	res, err := backup.Create(context.Background(), r, backup.Source{Graph: graph, Dir: dir},
		backup.Options{Quiet: -1, Lease: quickLeases, Progress: progress})
	if err != nil {
		return nil, err
	}
	return res.Manifest, nil
}

// pruneAsync runs a prune; its error comes first, then its result.
func pruneAsync(r *repo.Repository) (<-chan *retention.PruneResult, <-chan error) {
	result, pruned := make(chan *retention.PruneResult, 1), make(chan error, 1)
	go func() {
		res, err := retention.Prune(context.Background(), r, retention.PruneOptions{Lease: quickLeases})
		pruned <- err
		result <- res
	}()
	return result, pruned
}

// sweepWaiting waits until a prune has published whom it waits for.
func sweepWaiting(t *testing.T, store blob.Store, prune <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, key := range keysUnder(t, store, repo.SweepPrefix) {
			if strings.HasSuffix(key, "/waits") {
				return
			}
		}
		select {
		case err := <-prune:
			t.Fatalf("prune ended (%v) without waiting", err)
		default:
		}
	}
	t.Fatal("prune published nothing within 10s")
}

func keysUnder(t *testing.T, store blob.Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := blob.Walk(context.Background(), store, prefix, func(o blob.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// heldBackup is a backup of graph "g" stopped at its first progress
// report (it has its lease and its index) until finish.
type heldBackup struct {
	release chan struct{}
	done    chan heldOutcome
}

type heldOutcome struct {
	m   *repo.Manifest
	err error
}

// startHeldBackup starts a backup of dir and returns once it is reading.
func startHeldBackup(t *testing.T, r *repo.Repository, dir string) *heldBackup {
	t.Helper()
	h := &heldBackup{release: make(chan struct{}), done: make(chan heldOutcome, 1)}
	reading := make(chan struct{})
	var once bool
	go func() {
		m, err := quickBackup(t, r, "g", dir, func(backup.Progress) {
			if !once {
				once = true
				close(reading)
				<-h.release
			}
		})
		h.done <- heldOutcome{m, err}
	}()
	<-reading
	return h
}

// finish lets the backup go on and returns its snapshot.
func (h *heldBackup) finish(t *testing.T) *repo.Manifest {
	t.Helper()
	close(h.release)
	out := <-h.done
	if out.err != nil {
		t.Fatal(out.err)
	}
	return out.m
}

func allChunksThere(t *testing.T, store blob.Store, m *repo.Manifest) {
	t.Helper()
	for id := range m.Objects() {
		if ok, err := blob.Exists(context.Background(), store, repo.ChunkKey(id)); err != nil || !ok {
			t.Fatalf("snapshot %s names object %s, which is gone (%v)", m.ID, repo.ChunkKey(id), err)
		}
	}
}

func restoresTo(t *testing.T, r *repo.Repository, m *repo.Manifest, content []byte) {
	t.Helper()
	to := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(context.Background(), r, m.Ref(), to, backup.RestoreOptions{}); err != nil {
		t.Fatalf("restore %s: %v", m.ID, err)
	}
	got, err := os.ReadFile(filepath.Join(to, "kv_store_full_docs.bin"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("restored content differs (%v)", err)
	}
}

// A backup that began before the prune read, in its index, chunks of a
// snapshot forgotten since: the prune must wait for it and keep what its
// new snapshot names.
func TestPruneWaitsForEarlierBackup(t *testing.T) {
	ctx := context.Background()
	r, store := sweepRepo(t)
	content := randomBytes(600<<10, 1)
	dir := graphDir(t, content)
	first, err := quickBackup(t, r, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the chunks are older than the next lease
	// Same bytes, new mtime: read again, every chunk known from the index.
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(filepath.Join(dir, "kv_store_full_docs.bin"), later, later); err != nil {
		t.Fatal(err)
	}
	second := startHeldBackup(t, r, dir)
	if err := retention.DeleteSnapshot(ctx, r, first.Ref()); err != nil {
		t.Fatal(err)
	}
	result, pruned := pruneAsync(r)
	sweepWaiting(t, store, pruned)
	out := second.finish(t)
	if err := <-pruned; err != nil {
		t.Fatal(err)
	}
	res := <-result
	if res.Deleted != 0 || res.Rescued == 0 {
		t.Fatalf("prune = %+v: want every condemned chunk rescued by the backup that committed meanwhile", res)
	}
	allChunksThere(t, store, out)
	restoresTo(t, r, out, content)
	onlyEndedRecords(t, store, 1)
}

// A backup that begins while a prune is deleting must not rely on the
// chunks the prune condemned, even when they are still stored. Without
// packs a chunk is stored under its id, which the prune may delete: the
// backup waits for the prune and stores them again. With packs the chunks
// go into a new pack, which no prune condemned: the backup does not wait.
// Either way its snapshot never names what the prune deletes.
func TestBackupDuringPruneStoresCondemnedChunksAgain(t *testing.T) {
	for _, c := range []struct {
		name     string
		packSize int
		waits    bool
	}{{"format 1", -1, true}, {"packs", 0, false}} {
		t.Run(c.name, func(t *testing.T) { backupDuringPrune(t, c.packSize, c.waits) })
	}
}

func backupDuringPrune(t *testing.T, packSize int, waits bool) {
	ctx := context.Background()
	r, store := sweepRepoPacking(t, packSize)
	content := randomBytes(600<<10, 2)
	first, err := quickBackup(t, r, "g", graphDir(t, content), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := retention.DeleteSnapshot(ctx, r, first.Ref()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	// A long backup, running before the prune, holds the prune in its wait.
	long, err := r.AcquireLease(ctx, repo.Shared, "long backup", quickLeases)
	if err != nil {
		t.Fatal(err)
	}
	result, pruned := pruneAsync(r)
	sweepWaiting(t, store, pruned)

	type outcome struct {
		m   *repo.Manifest
		err error
	}
	again := make(chan outcome, 1)
	go func() {
		m, err := quickBackup(t, r, "g2", graphDir(t, content), nil)
		again <- outcome{m, err}
	}()
	var out outcome
	select {
	case out = <-again:
		if waits {
			t.Fatalf("the backup committed (%v) while the prune it must wait for still ran", out.err)
		}
	case <-time.After(300 * time.Millisecond):
		if !waits {
			t.Fatal("the backup waited for the prune, though it stores its chunks in a new pack")
		}
	}
	if err := long.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-pruned; err != nil {
		t.Fatal(err)
	}
	res := <-result
	if waits {
		out = <-again
	}
	if out.err != nil {
		t.Fatal(out.err)
	}
	if res.Deleted == 0 {
		t.Fatalf("prune = %+v: want the forgotten snapshot's chunks deleted", res)
	}
	allChunksThere(t, store, out.m)
	restoresTo(t, r, out.m, content)
}

// A prune killed mid-run leaves its records: backups ignore them once its
// lease is gone, and the next prune removes them.
func TestDeadPruneIsIgnoredAndCleaned(t *testing.T) {
	ctx := context.Background()
	r, store := sweepRepo(t)
	content := randomBytes(300<<10, 3)
	first, err := quickBackup(t, r, "g", graphDir(t, content), nil)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := r.AcquireLease(ctx, repo.Prune, "prune", quickLeases)
	if err != nil {
		t.Fatal(err)
	}
	var ids []repo.ChunkID
	for id := range first.Objects() {
		ids = append(ids, id)
	}
	sweep, err := r.PublishSweep(ctx, dead, ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PublishSweepWaits(ctx, sweep, nil); err != nil {
		t.Fatal(err)
	}
	// A live prune condemns them.
	mine, err := r.AcquireLease(ctx, repo.Shared, "probe", quickLeases)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Condemned(ctx, mine, quickLeases)
	if err != nil || !c.Any() || !c.Has(ids[0]) {
		t.Fatalf("a running prune's chunks are not condemned: %v", err)
	}
	_ = mine.Release()
	_ = dead.Release() // as kill -9 plus expiry would

	m, err := quickBackup(t, r, "g", graphDir(t, content), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := retention.Prune(ctx, r, retention.PruneOptions{Lease: quickLeases})
	if err != nil {
		t.Fatal(err)
	}
	if res.DeadSweeps != 1 {
		t.Fatalf("prune = %+v: want the dead prune's record removed", res)
	}
	onlyEndedRecords(t, store, 1)
	allChunksThere(t, store, m)
}

// onlyEndedRecords fails unless what prunes left under gc/ is n ended
// records: the running sweeps' records are gone.
func onlyEndedRecords(t *testing.T, store blob.Store, n int) {
	t.Helper()
	keys := keysUnder(t, store, repo.SweepPrefix)
	for _, k := range keys {
		if !strings.HasSuffix(k, "/ended") {
			t.Fatalf("prune left the records of a sweep, not only its ended record: %v", keys)
		}
	}
	if len(keys) != n {
		t.Fatalf("ended records %v, want %d", keys, n)
	}
}

// Prunes exclude each other; backups and prunes do not.
func TestPruneLeaseExcludesOnlyPrune(t *testing.T) {
	ctx := context.Background()
	r, _ := sweepRepo(t)
	quick := repo.LeaseOptions{TTL: time.Second, Skew: time.Millisecond, Wait: 100 * time.Millisecond, Poll: 10 * time.Millisecond}
	b, err := r.AcquireLease(ctx, repo.Shared, "backup", quick)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	p, err := r.AcquireLease(ctx, repo.Prune, "prune", quick)
	if err != nil {
		t.Fatalf("a prune waits for a backup: %v", err)
	}
	defer p.Release()
	b2, err := r.AcquireLease(ctx, repo.Shared, "backup 2", quick)
	if err != nil {
		t.Fatalf("a backup waits for a prune: %v", err)
	}
	defer b2.Release()
	if _, err := r.AcquireLease(ctx, repo.Prune, "prune 2", quick); err == nil {
		t.Fatal("two prunes at once")
	}
}
