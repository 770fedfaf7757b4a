package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"

	"github.com/graphkeep/graphkeep/core/internal/bufpool"
	"github.com/graphkeep/graphkeep/core/repo"
)

// fetcher downloads files' chunks in order, a bounded window ahead. Its
// limits hold across every file read through it at once: at most window
// reads in flight, and at most budget bytes of buffers for chunks fetched
// or being fetched and not yet consumed (a chunk being read holds its
// stored form too), except that the chunk a file needs next is always
// fetched (so a file never waits for another's read-ahead to drain). One
// big file alone uses the whole window; several share it.
//
// The budget is what the restore holds live: counting only the plaintext
// let the stored forms of a full window of reads come on top, which put
// the heap at graphkeep's soft memory limit and made the garbage collector
// run 150 times in a 525 MiB restore (a fifth of its CPU).
type fetcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	repo   *repo.Repository
	window int
	budget int
	reads  chan struct{} // a slot per read in flight

	mu    sync.Mutex
	ahead int // bytes launched and not yet consumed, over all files
}

func newFetcher(ctx context.Context, r *repo.Repository, window, budget int) *fetcher {
	ctx, cancel := context.WithCancel(ctx)
	window = max(1, window)
	return &fetcher{ctx: ctx, cancel: cancel, repo: r, window: window, budget: budget, reads: make(chan struct{}, window)}
}

// reserve accounts size bytes ahead: always when must, else only within
// the budget.
func (f *fetcher) reserve(size int, must bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !must && f.ahead+size > f.budget {
		return false
	}
	f.ahead += size
	return true
}

// room reports whether size bytes more fit the budget.
func (f *fetcher) room(size int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ahead+size <= f.budget
}

func (f *fetcher) unreserve(size int) {
	f.mu.Lock()
	f.ahead -= size
	f.mu.Unlock()
}

func (f *fetcher) stop() { f.cancel() }

type fetched struct {
	chunk *sharedChunk
	err   error
}

// fileFetch is one file's chunks read ahead in order. Opened, it starts a
// few reads before the file is written (within the budget, never forced),
// so that small files waiting for a writer do not each wait a round trip
// once they have one; chunks continues with the whole window.
type fileFetch struct {
	f         *fetcher
	ctx       context.Context
	cancel    context.CancelFunc
	refs      []repo.ChunkRef
	consumers int
	results   []chan fetched
	// refs[done:launched] are in flight or fetched, reserved in f.ahead.
	done, launched int
}

// open starts reading refs, at most ahead chunks until chunks is called.
// The caller must close it.
func (f *fetcher) open(refs []repo.ChunkRef, consumers, ahead int) *fileFetch {
	ctx, cancel := context.WithCancel(f.ctx)
	ff := &fileFetch{f: f, ctx: ctx, cancel: cancel, refs: refs, consumers: consumers, results: make([]chan fetched, len(refs))}
	ff.fill(min(ahead, f.window), false)
	return ff
}

// fill launches reads up to limit ahead of the consumer, within the
// budget; with must, the chunk the consumer needs next is launched even
// past it.
//
// Chunks next to each other in one pack, as a backup stores a file's new
// chunks, are read with one ranged read (a run) of at most maxRun bytes.
func (ff *fileFetch) fill(limit int, must bool) {
	f := ff.f
	for ff.launched < len(ff.refs) && ff.launched-ff.done < limit {
		needed := must && ff.launched == ff.done
		// A read ahead starts only with room for a run: started as each
		// chunk is consumed, runs would be a chunk long.
		if !needed && ff.refs[ff.launched].Packed() && !f.room(f.budget/4) {
			break
		}
		if !f.reserve(ff.refs[ff.launched].Size+storedSize(ff.refs[ff.launched]), needed) {
			break
		}
		start := ff.launched
		ff.launched++
		span := ff.refs[start].Length
		// A run goes past the window's count of chunks: it is one read, and
		// the budget bounds the memory its chunks take. It reads one
		// chunk's stored form at a time: it holds the largest of them
		// (scratch), not their sum.
		scratch := storedSize(ff.refs[start])
		for ff.launched < len(ff.refs) {
			prev, next := ff.refs[ff.launched-1], ff.refs[ff.launched]
			if !prev.Packed() || next.Pack != prev.Pack || next.Offset != prev.Offset+int64(prev.Length) ||
				span+next.Length > maxRun || !f.reserve(next.Size+max(0, storedSize(next)-scratch), false) {
				break
			}
			scratch = max(scratch, storedSize(next))
			span += next.Length
			ff.launched++
		}
		ff.launch(start, ff.launched, scratch)
	}
}

