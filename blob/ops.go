package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// Walk calls fn for every object under prefix, page by page, in key order.
// It stops at the first error fn returns and returns it.
func Walk(ctx context.Context, s Store, prefix string, fn func(Object) error) error {
	return walk(ctx, s, ListOptions{Prefix: prefix}, fn)
}

// WalkKeys is Walk for callers that need only the keys (ListOptions.KeysOnly):
// fn's Object may lack its size and time.
func WalkKeys(ctx context.Context, s Store, prefix string, fn func(Object) error) error {
	return walk(ctx, s, ListOptions{Prefix: prefix, KeysOnly: true}, fn)
}

func walk(ctx context.Context, s Store, opts ListOptions, fn func(Object) error) error {
	for {
		objs, next, err := s.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := fn(o); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		opts.Token = next
	}
}

// sizer is a reader that knows how many bytes it will return.
type sizer interface{ Size() int64 }

// ReadAll reads the whole object at key, into one allocation when the
// store says the size.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	return ReadInto(ctx, s, key, nil)
}

// ReadInto reads the object at key into buf, reusing its memory when the
// object fits (it is grown otherwise), and returns the bytes read.
func ReadInto(ctx context.Context, s Store, key string, buf []byte) ([]byte, error) {
	rc, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf = buf[:0]
	if sz, ok := rc.(sizer); ok && sz.Size() >= 0 && sz.Size() < 1<<30 {
		n := int(sz.Size())
		if cap(buf) < n {
			buf = make([]byte, 0, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(rc, buf); err != nil {
			return nil, err
		}
		// Normally at the end now; an object that grew meanwhile is read on.
		var probe [1]byte
		n, err := io.ReadAtLeast(rc, probe[:], 1)
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, err
		}
		buf = append(buf, probe[:n]...)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// PutBytes stores data under key. A bytes.Reader can be rewound, so a
// retrying Store retries it.
func PutBytes(ctx context.Context, s Store, key string, data []byte, opts *PutOptions) error {
	return s.Put(ctx, key, bytes.NewReader(data), opts)
}

// Exists reports whether key exists.
func Exists(ctx context.Context, s Store, key string) (bool, error) {
	_, err := s.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

// Transfer copies srcKey of src into dstKey of dst, for copies between two
// stores (two buckets, or two providers): an object of up to
// transferInMemory is read whole and put from memory (one request), a
// larger one is streamed without being held. A transient failure restarts
// the whole transfer, up to the policy's attempts. It returns the bytes
// copied.
func Transfer(ctx context.Context, dst Store, dstKey string, src Store, srcKey string, opts *PutOptions, p RetryPolicy) (int64, error) {
	var n int64
	err := Retry(ctx, p, func() error {
		rc, err := src.Get(ctx, srcKey, 0, -1)
		if err != nil {
			return err
		}
		defer rc.Close()
		if sz, ok := rc.(sizer); ok && sz.Size() >= 0 && sz.Size() <= transferInMemory {
			buf := make([]byte, sz.Size())
			if _, err := io.ReadFull(rc, buf); err != nil {
				return err
			}
			n = int64(len(buf))
			return dst.Put(ctx, dstKey, bytes.NewReader(buf), opts)
		}
		cr := &countedReader{r: rc}
		err = dst.Put(ctx, dstKey, cr, opts)
		n = cr.n
		return err
	})
	if err != nil {
		return n, fmt.Errorf("transfer %q from %s to %s: %w", srcKey, src.Location(), dst.Location(), err)
	}
	return n, nil
}

// transferInMemory is the largest object Transfer reads whole and puts
// from memory: a store sends it in one request (streamed, an S3 upload of
// a pack goes multipart: four requests and buffers of its own, which made
// a replication of 8 MiB packs peak at 167 MiB).
const transferInMemory = 16 << 20

type countedReader struct {
	r io.Reader
	n int64
}

func (c *countedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
