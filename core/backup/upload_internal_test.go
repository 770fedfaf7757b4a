package backup

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers"
)

// gatedPuts holds every put until the gate opens, counting those waiting.
type gatedPuts struct {
	blob.Store
	gate    chan struct{}
	waiting atomic.Int32
}

func (g *gatedPuts) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Store.Put(ctx, key, r, opts)
}

// A chunk waiting for its upload holds the budget of what it stores, not
// of its plaintext: 32 chunks of 1 MiB that compress to almost nothing are
// all in flight at once under an 8 MiB budget (7 were, before).
func TestUploadsHoldWhatTheyStore(t *testing.T) {
	ctx := context.Background()
	mem, err := providers.Open(ctx, fmt.Sprintf("mem://upload-%d", time.Now().UnixNano()), providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, mem, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	store := &gatedPuts{Store: mem, gate: make(chan struct{})}
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const chunks = 32
	pool := newUploadPool(r, chunks, 8<<20)
	u := pool.start(ctx)
	go func() {
		for i := range chunks {
			data := make([]byte, 1<<20)
			copy(data, fmt.Sprintf("chunk %d", i))
			id := r.HashChunk(data)
			if err := u.put(id, newSharedChunk(data, 1)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for store.waiting.Load() < chunks && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := store.waiting.Load()
	close(store.gate)
	if _, err := u.wait(); err != nil {
		t.Fatal(err)
	}
	pool.close()
	if got < chunks {
		t.Fatalf("%d uploads in flight under an 8 MiB budget, want all %d (each stores a few KiB)", got, chunks)
	}
}
