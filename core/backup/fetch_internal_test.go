package backup

import (
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers/local"
)

// gets counts the reads in flight and their peak.
type gets struct {
	blob.Store
	now, peak atomic.Int32
	// gather, when set, holds each read until that many are in flight (or
	// a second has passed), so a test of the window does not depend on how
	// fast the machine starts them.
	gather atomic.Int32
}

func (g *gets) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	n := g.now.Add(1)
	defer g.now.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	time.Sleep(5 * time.Millisecond) // a round trip, so fetches overlap
	if want := g.gather.Load(); want > 0 {
		for deadline := time.Now().Add(time.Second); g.peak.Load() < want && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	return g.Store.Get(ctx, key, offset, length)
}

// countedRepo is an uncompressed repository in memory whose reads are
// counted (and take a round trip).
func countedRepo(t *testing.T) (*repo.Repository, *gets) {
	t.Helper()
	mem, err := local.Open(context.Background(), fmt.Sprintf("mem://fetch-%d", time.Now().UnixNano()), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &gets{Store: mem}
	r, err := repo.Init(context.Background(), store, repo.InitOptions{Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	return r, store
}

// The fetcher keeps at most its byte budget of buffers for chunks ahead,
// whatever its window: restore's memory does not grow with the store's
// parallelism. A chunk being read holds its stored form and its plaintext
// (6 MiB allow two reads of 1 MiB chunks at once, not six).
func TestFetcherKeepsToItsBudget(t *testing.T) {
	ctx := context.Background()
	r, store := countedRepo(t)
	var refs []repo.ChunkRef
	for i := range 20 {
		data := make([]byte, 1<<20)
		data[0] = byte(i)
		id := r.HashChunk(data)
		if err := r.PutChunk(ctx, id, r.EncodeChunk(id, data)); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, repo.ChunkRef{ID: id, Size: len(data)})
	}
	for _, c := range []struct{ window, budget, want int }{{16, 3 << 20, 1}, {16, 6 << 20, 2}, {2, 64 << 20, 2}, {16, 1, 1}} {
		store.peak.Store(0)
		f := newFetcher(ctx, r, c.window, c.budget)
		n := 0
		for chunk, err := range f.chunks(refs, 1) {
			if err != nil {
				t.Fatal(err)
			}
			if chunk.data[0] != byte(n) {
				t.Fatalf("chunk %d out of order", n)
			}
			chunk.release()
			n++
		}
		f.stop()
		if n != len(refs) {
			t.Fatalf("window %d budget %d: %d chunks, want %d", c.window, c.budget, n, len(refs))
		}
		if peak := int(store.peak.Load()); peak > c.want || peak < 1 {
			t.Fatalf("window %d budget %d: %d reads at once, want at most %d", c.window, c.budget, peak, c.want)
		}
	}
}

// Files read at once share the fetcher's window and budget: the reads in
// flight never pass the window, and one file alone may use all of it.
func TestFetcherSharesItsWindow(t *testing.T) {
	ctx := context.Background()
	r, store := countedRepo(t)
	files := make([][]repo.ChunkRef, 3)
	for i := range 60 {
		data := make([]byte, 64<<10)
		data[0], data[1] = byte(i), byte(i%3)
		id := r.HashChunk(data)
		if err := r.PutChunk(ctx, id, r.EncodeChunk(id, data)); err != nil {
			t.Fatal(err)
		}
		files[i%3] = append(files[i%3], repo.ChunkRef{ID: id, Size: len(data)})
	}
	read := func(f *fetcher, refs []repo.ChunkRef) error {
		n := 0
		for chunk, err := range f.chunks(refs, 1) {
			if err != nil {
				return err
			}
			if chunk.data[0] != byte(n*3+int(chunk.data[1])) { // chunk i went to file i%3
				return fmt.Errorf("chunk %d out of order", n)
			}
			chunk.release()
			n++
		}
		if n != len(refs) {
			return fmt.Errorf("%d chunks, want %d", n, len(refs))
		}
		return nil
	}

	// One file alone: the whole window.
	store.gather.Store(12)
	f := newFetcher(ctx, r, 12, 64<<20)
	if err := read(f, files[0]); err != nil {
		t.Fatal(err)
	}
	f.stop()
	if peak := store.peak.Load(); peak != 12 {
		t.Fatalf("one file: %d reads at once, want the whole window of 12", peak)
	}

	// Three at once: still the window, and nothing left reserved.
	store.gather.Store(0)
	store.peak.Store(0)
	f = newFetcher(ctx, r, 12, 64<<20)
	errs := make(chan error, 3)
	for _, refs := range files {
		go func() { errs <- read(f, refs) }()
	}
	for range files {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if peak := store.peak.Load(); peak > 12 {
		t.Fatalf("three files: %d reads at once, want at most 12", peak)
	}
	// A reader that stops early gives back what it had reserved.
	for range f.chunks(files[1], 1) {
		break
	}
	f.stop()
	if f.ahead != 0 {
		t.Fatalf("%d bytes still reserved after the files were read", f.ahead)
	}
}

// A restore stopped while it waits for a file slot takes none: a slot
// taken and not given back would be lost to every restore sharing them.
func TestTakeSlotTakesNoneOnceStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slots := make(chan struct{}, 3)
	for range 100 { // select picks at random among ready cases
		if takeSlot(ctx, slots) {
			t.Fatal("took a slot after the restore was stopped")
		}
		if len(slots) != 0 {
			t.Fatalf("%d slots held after a stopped restore", len(slots))
		}
	}
	if !takeSlot(context.Background(), slots) || len(slots) != 1 {
		t.Fatal("a running restore did not get a free slot")
	}
}

// A graph's small files are read ahead of their writers: with one chunk
// each and three writers, reading each file only once it had a writer kept
// three reads in flight, and every file waited a round trip (100 graphs of
// 2 MB took 15 s at 30 ms).
func TestSmallFilesAreReadAheadOfTheirWriters(t *testing.T) {
	ctx := context.Background()
	r, store := countedRepo(t)
	dir := t.TempDir()
	for i := range 12 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("notes-%02d.txt", i)), []byte(fmt.Sprint("small file ", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := Create(ctx, r, Source{Graph: "g1", Dir: dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	store.peak.Store(0)
	store.gather.Store(8) // each read waits until 8 are in flight, or a second
	start := time.Now()
	if _, err := Restore(ctx, r, snap.Manifest.Ref(), filepath.Join(t.TempDir(), "g1"), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if peak := store.peak.Load(); peak < 8 {
		t.Fatalf("%d reads in flight at most (in %v), want at least 8: files are read only once a writer takes them", peak, time.Since(start))
	}
}

// chunks reads one file's refs through f, as a restore's writer does.
func (f *fetcher) chunks(refs []repo.ChunkRef, consumers int) iter.Seq2[*sharedChunk, error] {
	return func(yield func(*sharedChunk, error) bool) {
		ff := f.open(refs, consumers, 0)
		defer ff.close()
		for c, err := range ff.chunks() {
			if !yield(c, err) {
				return
			}
		}
	}
}
