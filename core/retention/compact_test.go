package retention_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
)

// A pack much of which no snapshot names any more (LightRAG rewrote
// records all through a file, and the snapshot of the old version was
// forgotten) is rewritten by prune with only the chunks still named. The
// snapshots that name its chunks at their old places still restore and
// verify (the pack's trailer says where each moved), and so does a backup
// taken after, which deduplicates against them.
func TestPruneCompactsHalfDeadPacks(t *testing.T) {
	ctx := context.Background()
	r, store := sweepRepo(t)
	content := randomBytes(1<<20, 9)
	dir := graphDir(t, content)
	first, err := quickBackup(t, r, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pack repo.ChunkID
	for id := range first.Objects() {
		if a, err := store.Stat(ctx, repo.ChunkKey(id)); err == nil && a.Size > 512<<10 {
			pack = id
		}
	}
	if pack == (repo.ChunkID{}) {
		t.Fatal("the first backup stored no pack")
	}
	before, _ := store.Stat(ctx, repo.ChunkKey(pack))

	// Change the file in six places: about half its chunks change.
	changed := bytes.Clone(content)
	for i := range 6 {
		changed[(i*2+1)*len(changed)/13] ^= 0xff
	}
	if err := os.WriteFile(filepath.Join(dir, "kv_store_full_docs.bin"), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	second, err := quickBackup(t, r, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := retention.DeleteSnapshot(ctx, r, first.Ref()); err != nil {
		t.Fatal(err)
	}
	res, err := retention.Prune(ctx, r, retention.PruneOptions{Lease: quickLeases})
	if err != nil {
		t.Fatal(err)
	}
	after, err := store.Stat(ctx, repo.ChunkKey(pack))
	if err != nil || res.Compacted != 1 || after.Size >= before.Size || res.CompactedSz != before.Size-after.Size {
		t.Fatalf("prune = %+v; the pack went from %d to %d bytes (%v): want it compacted", res, before.Size, after.Size, err)
	}
	allChunksThere(t, store, second)
	restoresTo(t, r, second, changed)
	for _, readData := range []bool{false, true} {
		v, err := backup.Verify(ctx, r, []repo.SnapshotRef{second.Ref()}, backup.VerifyOptions{ReadData: readData})
		if err != nil || !v.OK() {
			t.Fatalf("verify (read data %v) after compaction = %+v, %v", readData, v, err)
		}
	}

	// A backup after the compaction reuses the chunks at the places its
	// index holds; it restores too.
	changed[len(changed)-1] ^= 0xff
	if err := os.WriteFile(filepath.Join(dir, "kv_store_full_docs.bin"), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	third, err := quickBackup(t, r, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	restoresTo(t, r, third, changed)

	// A second prune finds nothing more to compact.
	again, err := retention.Prune(ctx, r, retention.PruneOptions{Lease: quickLeases})
	if err != nil || again.Compacted != 0 {
		t.Fatalf("second prune = %+v, %v", again, err)
	}
}

// A backup that began before the prune and relies on chunks the prune
// found unnamed in a pack it means to compact: the prune waits for it,
// reads the manifests again, and keeps them; the backup restores.
func TestCompactionKeepsWhatAnEarlierBackupNames(t *testing.T) {
	ctx := context.Background()
	r, store := sweepRepo(t)
	content := randomBytes(1<<20, 10)
	dir := graphDir(t, content)
	file := filepath.Join(dir, "kv_store_full_docs.bin")
	first, err := quickBackup(t, r, "g", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(content)
	for i := range 6 {
		changed[(i*2+1)*len(changed)/13] ^= 0xff
	}
	if err := os.WriteFile(file, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := quickBackup(t, r, "g", dir, nil); err != nil {
		t.Fatal(err)
	}
	// The first version comes back; a backup reads it (every chunk known,
	// in the first pack) and is held while the prune starts.
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	third := startHeldBackup(t, r, dir)
	if err := retention.DeleteSnapshot(ctx, r, first.Ref()); err != nil {
		t.Fatal(err)
	}
	result, pruned := pruneAsync(r)
	sweepWaiting(t, store, pruned)
	out := third.finish(t)
	if err := <-pruned; err != nil {
		t.Fatal(err)
	}
	if res := <-result; res.Compactable != 1 || res.Compacted != 0 {
		t.Fatalf("prune = %+v: want the pack found compactable, then kept whole", res)
	}
	allChunksThere(t, store, out)
	restoresTo(t, r, out, content)
}
