package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how patiently transient failures are retried.
type RetryPolicy struct {
	// Attempts is the total number of tries, the first included. Default 5.
	Attempts int
	// BaseDelay is the wait before the second try; it doubles each time.
	// Default 200ms.
	BaseDelay time.Duration
	// MaxDelay caps one wait. Default 5s.
	MaxDelay time.Duration
}

// ApplyDefaults fills the zero fields.
func (p *RetryPolicy) ApplyDefaults() {
	if p.Attempts <= 0 {
		p.Attempts = 5
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 200 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 5 * time.Second
	}
}

// delay is the full-jitter wait before try number attempt+1.
func (p RetryPolicy) delay(attempt int) time.Duration {
	d := p.BaseDelay << attempt
	if d <= 0 || d > p.MaxDelay {
		d = p.MaxDelay
	}
	return d/2 + rand.N(d/2+1)
}

// Retry calls fn until it succeeds, fails with an error that is not
// transient, the attempts are spent, or ctx ends. It never retries after ctx
// is cancelled and never retries ErrNotFound.
func Retry(ctx context.Context, p RetryPolicy, fn func() error) error {
	p.ApplyDefaults()
	var err error
	for attempt := 0; attempt < p.Attempts; attempt++ {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if err != nil {
				return err
			}
			return ctxErr
		}
		if err = fn(); err == nil || !IsTransient(err) {
			return err
		}
		if attempt == p.Attempts-1 {
			break
		}
		t := time.NewTimer(p.delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}

// Retrying is a Store that retries transient failures of the Store it wraps.
type Retrying struct {
	Store
	Policy RetryPolicy
}

var _ Store = (*Retrying)(nil)

// NewRetrying wraps s with retries under p (zero fields take defaults).
func NewRetrying(s Store, p RetryPolicy) *Retrying {
	p.ApplyDefaults()
	return &Retrying{Store: s, Policy: p}
}

// Unwrap returns the wrapped Store.
func (s *Retrying) Unwrap() Store { return s.Store }

// Put retries only when r can be rewound to where it started.
//
// Each attempt reads a body of its own when r can be read at offsets (a
// bytes.Reader, a file): an HTTP transport may go on reading an attempt's
// body after the attempt has returned (http.RoundTripper may close it from
// another goroutine), and two readers moving one position cut the retry's
// body short, which S3 answers with IncompleteBody.
func (s *Retrying) Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error {
	seeker, ok := r.(io.Seeker)
	if !ok {
		return s.Store.Put(ctx, key, r, opts)
	}
	start, err := seeker.Seek(0, io.SeekCurrent)
	if err != nil {
		return s.Store.Put(ctx, key, r, opts)
	}
	body := func() (io.Reader, error) {
		if at, ok := r.(readerAtWithSize); ok {
			return attemptBody{io.NewSectionReader(at, start, at.Size()-start)}, nil
		}
		_, err := seeker.Seek(start, io.SeekStart)
		return r, err
	}
	failed := false
	err = Retry(ctx, s.Policy, func() error {
		b, err := body()
		if err != nil {
			return err
		}
		err = s.Store.Put(ctx, key, b, opts)
		if IsTransient(err) {
			failed = true
		}
		return err
	})
	// A create-if-absent that failed transiently may have landed all the
	// same (the answer was lost): then its retry finds the object there.
	// When what is there is what we wrote, the create succeeded.
	if errors.Is(err, ErrExists) && failed && opts != nil && opts.IfAbsent {
		if b, berr := body(); berr == nil {
			if same, cerr := sameContent(ctx, s.Store, key, b); cerr == nil && same {
				return nil
			}
		}
	}
	return err
}

// readerAtWithSize is a body that can be read at offsets, as
// bytes.Reader and io.SectionReader can.
type readerAtWithSize interface {
	io.ReaderAt
	Size() int64
}

// attemptBody is one attempt's view of a body in memory. Like a
// bytes.Reader it says how much is left (Len), so the stores below see
// content in memory and send it without copying.
type attemptBody struct{ *io.SectionReader }

// Len is the number of bytes not yet read.
func (b attemptBody) Len() int {
	pos, _ := b.Seek(0, io.SeekCurrent)
	return int(b.Size() - pos)
}

// sameContent reports whether the object at key holds exactly what r has
// left to read.
func sameContent(ctx context.Context, s Store, key string, r io.Reader) (bool, error) {
	rc, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	a, b := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		na, errA := io.ReadFull(r, a)
		nb, errB := io.ReadFull(rc, b)
		if na != nb || !bytes.Equal(a[:na], b[:nb]) {
			return false, nil
		}
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		switch {
		case endA && endB:
			return true, nil
		case endA != endB:
			return false, nil
		case errA != nil:
			return false, errA
		case errB != nil:
			return false, errB
		}
	}
}

// Get retries opening the object; a failure in the middle of reading is the
// caller's to handle.
func (s *Retrying) Get(ctx context.Context, key string, offset, length int64) (rc io.ReadCloser, err error) {
	err = Retry(ctx, s.Policy, func() error {
		rc, err = s.Store.Get(ctx, key, offset, length)
		return err
	})
	return rc, err
}

// Stat implements Store with retries.
func (s *Retrying) Stat(ctx context.Context, key string) (a Attributes, err error) {
	err = Retry(ctx, s.Policy, func() error {
		a, err = s.Store.Stat(ctx, key)
		return err
	})
	return a, err
}

// List implements Store with retries.
func (s *Retrying) List(ctx context.Context, opts ListOptions) (objs []Object, next string, err error) {
	err = Retry(ctx, s.Policy, func() error {
		objs, next, err = s.Store.List(ctx, opts)
		return err
	})
	return objs, next, err
}

// Delete implements Store with retries.
func (s *Retrying) Delete(ctx context.Context, key string) error {
	return Retry(ctx, s.Policy, func() error { return s.Store.Delete(ctx, key) })
}

// Copy implements Store with retries.
func (s *Retrying) Copy(ctx context.Context, dstKey, srcKey string) error {
	return Retry(ctx, s.Policy, func() error { return s.Store.Copy(ctx, dstKey, srcKey) })
}
