package backup

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/internal/bufpool"
	"github.com/graphkeep/graphkeep/core/repo"
)

// DefaultUploadBuffer bounds the bytes of encoded chunks waiting for or in
// an upload, whatever the number of uploads in flight: 32 uploads of
// LightRAG's chunks (about 0.6 MiB encoded, in 1 MiB buffers) at a 30 ms
// round trip. 64 MiB was no faster there and, at 10 GB on MinIO, filled up
// and kept the heap over the soft memory limit.
const DefaultUploadBuffer = 32 << 20

// uploadPool compresses, encrypts and stores chunks for one or more backups
// at once. Encoding is CPU work, so as many chunks are encoded at once as
// there are CPUs; storing is mostly waiting for the store, so as many
// uploads run at once as the store serves well (blob.RequestsOf), with the
// encoded bytes they hold bounded by a budget. put blocks while every
// encoder is busy: memory stays bounded whatever the data size.
type uploadPool struct {
	repo     *repo.Repository
	jobs     chan upload
	sends    chan sealed
	budget   *semaphore.Weighted
	capacity int64
	encoders sync.WaitGroup
	senders  sync.WaitGroup
}

type upload struct {
	id    repo.ChunkID
	chunk *sharedChunk
	to    *uploads
}

// sealed is an encoded chunk holding cost bytes of the budget.
type sealed struct {
	id   repo.ChunkID
	data []byte
	cost int64
	to   *uploads
}

func newUploadPool(r *repo.Repository, uploadsInFlight int, buffer int64) *uploadPool {
	if uploadsInFlight <= 0 {
		uploadsInFlight = blob.RequestsOf(r.Store())
	}
	if buffer <= 0 {
		buffer = DefaultUploadBuffer
	}
	p := &uploadPool{repo: r, jobs: make(chan upload), sends: make(chan sealed),
		budget: semaphore.NewWeighted(buffer), capacity: buffer}
	for range runtime.GOMAXPROCS(0) {
		p.encoders.Add(1)
		go p.encode()
	}
	for range max(1, uploadsInFlight) {
		p.senders.Add(1)
		go p.send()
	}
	return p
}

// close stops the pool once every backup using it has waited or aborted.
func (p *uploadPool) close() {
	close(p.jobs)
	p.encoders.Wait()
	close(p.sends)
	p.senders.Wait()
}

// encode encodes chunks into its own scratch buffer, then moves each into
// a pooled buffer of its encoded size: a chunk waiting for its upload holds
// what it stores (a quarter of its plaintext for LightRAG's JSON), not the
// worst case its encoding could have needed.
func (p *uploadPool) encode() {
	defer p.encoders.Done()
	var scratch []byte
	for job := range p.jobs {
		u := job.to
		// Stored bytes are at most the plaintext plus the encoding's header
		// and tag; a chunk larger than the whole budget takes all of it.
		cost := min(int64(len(job.chunk.data))+64, p.capacity)
		if u.ctx.Err() != nil || p.budget.Acquire(u.ctx, cost) != nil {
			job.chunk.release()
			u.pending.Done()
			continue
		}
		scratch = p.repo.EncodeChunkTo(scratch[:0], job.id, job.chunk.data)
		job.chunk.release()
		buf := bufpool.Backup.Get(len(scratch))
		copy(buf, scratch)
		if held := min(int64(cap(buf)), cost); held < cost {
			p.budget.Release(cost - held)
			cost = held
		}
		p.sends <- sealed{id: job.id, data: buf, cost: cost, to: u}
	}
}

func (p *uploadPool) send() {
	defer p.senders.Done()
	for s := range p.sends {
		u := s.to
		if u.ctx.Err() == nil {
			if err := p.repo.PutChunkDeferred(u.ctx, s.id, s.data); err != nil {
				u.fail(fmt.Errorf("store chunk %s: %w", s.id, err))
			} else {
				u.stored.Add(int64(len(s.data)))
				u.mu.Lock()
				u.ids = append(u.ids, s.id)
				u.mu.Unlock()
			}
		}
		bufpool.Backup.Put(s.data)
		p.budget.Release(s.cost)
		u.pending.Done()
	}
}

// uploads is one backup's share of a pool: what it stored and its first
// error. A failure cancels this backup's uploads, not the others'.
type uploads struct {
	ctx     context.Context
	cancel  context.CancelFunc
	pool    *uploadPool
	pending sync.WaitGroup
	stored  atomic.Int64
	mu      sync.Mutex
	err     error
	ids     []repo.ChunkID // stored, to be synced before the commit
}

func (p *uploadPool) start(ctx context.Context) *uploads {
	ctx, cancel := context.WithCancel(ctx)
	return &uploads{ctx: ctx, cancel: cancel, pool: p}
}

func (u *uploads) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
	u.cancel()
}

// put queues a chunk, which the pool releases once encoded; it returns the
// first upload error of this backup, if any.
func (u *uploads) put(id repo.ChunkID, c *sharedChunk) error {
	u.pending.Add(1)
	select {
	case u.pool.jobs <- upload{id: id, chunk: c, to: u}:
		return nil
	case <-u.ctx.Done():
		u.pending.Done()
		c.release()
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.err != nil {
			return u.err
		}
		return u.ctx.Err()
	}
}

// wait waits for this backup's uploads and returns the bytes stored.
func (u *uploads) wait() (int64, error) {
	u.pending.Wait()
	u.mu.Lock()
	defer u.mu.Unlock()
	err := u.err
	if err == nil {
		err = u.ctx.Err()
	}
	u.cancel()
	return u.stored.Load(), err
}

// storedIDs are the chunks this backup stored (call after wait).
func (u *uploads) storedIDs() []repo.ChunkID {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ids
}

func (u *uploads) abort() {
	u.cancel()
	u.pending.Wait()
}
