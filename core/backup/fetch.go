package backup

import (
	"context"
	"fmt"
	"iter"

	"github.com/graphkeep/graphkeep/core/repo"
)

// fetcher downloads a file's chunks in order, a bounded window ahead.
type fetcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	repo   *repo.Repository
	window int
}

func newFetcher(ctx context.Context, r *repo.Repository, window int) *fetcher {
	ctx, cancel := context.WithCancel(ctx)
	return &fetcher{ctx: ctx, cancel: cancel, repo: r, window: window}
}

func (f *fetcher) stop() { f.cancel() }

type fetched struct {
	data []byte
	err  error
}

// chunks yields the plaintext of refs in order; each chunk was verified
// against its id. It stops at the first error.
func (f *fetcher) chunks(refs []repo.ChunkRef) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		ctx, cancel := context.WithCancel(f.ctx)
		defer cancel()
		results := make([]chan fetched, len(refs))
		launch := func(i int) {
			results[i] = make(chan fetched, 1)
			go func() {
				data, err := f.repo.ReadChunk(ctx, refs[i].ID)
				if err == nil && len(data) != refs[i].Size {
					err = fmt.Errorf("chunk %s has %d bytes, the manifest says %d: %w", refs[i].ID, len(data), refs[i].Size, repo.ErrCorrupt)
				}
				results[i] <- fetched{data, err}
			}()
		}
		for i := 0; i < min(f.window, len(refs)); i++ {
			launch(i)
		}
		for i := range refs {
			res := <-results[i]
			if next := i + f.window; next < len(refs) {
				launch(next)
			}
			if !yield(res.data, res.err) || res.err != nil {
				return
			}
		}
	}
}
