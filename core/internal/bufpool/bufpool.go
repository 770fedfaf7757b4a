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
	kept   int64
	budget int64
}

// New returns a Pool keeping at most budget bytes of free buffers.
func New(budget int64) *Pool { return &Pool{budget: budget} }

// Default is the pool the backup and restore pipelines share: their working
// set (chunks in flight, validation queues) stays well inside it.
var Default = New(64 << 20)

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
		p.mu.Unlock()
		return b[:n]
	}
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
	if p.kept+int64(c) > p.budget {
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