// maxRun bounds the bytes one read of a pack fetches.
const maxRun = 8 << 20

// launch reads refs[start:end] with one request, holding scratch bytes
// of the budget for their stored forms until it has read them.
func (ff *fileFetch) launch(start, end, scratch int) {
	f := ff.f
	chans := make([]chan fetched, end-start)
	for i := range chans {
		chans[i] = make(chan fetched, 1)
		ff.results[start+i] = chans[i]
	}
	go func() {
		delivered := 0
		deliver := func(i int, c *sharedChunk, err error) {
			if delivered++; delivered == len(chans) {
				f.unreserve(scratch) // the stored forms are dropped
			}
			chans[i-start] <- fetched{c, err}
		}
		select {
		case f.reads <- struct{}{}:
			if end-start == 1 {
				c, err := f.fetch(ff.ctx, ff.refs[start], ff.consumers)
				deliver(start, c, err)
			} else {
				f.fetchRun(ff.ctx, ff.refs[start:end], ff.consumers, func(i int, c *sharedChunk, err error) { deliver(start+i, c, err) })
			}
			<-f.reads
		case <-ff.ctx.Done():
			for i := start; i < end; i++ {
				deliver(i, nil, ff.ctx.Err())
			}
		}
	}()
}

// chunks yields the file's chunks in order; it stops at the first error.
func (ff *fileFetch) chunks() iter.Seq2[*sharedChunk, error] {
	return func(yield func(*sharedChunk, error) bool) {
		ff.fill(ff.f.window, true)
		for ff.done < len(ff.refs) {
			i := ff.done
			res := <-ff.results[i]
			ff.results[i] = nil
			ff.f.unreserve(ff.refs[i].Size)
			ff.done++
			ff.fill(ff.f.window, true)
			if !yield(res.chunk, res.err) || res.err != nil {
				return
			}
		}
	}
}

// close stops the reads still running and recycles what was read ahead
// and not consumed.
func (ff *fileFetch) close() {
	ff.cancel()
	for i, ch := range ff.results {
		if ch == nil {
			continue
		}
		ff.results[i] = nil
		ff.f.unreserve(ff.refs[i].Size)
		if res := <-ch; res.chunk != nil {
			for range ff.consumers {
				res.chunk.release()
			}
		}
	}
}

// fetch reads, decodes and verifies one chunk into a pooled buffer.
func (f *fetcher) fetch(ctx context.Context, ref repo.ChunkRef, consumers int) (*sharedChunk, error) {
	scratch := bufpool.Restore.Get(ref.Size + storedOverhead)
	plain := bufpool.Restore.Get(ref.Size)
	data, scratch, err := f.repo.ReadRefInto(ctx, ref, plain, scratch, repo.CheckSealed)
	bufpool.Restore.Put(scratch)
	if err == nil && len(data) != ref.Size {
		err = fmt.Errorf("chunk %s has %d bytes, the manifest says %d: %w", ref.ID, len(data), ref.Size, repo.ErrCorrupt)
	}
	if err != nil {
		bufpool.Restore.Put(plain)
		return nil, err
	}
	c := &sharedChunk{data: data, pool: bufpool.Restore}
	c.refs.Store(int32(consumers))
	return c, nil
}

