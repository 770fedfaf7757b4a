package blob

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	gcblob "gocloud.dev/blob"
)

// Options configure a Bucket.
type Options struct {
	// Location names the store in errors and logs ("s3://bucket/prefix").
	// It must not carry secrets.
	Location string
	// Classify teaches the layer provider error codes gocloud leaves as
	// Unknown. Optional.
	Classify Classifier
	// Release, when set, is called by Close instead of closing the gocloud
	// bucket: for buckets shared between Stores (mem) or clients the
	// provider owns (a GCS client made for an emulator endpoint).
	Release func() error
	// Requests is how many requests to keep in flight against the bucket
	// (see Parallel); 0 means LocalRequests.
	Requests int
}

// Bucket is the Store over a gocloud *blob.Bucket. Providers open the
// bucket; Bucket translates errors. A provider whose driver leaves gaps
// (fileblob) closes them in its own Store around a Bucket.
type Bucket struct {
	b    *gcblob.Bucket
	opts Options
}

var _ Store = (*Bucket)(nil)

// New wraps b. The Bucket owns b and closes it in Close.
func New(b *gcblob.Bucket, opts Options) *Bucket {
	return &Bucket{b: b, opts: opts}
}

// Location implements Store.
func (s *Bucket) Location() string { return s.opts.Location }

// Requests implements Parallel.
func (s *Bucket) Requests() int { return s.opts.Requests }

// Put implements Store.
func (s *Bucket) Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error {
	if opts == nil {
		opts = &PutOptions{}
	}
	if err := s.put(ctx, key, r, opts); err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

func (s *Bucket) put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error {
	if opts.Retain != nil {
		return fmt.Errorf("%w: locking objects (retention)", ErrUnsupported)
	}
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	// Cancelling wctx before Close is how a gocloud write is abandoned.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.b.NewWriter(wctx, key, &gcblob.WriterOptions{ContentType: contentType, IfNotExist: opts.IfAbsent})
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		_ = w.Close()
		return err
	}
	return w.Close()
}

// Get implements Store.
func (s *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, s.fail("get", key, fmt.Errorf("%w: negative offset %d", ErrInvalid, offset))
	}
	r, err := s.b.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	return &readCloser{r: r, size: r.Size(), fail: func(err error) error { return s.fail("get", key, err) }}, nil
}

// readCloser reports read errors the same way Get reports open errors.
type readCloser struct {
	r    io.ReadCloser
	size int64
	fail func(error) error
}

// Size is the number of bytes the reader will return.
func (rc *readCloser) Size() int64 { return rc.size }

func (rc *readCloser) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	if err != nil && err != io.EOF {
		err = rc.fail(err)
	}
	return n, err
}

func (rc *readCloser) Close() error { return rc.r.Close() }

// Stat implements Store.
func (s *Bucket) Stat(ctx context.Context, key string) (Attributes, error) {
	a, err := s.b.Attributes(ctx, key)
	if err != nil {
		return Attributes{}, s.fail("stat", key, err)
	}
	return Attributes{Size: a.Size, ModTime: a.ModTime, ETag: a.ETag}, nil
}

// List implements Store.
func (s *Bucket) List(ctx context.Context, opts ListOptions) ([]Object, string, error) {
	token := gcblob.FirstPageToken
	if opts.Token != "" {
		var err error
		if token, err = base64.RawURLEncoding.DecodeString(opts.Token); err != nil {
			return nil, "", s.fail("list", opts.Prefix, fmt.Errorf("%w: malformed page token", ErrInvalid))
		}
	}
	size := opts.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	page, next, err := s.b.ListPage(ctx, token, size, &gcblob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err != nil && err != io.EOF {
		return nil, "", s.fail("list", opts.Prefix, err)
	}
	objects := make([]Object, 0, len(page))
	for _, o := range page {
		objects = append(objects, Object{Key: o.Key, Size: o.Size, ModTime: o.ModTime, IsDir: o.IsDir})
	}
	return objects, base64.RawURLEncoding.EncodeToString(next), nil
}

// Delete implements Store.
func (s *Bucket) Delete(ctx context.Context, key string) error {
	err := s.b.Delete(ctx, key)
	if err != nil && !errors.Is(classify(err, s.opts.Classify), ErrNotFound) {
		return s.fail("delete", key, err)
	}
	return nil
}

// Copy implements Store.
func (s *Bucket) Copy(ctx context.Context, dstKey, srcKey string) error {
	if err := s.b.Copy(ctx, dstKey, srcKey, nil); err != nil {
		return s.fail("copy", srcKey+" -> "+dstKey, err)
	}
	return nil
}

// Close implements Store.
func (s *Bucket) Close() error {
	if s.opts.Release != nil {
		return s.opts.Release()
	}
	return s.b.Close()
}

// Probe asks the provider whether the bucket exists and the credentials
// reach it, within timeout. It returns nil, or a *Error wrapping
// ErrNotFound (no such bucket), ErrPermission or ErrUnavailable.
func (s *Bucket) Probe(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := s.b.IsAccessible(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		return &Error{Op: "probe", Location: s.opts.Location, Kind: ErrUnavailable,
			Err: fmt.Errorf("no answer within %s", timeout)}
	case err != nil:
		e := s.fail("probe", "", err).(*Error)
		if e.Kind == nil {
			e.Kind = ErrUnavailable
		}
		return e
	case !ok:
		return &Error{Op: "probe", Location: s.opts.Location, Kind: ErrNotFound, Err: errors.New("the bucket does not exist")}
	}
	return nil
}

// Wrap turns an error of the driver into the *Error callers test with
// errors.Is; providers that call the driver themselves use it.
func (s *Bucket) Wrap(op, key string, err error) error { return s.fail(op, key, err) }

// fail wraps err into an *Error with its category.
func (s *Bucket) fail(op, key string, err error) error {
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	kind := classify(err, s.opts.Classify)
	if errors.Is(err, ErrExists) || errors.Is(err, ErrInvalid) {
		kind = nil // the sentinel is already in the chain
	}
	return &Error{Op: op, Location: s.opts.Location, Key: key, Kind: kind, Err: err}
}
