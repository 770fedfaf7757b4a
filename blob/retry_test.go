package blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers"
)

// flaky fails its first `failures` calls of each method with err.
type flaky struct {
	blob.Store
	failures int
	err      error
	calls    int
	bodies   []string
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	f.calls++
	body, _ := io.ReadAll(r)
	f.bodies = append(f.bodies, string(body))
	if f.calls <= f.failures {
		return f.err
	}
	return nil
}

func (f *flaky) Stat(ctx context.Context, key string) (blob.Attributes, error) {
	f.calls++
	if f.calls <= f.failures {
		return blob.Attributes{}, f.err
	}
	return blob.Attributes{Size: 1}, nil
}

var (
	transient = &blob.Error{Op: "stat", Key: "k", Kind: blob.ErrUnavailable, Err: errors.New("503")}
	notFound  = &blob.Error{Op: "stat", Key: "k", Kind: blob.ErrNotFound, Err: errors.New("404")}
	fast      = blob.RetryPolicy{Attempts: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
)

func TestRetrying(t *testing.T) {
	for _, c := range []struct {
		name      string
		failures  int
		err       error
		wantCalls int
		wantErr   error
	}{
		{"transient then success", 2, transient, 3, nil},
		{"transient every time", 10, transient, 4, blob.ErrUnavailable},
		{"not found is permanent", 10, notFound, 1, blob.ErrNotFound},
		{"unknown errors are permanent", 10, errors.New("boom"), 1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &flaky{failures: c.failures, err: c.err}
			_, err := blob.NewRetrying(f, fast).Stat(context.Background(), "k")
			if got, want := f.calls, c.wantCalls; got != want {
				t.Fatalf("calls = %d, want %d", got, want)
			}
			switch {
			case c.wantErr != nil && !errors.Is(err, c.wantErr):
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			case c.failures < c.wantCalls && err != nil:
				t.Fatalf("err = %v, want success", err)
			}
		})
	}
}

func TestRetryingStopsWhenCancelled(t *testing.T) {
	f := &flaky{failures: 100, err: transient}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := blob.NewRetrying(f, fast).Stat(ctx, "k")
	if err == nil || f.calls != 0 {
		t.Fatalf("after cancel: calls = %d, err = %v; want no call and an error", f.calls, err)
	}
}

func TestRetryingRewindsSeekableBodies(t *testing.T) {
	f := &flaky{failures: 2, err: transient}
	err := blob.NewRetrying(f, fast).Put(context.Background(), "k", bytes.NewReader([]byte("payload")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(f.bodies, ","), "payload,payload,payload"; got != want {
		t.Fatalf("bodies sent = %q, want %q", got, want)
	}
}

func TestRetryingDoesNotRetryStreams(t *testing.T) {
	f := &flaky{failures: 1, err: transient}
	err := blob.NewRetrying(f, fast).Put(context.Background(), "k", io.MultiReader(strings.NewReader("stream")), nil)
	if !errors.Is(err, blob.ErrUnavailable) || f.calls != 1 {
		t.Fatalf("calls = %d, err = %v; want one call and the transient error", f.calls, err)
	}
}

// landsThenFails stores the first create-if-absent and then answers as if
// the connection broke: the answer is lost, the object is there.
type landsThenFails struct {
	blob.Store
	lost  bool
	other []byte // when set, the first attempt finds another writer storing this
}

func (s *landsThenFails) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	if s.other != nil && !s.lost {
		s.lost = true
		_ = blob.PutBytes(ctx, s.Store, key, s.other, nil)
		return blob.ErrUnavailable
	}
	err := s.Store.Put(ctx, key, r, opts)
	if err == nil && !s.lost {
		s.lost = true
		return blob.ErrUnavailable
	}
	return err
}

// TestCreateIfAbsentIsRetrySafe: a create-if-absent whose answer was lost
// is retried, finds its own object and succeeds; one that finds another
// writer's object still fails with ErrExists.
func TestCreateIfAbsentIsRetrySafe(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		already string // another writer's content, "" for none
		want    error
	}{{"own object", "", nil}, {"another writer's", "theirs", blob.ErrExists}} {
		t.Run(c.name, func(t *testing.T) {
			mem := newMemStore(t)
			if c.already != "" {
				mem = &landsThenFails{Store: mem, other: []byte(c.already)}
			} else {
				mem = &landsThenFails{Store: mem}
			}
			s := blob.NewRetrying(mem, blob.RetryPolicy{BaseDelay: time.Millisecond})
			err := s.Put(ctx, "k", bytes.NewReader([]byte("mine")), &blob.PutOptions{IfAbsent: true})
			if !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
				t.Fatalf("Put = %v, want %v", err, c.want)
			}
		})
	}
}

var memSeq int

func newMemStore(t *testing.T) blob.Store {
	t.Helper()
	memSeq++
	s, err := providers.Open(context.Background(), fmt.Sprintf("mem://retry-test-%d", memSeq), providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// lingering fails its first Put with a transient error and, like an HTTP
// transport, goes on reading that attempt's body after returning: the
// retry must still send the whole body.
type lingering struct {
	blob.Store
	calls  int
	retry  chan struct{} // closed when the second attempt starts
	stale  chan struct{} // closed once the first attempt's late read is done
	bodies []string
}

func (l *lingering) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	l.calls++
	if l.calls == 1 {
		go func() {
			<-l.retry
			_, _ = io.ReadFull(r, make([]byte, 4))
			close(l.stale)
		}()
		return transient
	}
	close(l.retry)
	<-l.stale
	body, _ := io.ReadAll(r)
	l.bodies = append(l.bodies, string(body))
	return nil
}

func TestRetryingGivesEachAttemptItsOwnBody(t *testing.T) {
	l := &lingering{retry: make(chan struct{}), stale: make(chan struct{})}
	if err := blob.NewRetrying(l, fast).Put(context.Background(), "k", bytes.NewReader([]byte("the whole payload")), nil); err != nil {
		t.Fatal(err)
	}
	if len(l.bodies) != 1 || l.bodies[0] != "the whole payload" {
		t.Fatalf("the retry sent %q, want the whole payload: the first attempt's late read moved its position", l.bodies)
	}
}

// inMemory records whether a Put's body still looked like content in memory
// (seekable, with its length): stores send such bodies without copying.
type inMemory struct {
	blob.Store
	seekable bool
}

func (m *inMemory) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	_, m.seekable = r.(interface {
		io.ReadSeeker
		Len() int
	})
	_, _ = io.ReadAll(r)
	return nil
}

func TestRetryingKeepsBodiesInMemorySeekable(t *testing.T) {
	m := &inMemory{}
	if err := blob.NewRetrying(blob.NewCounting(m), fast).Put(context.Background(), "k", bytes.NewReader([]byte("payload")), nil); err != nil {
		t.Fatal(err)
	}
	if !m.seekable {
		t.Fatal("a body in memory reached the store as a stream: S3 would copy it before sending")
	}
}
