// Package bufpool recycles the large byte buffers a backup or restore moves
// chunks in. Fresh memory is expensive twice over: the runtime zeroes it and
// the kernel faults it in page by page, and under graphkeep's soft memory
// limit the runtime hands freed memory back to the kernel soon after. A
// pipeline that reuses a fixed working set of buffers pays for neither.
//
// Unlike sync.Pool, kept buffers survive garbage collections; what is kept is
// bounded by a byte budget.
package bufpool

import (
	"math/bits"
	"sync"
)

// Buffers come in power-of-two capacities from 1<<minShift to 1<<maxShift;
// larger requests are allocated and dropped as usual.
const (
	minShift = 12
	maxShift = 27
)

// Pool keeps freed buffers for reuse. The zero value is not usable; use New.
type Pool struct {
	mu     sync.Mutex
	free   [maxShift + 1][][]byte
	kept   int64 // bytes of free buffers
	out    int64 // bytes of buffers handed out and not yet put back
	budget int64
}

// New returns a Pool whose buffers, handed out and kept free together,
// stay within budget bytes as far as keeping goes: a buffer put back is
// kept only while they do. In-use memory is never limited here (that is
// the callers' budgets); what the pool adds to it is, so the heap of a
// pipeline using it peaks near max(in use, budget) rather than their sum.
func New(budget int64) *Pool { return &Pool{budget: budget} }

// Backup is the pool of the backup pipeline: its budget holds a backup's
// working set (32 MiB of encoded chunks waiting for upload, the chunks
// being validated) under graphkeep's 96 MiB soft memory limit. At 64 MiB a
// 10 GB backup to MinIO held the heap at the limit, where the collector ran
// 4,500 times (40 MiB: 350 times, 1:12 -> 1:03, peak RSS 149 -> 138 MiB).
var Backup = New(40 << 20)

// Restore is the pool of the restore pipeline: its 32 MiB read-ahead,
// plaintext and stored forms. With 40 MiB, restores at 30 ms were slower
// (3.45 against 2.84 s for 525 MiB): buffers of the sizes it needs next
// were dropped and made again. A process restoring and backing up at once
// holds both pools.
var Restore = New(64 << 20)

// Get returns a buffer of length n; its contents are undefined.
func (p *Pool) Get(n int) []byte {
	shift := class(n)
	if shift > maxShift {
		return make([]byte, n)
	}
	p.mu.Lock()
	if free := p.free[shift]; len(free) > 0 {
		b := free[len(free)-1]
		free[len(free)-1] = nil
		p.free[shift] = free[:len(free)-1]
		p.kept -= int64(cap(b))
		p.out += int64(cap(b))
		p.mu.Unlock()
		return b[:n]
	}
	p.out += 1 << shift
	p.mu.Unlock()
	return make([]byte, n, 1<<shift)
}

// Put gives b back for reuse; the caller must not touch it afterwards.
// Buffers not from Get (capacity not a size class) are dropped.
func (p *Pool) Put(b []byte) {
	c := cap(b)
	shift := class(c)
	if c == 0 || c != 1<<shift || shift > maxShift {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = max(0, p.out-int64(c))
	if p.out+p.kept+int64(c) > p.budget {
		return
	}
	p.kept += int64(c)
	p.free[shift] = append(p.free[shift], b[:0])
}

// class is the smallest shift >= minShift with 1<<shift >= n.
func class(n int) int {
	if n <= 1<<minShift {
		return minShift
	}
	return bits.Len(uint(n - 1))
}
