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
	"github.com/graphkeep/graphkeep/providers/local"
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
// all put at once under an 8 MiB budget while the store answers nothing (7
// were, before): in a format 1 repository as 32 uploads in flight, in a
// packing one as one pack waiting to be sent.
func TestUploadsHoldWhatTheyStore(t *testing.T) {
	for _, packed := range []bool{false, true} {
		t.Run(fmt.Sprintf("packed=%v", packed), func(t *testing.T) {
			ctx := context.Background()
			mem, err := local.Open(ctx, fmt.Sprintf("mem://upload-%d", time.Now().UnixNano()), local.Options{})
			if err != nil {
				t.Fatal(err)
			}
			opts := repo.InitOptions{PackSize: -1}
			if packed {
				opts.PackSize = 0
			}
			if _, err := repo.Init(ctx, mem, opts); err != nil {
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
			var put atomic.Int32
			go func() {
				for i := range chunks {
					data := make([]byte, 1<<20)
					copy(data, fmt.Sprintf("chunk %d", i))
					id := r.HashChunk(data)
					if err := u.put(id, newSharedChunk(data, 1)); err != nil {
						t.Error(err)
						return
					}
					put.Add(1)
				}
			}()
			deadline := time.Now().Add(10 * time.Second)
			held := func() bool {
				if packed {
					return put.Load() == chunks
				}
				return store.waiting.Load() == chunks
			}
			for !held() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			got, gotPuts := store.waiting.Load(), put.Load()
			close(store.gate)
			if _, err := u.wait(); err != nil {
				t.Fatal(err)
			}
			pool.close()
			if gotPuts < chunks || !packed && got < chunks {
				t.Fatalf("%d chunks put, %d uploads in flight under an 8 MiB budget, want all %d (each stores a few KiB)", gotPuts, got, chunks)
			}
			if packed && len(u.storedIDs()) != 1 {
				t.Fatalf("%d packs stored, want the 32 chunks in one", len(u.storedIDs()))
			}
		})
	}
}
