// Package chunker splits a stream into content-defined chunks with FastCDC
// (Xia et al., USENIX ATC 2016): a gear rolling hash and normalized chunking,
// so that an insertion moves only the boundaries near it and the chunk sizes
// cluster around the average.
package chunker

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
)

// Params fix where boundaries fall. Two repositories with the same Params cut
// the same data the same way.
type Params struct {
	MinSize int    `json:"min_size"`
	AvgSize int    `json:"avg_size"`
	MaxSize int    `json:"max_size"`
	Seed    uint64 `json:"seed"` // selects the gear table
}

// DefaultParams: about 1 MiB on average, 256 KiB to 4 MiB.
func DefaultParams(seed uint64) Params {
	return Params{MinSize: 256 << 10, AvgSize: 1 << 20, MaxSize: 4 << 20, Seed: seed}
}

// ParamsForAverage scales the default shape (avg/4 to avg*4) to avg, which
// must be a power of two between 4 KiB and 64 MiB.
func ParamsForAverage(avg int, seed uint64) (Params, error) {
	p := Params{MinSize: avg / 4, AvgSize: avg, MaxSize: avg * 4, Seed: seed}
	return p, p.Validate()
}

// Validate checks the sizes make sense.
func (p Params) Validate() error {
	switch {
	case p.AvgSize < 4<<10 || p.AvgSize > 64<<20 || p.AvgSize&(p.AvgSize-1) != 0:
		return fmt.Errorf("chunker: average chunk size %d must be a power of two from 4 KiB to 64 MiB", p.AvgSize)
	case p.MinSize < 64 || p.MinSize >= p.AvgSize:
		return fmt.Errorf("chunker: minimum chunk size %d must be at least 64 and below the average %d", p.MinSize, p.AvgSize)
	case p.MaxSize <= p.AvgSize:
		return fmt.Errorf("chunker: maximum chunk size %d must exceed the average %d", p.MaxSize, p.AvgSize)
	}
	return nil
}

// Chunker reads a stream and returns its chunks one by one.
type Chunker struct {
	p            Params
	gear         *[256]uint64
	maskS, maskL uint64
	r            io.Reader
	buf          []byte
	start, end   int // unconsumed data is buf[start:end]
	eof          bool
	// The chunk at start is scanned as data arrives: buf[start:start+scanned]
	// has been rolled into fp without a boundary. The gear hash depends only
	// on the bytes, so resuming where a scan stopped finds the boundary a
	// scan of a whole MaxSize window would.
	scanned int
	fp      uint64
}

// New returns a Chunker over r. It allocates one buffer of 1.25 x MaxSize.
func New(r io.Reader, p Params) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b := bits.Len(uint(p.AvgSize)) - 1
	return &Chunker{
		p:     p,
		gear:  gearTable(p.Seed),
		maskS: topBits(b + 2), // harder to match before the average size
		maskL: topBits(b - 2), // easier after it
		r:     r,
		buf:   make([]byte, p.MaxSize+p.MaxSize/4),
	}, nil
}

// Reset points the Chunker at a new stream, keeping its buffer.
func (c *Chunker) Reset(r io.Reader) {
	c.r, c.start, c.end, c.eof = r, 0, 0, false
	c.scanned, c.fp = 0, 0
}

// Next returns the next chunk, or io.EOF after the last. The slice is valid
// until the next call.
//
// It reads only until the chunk's boundary is known, so what is left over
// for the next chunk is what the last read brought beyond it; when the
// buffer is full, the chunk begun so far moves to its front. That moves a
// fraction of the bytes a "keep MaxSize ahead" buffer moves, in a buffer
// that needs room for one chunk and a read, not two chunks.
func (c *Chunker) Next() ([]byte, error) {
	for {
		data := c.buf[c.start:c.end]
		if n, ok := c.boundary(data); ok {
			if n == 0 {
				return nil, io.EOF
			}
			c.start += n
			c.scanned, c.fp = 0, 0
			return data[:n], nil
		}
		if err := c.read(); err != nil {
			return nil, err
		}
	}
}

// read appends what the stream has to the buffer, first moving the
// unconsumed data to its front when the buffer is full.
func (c *Chunker) read() error {
	if c.end == len(c.buf) {
		copy(c.buf, c.buf[c.start:c.end])
		c.end -= c.start
		c.start = 0
	}
	for {
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		switch {
		case errors.Is(err, io.EOF):
			c.eof = true
			return nil
		case err != nil:
			return err
		case n > 0:
			return nil
		}
	}
}

// boundary returns the length of the chunk at the start of data, when what
// has been read decides it: ok is false while more data could move it.
func (c *Chunker) boundary(data []byte) (n int, ok bool) {
	whole := c.eof || len(data) >= c.p.MaxSize // nothing more can be seen
	limit := min(len(data), c.p.MaxSize)
	if limit <= c.p.MinSize {
		return limit, whole
	}
	if c.scanned < c.p.MinSize {
		c.scanned, c.fp = c.p.MinSize, 0
	}
	// Harder to match before the average size, easier after it.
	if c.scanned < c.p.AvgSize {
		normal := min(c.p.AvgSize, limit)
		end, fp, found := c.roll(data[:normal], c.scanned, c.fp, c.maskS)
		if found {
			return end, true
		}
		c.scanned, c.fp = normal, fp
		if normal < c.p.AvgSize {
			return limit, whole
		}
	}
	end, fp, found := c.roll(data[:limit], c.scanned, c.fp, c.maskL)
	if found {
		return end, true
	}
	c.scanned, c.fp = limit, fp
	return limit, whole
}

// roll continues the gear hash fp over d from i and returns the end of the
// chunk where fp first matches mask. The hash is the same whichever way the
// loop is written. Written byte by byte, each step waits for the last (a
// shift, then an add: two cycles a byte); here the hash four bytes on is
// fp<<4 plus a sum of the four table values, and the three hashes between
// are fp<<k plus partial sums, so every step depends on fp only through one
// shift and add. The subslice lets the compiler drop the bounds checks.
func (c *Chunker) roll(d []byte, i int, fp, mask uint64) (end int, fpOut uint64, found bool) {
	gear := c.gear
	for ; i+4 <= len(d); i += 4 {
		b := d[i : i+4 : i+4]
		g1 := gear[b[0]]
		g2 := g1<<1 + gear[b[1]]
		g3 := g2<<1 + gear[b[2]]
		g4 := g3<<1 + gear[b[3]]
		if f := fp<<1 + g1; f&mask == 0 {
			return i + 1, f, true
		}
		if f := fp<<2 + g2; f&mask == 0 {
			return i + 2, f, true
		}
		if f := fp<<3 + g3; f&mask == 0 {
			return i + 3, f, true
		}
		if fp = fp<<4 + g4; fp&mask == 0 {
			return i + 4, fp, true
		}
	}
	for ; i < len(d); i++ {
		if fp = fp<<1 + gear[d[i]]; fp&mask == 0 {
			return i + 1, fp, true
		}
	}
	return len(d), fp, false
}

// topBits is a mask of the n most significant bits: in a gear hash the high
// bits depend on the most bytes (up to 64).
func topBits(n int) uint64 {
	return ^uint64(0) << (64 - n)
}

func gearTable(seed uint64) *[256]uint64 {
	var g [256]uint64
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for i := range g {
		g[i] = r.Uint64()
	}
	return &g
}