// fetchRun reads refs, adjacent in one pack, with one ranged read, and
// delivers each chunk (or the error that stopped the run) as it is decoded:
// buffers stay chunk-sized whatever the run's length.
func (f *fetcher) fetchRun(ctx context.Context, refs []repo.ChunkRef, consumers int, deliver func(int, *sharedChunk, error)) {
	first, last := refs[0], refs[len(refs)-1]
	length := last.Offset + int64(last.Length) - first.Offset
	rc, err := f.repo.Store().Get(ctx, repo.ChunkKey(first.Pack), first.Offset, length)
	if err != nil {
		err = fmt.Errorf("chunk %s in pack %s: %w", first.ID, first.Pack, err)
	}
	i := 0
	if err == nil {
		defer rc.Close()
		for ; i < len(refs); i++ {
			ref := refs[i]
			if !ref.PlausibleLength() {
				err = fmt.Errorf("chunk %s: %w: its place in pack %s is %d+%d for %d bytes", ref.ID, repo.ErrCorrupt, ref.Pack, ref.Offset, ref.Length, ref.Size)
				break
			}
			scratch := bufpool.Restore.Get(ref.Length)[:ref.Length]
			if _, rerr := io.ReadFull(rc, scratch); rerr != nil {
				bufpool.Restore.Put(scratch)
				if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
					rerr = fmt.Errorf("%w: the pack ends before it", repo.ErrCorrupt)
				}
				err = fmt.Errorf("chunk %s in pack %s: %w", ref.ID, ref.Pack, rerr)
				break
			}
			plain := bufpool.Restore.Get(ref.Size)
			data, derr := f.repo.DecodeStored(ref.ID, scratch, plain, repo.CheckSealed)
			bufpool.Restore.Put(scratch)
			if derr == nil && len(data) != ref.Size {
				derr = fmt.Errorf("chunk %s has %d bytes, the manifest says %d: %w", ref.ID, len(data), ref.Size, repo.ErrCorrupt)
			}
			if derr != nil {
				bufpool.Restore.Put(plain)
				err = derr
				break
			}
			c := &sharedChunk{data: data, pool: bufpool.Restore}
			c.refs.Store(int32(consumers))
			deliver(i, c, nil)
		}
	}
	// What the run did not deliver is read chunk by chunk: a prune that
	// compacted the pack moved it (the single read finds it), or it is
	// damaged (the single read says how).
	for ; i < len(refs) && ctx.Err() == nil; i++ {
		c, ferr := f.fetch(ctx, refs[i], consumers)
		deliver(i, c, ferr)
	}
	for ; i < len(refs); i++ {
		deliver(i, nil, firstErr(ctx.Err(), err))
	}
}

func firstErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// storedSize bounds the stored form of ref's chunk, read before it is
// decoded: what a pack's ref says it is, else the most its encoding adds.
// (A fourth of the plaintext for LightRAG's JSON: bounding it by the
// plaintext halved how far a restore could read ahead.)
func storedSize(ref repo.ChunkRef) int {
	if ref.Packed() && ref.PlausibleLength() {
		return ref.Length
	}
	return ref.Size + storedOverhead
}

// storedOverhead covers what encoding adds to a chunk that does not
// compress: header byte, nonce and tag.
const storedOverhead = repo.MaxStoredOverhead

// findBadChunk reads refs again re-deriving every id, to name the chunk
// when a file's content did not match its SHA-256.
func (f *fetcher) findBadChunk(refs []repo.ChunkRef) error {
	for _, ref := range refs {
		data, err := f.repo.ReadRef(f.ctx, ref)
		if err == nil && len(data) != ref.Size {
			err = fmt.Errorf("chunk %s has %d bytes, the manifest says %d: %w", ref.ID, len(data), ref.Size, repo.ErrCorrupt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
