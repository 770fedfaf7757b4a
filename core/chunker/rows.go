package chunker

import (
	"bufio"
	"errors"
	"io"
)

// Rows splits a table's rows, one a line in key order (COPY's text
// format), into chunks that end at row boundaries chosen by the rows'
// keys. Whether a chunk ends after a row depends only on that row's key
// and length, so a row updated, inserted or deleted changes the chunk it
// is in (and at most the next), wherever the keys put it: with random keys
// (LightRAG's are hashes) a few percent of new rows touch a few percent of
// chunks, where byte-level chunking of large chunks would touch nearly all.
// A row longer than the maximum is cut at the maximum.
type Rows struct {
	p      Params
	keyOf  func(line []byte) []byte
	r      *bufio.Reader
	carry  []byte // the rest of the last piece read, not in a chunk yet
	buf    []byte
	head   []byte // the start of the row being read, for its key
	inRow  bool   // buf ends inside a row
	rowLen int
	eof    bool // r is at its end
}

// rowKeyPrefix bounds how much of a row its key is looked for in.
const rowKeyPrefix = 4 << 10

// NewRows returns a row chunker of r with sizes p; keyOf returns a row's
// key from its first bytes (up to 4 KiB; the whole row when shorter).
func NewRows(r io.Reader, p Params, keyOf func(line []byte) []byte) (*Rows, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Rows{p: p, keyOf: keyOf, r: bufio.NewReaderSize(r, 64<<10), buf: make([]byte, 0, p.MaxSize)}, nil
}

// Next returns the next chunk, valid until the next call; io.EOF at the
// end.
func (c *Rows) Next() ([]byte, error) {
	c.buf = c.buf[:0]
	for {
		piece := c.carry
		c.carry = nil
		if len(piece) == 0 {
			if c.eof {
				if len(c.buf) > 0 {
					return c.buf, nil
				}
				return nil, io.EOF
			}
			var err error
			piece, err = c.r.ReadSlice('\n')
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) && err != io.EOF {
				return nil, err
			}
			c.eof = err == io.EOF
		}
		for len(piece) > 0 {
			if !c.inRow {
				c.inRow, c.rowLen, c.head = true, 0, c.head[:0]
			}
			room := c.p.MaxSize - len(c.buf)
			take := min(room, len(piece))
			part := piece[:take]
			piece = piece[take:]
			if len(c.head) < rowKeyPrefix {
				c.head = append(c.head, part[:min(len(part), rowKeyPrefix-len(c.head))]...)
			}
			c.buf = append(c.buf, part...)
			c.rowLen += len(part)
			ended := part[len(part)-1] == '\n'
			if ended {
				c.inRow = false
				if len(c.buf) >= c.p.MinSize && c.cutAfter(c.head, c.rowLen) {
					c.carry = piece // still valid: r is not read until it is used
					return c.buf, nil
				}
			}
			if len(c.buf) == c.p.MaxSize {
				c.carry = piece
				return c.buf, nil
			}
		}
	}
}

// cutAfter: a chunk ends after a row with probability rowLen/(avg-min),
// decided by a hash of the row's key, so chunks average about avg bytes.
func (c *Rows) cutAfter(head []byte, rowLen int) bool {
	// FNV-1a, mixed with the seed: the same in every process.
	h := uint64(14695981039346656037) ^ c.p.Seed
	for _, b := range c.keyOf(head) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	span := uint64(c.p.AvgSize - c.p.MinSize)
	return h%span < uint64(rowLen)
}
