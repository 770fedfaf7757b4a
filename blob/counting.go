package blob

import (
	"context"
	"io"
	"sync/atomic"
)

// RequestStats counts the requests a Store made and the bytes it moved, so
// features can report what they cost on a cloud bill. Each retry is a
// request of its own.
type RequestStats struct {
	Puts      int64 `json:"puts"`
	Gets      int64 `json:"gets"`
	Stats     int64 `json:"stats"`
	Lists     int64 `json:"lists"`
	Deletes   int64 `json:"deletes"`
	Copies    int64 `json:"copies"`
	BytesUp   int64 `json:"bytes_up"`
	BytesDown int64 `json:"bytes_down"`
}

// Sub returns s - o, the requests made between two readings.
func (s RequestStats) Sub(o RequestStats) RequestStats {
	return RequestStats{
		Puts: s.Puts - o.Puts, Gets: s.Gets - o.Gets, Stats: s.Stats - o.Stats,
		Lists: s.Lists - o.Lists, Deletes: s.Deletes - o.Deletes, Copies: s.Copies - o.Copies,
		BytesUp: s.BytesUp - o.BytesUp, BytesDown: s.BytesDown - o.BytesDown,
	}
}

// Counting is a Store that counts the requests sent to the Store it wraps.
// Put it directly around the Bucket (inside Retrying) so retries count.
type Counting struct {
	Store
	puts, gets, stats, lists, deletes, copies, up, down atomic.Int64
}

var _ Store = (*Counting)(nil)

// NewCounting wraps s.
func NewCounting(s Store) *Counting { return &Counting{Store: s} }

// Unwrap returns the wrapped Store.
func (s *Counting) Unwrap() Store { return s.Store }

// RequestStats returns the counts so far.
func (s *Counting) RequestStats() RequestStats {
	return RequestStats{
		Puts: s.puts.Load(), Gets: s.gets.Load(), Stats: s.stats.Load(), Lists: s.lists.Load(),
		Deletes: s.deletes.Load(), Copies: s.copies.Load(), BytesUp: s.up.Load(), BytesDown: s.down.Load(),
	}
}

// Put implements Store.
func (s *Counting) Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error {
	s.puts.Add(1)
	// Content already in memory (a bytes.Reader) goes down as it is, so a
	// store can rewind it or send it without copying; what is left of it is
	// what is sent.
	if inMemory, ok := r.(interface {
		io.ReadSeeker
		Len() int
	}); ok {
		s.up.Add(int64(inMemory.Len()))
		return s.Store.Put(ctx, key, r, opts)
	}
	return s.Store.Put(ctx, key, &countingReader{r: r, n: &s.up}, opts)
}

// Get implements Store.
func (s *Counting) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	rc, err := s.Store.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return &countingReadCloser{countingReader: countingReader{r: rc, n: &s.down}, c: rc}, nil
}

// Stat implements Store.
func (s *Counting) Stat(ctx context.Context, key string) (Attributes, error) {
	s.stats.Add(1)
	return s.Store.Stat(ctx, key)
}

// List implements Store.
func (s *Counting) List(ctx context.Context, opts ListOptions) ([]Object, string, error) {
	s.lists.Add(1)
	return s.Store.List(ctx, opts)
}

// Delete implements Store.
func (s *Counting) Delete(ctx context.Context, key string) error {
	s.deletes.Add(1)
	return s.Store.Delete(ctx, key)
}

// Copy implements Store.
func (s *Counting) Copy(ctx context.Context, dstKey, srcKey string) error {
	s.copies.Add(1)
	return s.Store.Copy(ctx, dstKey, srcKey)
}

// StatsOf finds the Counting layer of s (through any decorators) and
// returns its counts; ok is false when s counts nothing.
func StatsOf(s Store) (stats RequestStats, ok bool) {
	if c, ok := Find[*Counting](s); ok {
		return c.RequestStats(), true
	}
	return RequestStats{}, false
}

// countingReader adds the bytes read to n. Retrying sits above Counting and
// rewinds the caller's reader, so a retried Put counts its bytes again: they
// were sent again.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// WriteTo hands the copy to the wrapped reader when it can write itself
// out (a bytes.Reader writes its slice as is): without it, a copy goes
// through a fresh 1 MiB buffer for every object.
func (c *countingReader) WriteTo(w io.Writer) (int64, error) {
	wt, ok := c.r.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{c}) // counts in Read; hides WriteTo
	}
	n, err := wt.WriteTo(w)
	c.n.Add(n)
	return n, err
}

type countingReadCloser struct {
	countingReader
	c io.Closer
}

func (c *countingReadCloser) Close() error { return c.c.Close() }

// Size passes through the size of the wrapped reader, when it knows it.
func (c *countingReadCloser) Size() int64 {
	if s, ok := c.r.(sizer); ok {
		return s.Size()
	}
	return -1
}
