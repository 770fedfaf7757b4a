package backup

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
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
//
// In a repository that packs chunks (format 2), one goroutine gathers each
// backup's encoded chunks into its open pack and hands a pack to the
// senders once it holds the repository's pack size, or when the backup
// waits. The chunks stay in their own chunk-sized buffers, sent back to
// back (a pack is never copied into one buffer). Open packs hold at most
// half the budget: past that the fullest is sent, so encoders always find
// room. In a format 1 repository each chunk is sent as an object of its
// own.
type uploadPool struct {
	repo     *repo.Repository
	packSize int
	jobs     chan upload
	sends    chan sealed
	flushes  chan *uploads
	packed   chan *pack
	budget   *semaphore.Weighted
	capacity int64
	encoders sync.WaitGroup
	packer   sync.WaitGroup
	senders  sync.WaitGroup
}

type upload struct {
	id    repo.ChunkID
	seq   int // the order put was called in
	cost  int64
	chunk *sharedChunk
	to    *uploads
}

// sealed is an encoded chunk holding cost bytes of the budget.
type sealed struct {
	id   repo.ChunkID
	seq  int
	size int // plaintext
	data []byte
	cost int64
	to   *uploads
}

// pack is what one request stores: a pack's chunks, or in a format 1
// repository one chunk (id zero).
type pack struct {
	id     repo.ChunkID
	chunks []sealed
	bytes  int
	to     *uploads
}

func newUploadPool(r *repo.Repository, uploadsInFlight int, buffer int64) *uploadPool {
	if uploadsInFlight <= 0 {
		uploadsInFlight = blob.RequestsOf(r.Store())
	}
	if buffer <= 0 {
		buffer = DefaultUploadBuffer
	}
	p := &uploadPool{repo: r, packSize: r.PackSize(), jobs: make(chan upload), sends: make(chan sealed),
		flushes: make(chan *uploads), packed: make(chan *pack),
		budget: semaphore.NewWeighted(buffer), capacity: buffer}
	for range runtime.GOMAXPROCS(0) {
		p.encoders.Add(1)
		go p.encode()
	}
	p.packer.Add(1)
	go p.pack()
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
	p.packer.Wait()
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
		u, cost := job.to, job.cost
		if u.ctx.Err() != nil {
			job.chunk.release()
			p.budget.Release(cost)
			u.sealing.Done()
			u.pending.Done()
			continue
		}
		size := len(job.chunk.data)
		scratch = p.repo.EncodeChunkTo(scratch[:0], job.id, job.chunk.data)
		job.chunk.release()
		buf := bufpool.Backup.Get(len(scratch))
		copy(buf, scratch)
		if held := min(int64(cap(buf)), cost); held < cost {
			p.budget.Release(cost - held)
			cost = held
		}
		p.sends <- sealed{id: job.id, seq: job.seq, size: size, data: buf, cost: cost, to: u}
	}
}

// pack gathers sealed chunks into each backup's open pack in the order
// they were put (encoders finish out of order; a restore reads a file's
// chunks best as one range), and sends a pack once full (see uploadPool).
// A backup's flush request sends its open pack with every chunk it put.
func (p *uploadPool) pack() {
	defer p.packer.Done()
	defer close(p.packed)
	backups := map[*uploads]*packing{}
	var held int64 // budget held by open packs and waiting chunks
	send := func(u *uploads) {
		b := backups[u]
		if b == nil || b.open == nil {
			return
		}
		for _, s := range b.open.chunks {
			held -= s.cost
		}
		p.packed <- b.open
		b.open = nil
	}
	add := func(b *packing, s sealed) {
		if b.open == nil {
			b.open = &pack{id: repo.NewPackID(), to: s.to}
		}
		b.open.chunks = append(b.open.chunks, s)
		b.open.bytes += len(s.data)
		if b.open.bytes >= p.packSize {
			send(s.to)
		}
	}
	for {
		select {
		case s, ok := <-p.sends:
			if !ok {
				for u := range backups {
					send(u)
				}
				return
			}
			s.to.sealing.Done()
			if p.packSize == 0 {
				p.packed <- &pack{chunks: []sealed{s}, bytes: len(s.data), to: s.to}
				continue
			}
			b := backups[s.to]
			if b == nil {
				b = &packing{waiting: map[int]sealed{}}
				backups[s.to] = b
			}
			held += s.cost
			b.waiting[s.seq] = s
			for {
				next, ok := b.waiting[b.next]
				if !ok {
					break
				}
				delete(b.waiting, b.next)
				b.next++
				add(b, next)
			}
			if held > p.capacity/2 {
				send(fullest(backups))
			}
		case u := <-p.flushes:
			// Every chunk u put has arrived: those still waiting follow a
			// chunk dropped when u was cancelled.
			if b := backups[u]; b != nil {
				for _, seq := range slices.Sorted(maps.Keys(b.waiting)) {
					add(b, b.waiting[seq])
				}
				send(u)
				delete(backups, u)
			}
			u.flushed <- struct{}{}
		}
	}
}

// packing is one backup's state in the packer.
type packing struct {
	open    *pack
	next    int            // seq of the chunk to add next
	waiting map[int]sealed // sealed before the chunks put ahead of them
}

// fullest is the backup with the fullest open pack.
func fullest(backups map[*uploads]*packing) *uploads {
	var best *uploads
	most := -1
	for u, b := range backups {
		if b.open != nil && b.open.bytes > most {
			best, most = u, b.open.bytes
		}
	}
	return best
}

func (p *uploadPool) send() {
	defer p.senders.Done()
	for pk := range p.packed {
		u := pk.to
		if u.ctx.Err() == nil {
			if err := p.store(pk); err != nil {
				u.fail(err)
			}
		}
		for _, s := range pk.chunks {
			bufpool.Backup.Put(s.data)
			p.budget.Release(s.cost)
			u.pending.Done()
		}
	}
}

// store puts one pack (or lone chunk) and records where its chunks are.
func (p *uploadPool) store(pk *pack) error {
	u := pk.to
	if pk.id == (repo.ChunkID{}) {
		s := pk.chunks[0]
		if err := p.repo.PutChunkDeferred(u.ctx, s.id, s.data); err != nil {
			return fmt.Errorf("store chunk %s: %w", s.id, err)
		}
		u.stored.Add(int64(len(s.data)))
		u.mu.Lock()
		u.ids = append(u.ids, s.id)
		u.placed[s.id] = repo.ChunkRef{ID: s.id, Size: s.size}
		u.mu.Unlock()
		return nil
	}
	refs := make([]repo.ChunkRef, len(pk.chunks))
	parts := make([][]byte, 0, len(pk.chunks)+1)
	var off int64
	for i, s := range pk.chunks {
		refs[i] = repo.ChunkRef{ID: s.id, Size: s.size, Pack: pk.id, Offset: off, Length: len(s.data)}
		parts = append(parts, s.data)
		off += int64(len(s.data))
	}
	tail := p.repo.PackTail(pk.id, refs)
	parts = append(parts, tail)
	if err := p.repo.PutPackDeferred(u.ctx, pk.id, parts); err != nil {
		return fmt.Errorf("store pack %s (%d chunks): %w", pk.id, len(refs), err)
	}
	u.stored.Add(off + int64(len(tail)))
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ids = append(u.ids, pk.id)
	for _, ref := range refs {
		if _, ok := u.placed[ref.ID]; !ok {
			u.placed[ref.ID] = ref
		}
	}
	return nil
}

// uploads is one backup's share of a pool: what it stored, where, and its
// first error. A failure cancels this backup's uploads, not the others'.
type uploads struct {
	ctx    context.Context
	cancel context.CancelFunc
	pool   *uploadPool
	// sealing counts the chunks put and not yet in a pack; pending those
	// not yet stored (or dropped).
	sealing sync.WaitGroup
	pending sync.WaitGroup
	flushed chan struct{}
	seq     int // put's count (put is called from one goroutine)
	stored  atomic.Int64
	mu      sync.Mutex
	err     error
	ids     []repo.ChunkID                 // objects stored, to be synced before the commit
	placed  map[repo.ChunkID]repo.ChunkRef // where each chunk stored is
}

func (p *uploadPool) start(ctx context.Context) *uploads {
	ctx, cancel := context.WithCancel(ctx)
	return &uploads{ctx: ctx, cancel: cancel, pool: p, flushed: make(chan struct{}), placed: map[repo.ChunkID]repo.ChunkRef{}}
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
	// Stored bytes are at most the plaintext plus the encoding's header
	// and tag; a chunk larger than the whole budget takes all of it. The
	// budget is taken here, in put's order, so a chunk the packer waits for
	// never waits for budget its successors hold.
	cost := min(int64(len(c.data))+64, u.pool.capacity)
	if err := u.pool.budget.Acquire(u.ctx, cost); err != nil {
		c.release()
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.err != nil {
			return u.err
		}
		return err
	}
	u.pending.Add(1)
	u.sealing.Add(1)
	seq := u.seq
	u.seq++
	select {
	case u.pool.jobs <- upload{id: id, seq: seq, cost: cost, chunk: c, to: u}:
		return nil
	case <-u.ctx.Done():
		u.pool.budget.Release(cost)
		u.sealing.Done()
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

// drain waits until every chunk put is stored or dropped: once each is in
// a pack, the open pack is sent.
func (u *uploads) drain() {
	u.sealing.Wait()
	u.pool.flushes <- u
	<-u.flushed
	u.pending.Wait()
}

// wait waits for this backup's uploads and returns the bytes stored.
func (u *uploads) wait() (int64, error) {
	u.drain()
	u.mu.Lock()
	defer u.mu.Unlock()
	err := u.err
	if err == nil {
		err = u.ctx.Err()
	}
	u.cancel()
	return u.stored.Load(), err
}

// storedIDs are the objects this backup stored (call after wait).
func (u *uploads) storedIDs() []repo.ChunkID {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ids
}

// place fills in where each chunk this backup stored (mine) is, in the
// refs of files (call after wait); the refs of chunks stored before carry
// their place from the index already.
func (u *uploads) place(files []repo.FileEntry, mine map[repo.ChunkID]bool) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range files {
		refs := files[i].Chunks
		for j := range refs {
			if !mine[refs[j].ID] {
				continue
			}
			at, ok := u.placed[refs[j].ID]
			if !ok {
				return fmt.Errorf("chunk %s of %s was not stored (an internal error; nothing was committed)", refs[j].ID, files[i].Path)
			}
			refs[j] = at
		}
	}
	return nil
}

func (u *uploads) abort() {
	u.cancel()
	u.drain()
}
