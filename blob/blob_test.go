package blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers"
)

func TestCountingCountsRequestsAndBytes(t *testing.T) {
	ctx := context.Background()
	s, err := providers.Open(ctx, "mem://counting-test", providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before, ok := blob.StatsOf(s)
	if !ok {
		t.Fatal("a store from providers.Open has no Counting layer")
	}
	if err := blob.PutBytes(ctx, s, "a", make([]byte, 1000), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.ReadAll(ctx, s, "a"); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Stat(ctx, "missing")
	_ = blob.Walk(ctx, s, "", func(blob.Object) error { return nil })
	_ = s.Delete(ctx, "a")
	after, _ := blob.StatsOf(s)
	got := after.Sub(before)
	want := blob.RequestStats{Puts: 1, Gets: 1, Stats: 1, Lists: 1, Deletes: 1, BytesUp: 1000, BytesDown: 1000}
	if got != want {
		t.Fatalf("counted %+v, want %+v", got, want)
	}
}

func TestErrorCategories(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}
	e := &blob.Error{Op: "get", Location: "s3://b/p", Key: "chunks/ab/cd", Kind: blob.ErrUnavailable, Err: refused}
	if !errors.Is(e, blob.ErrUnavailable) || !blob.IsTransient(e) {
		t.Fatalf("%v is not transient", e)
	}
	if !errors.Is(e, syscall.ECONNREFUSED) {
		t.Fatal("the underlying error is not reachable through errors.Is")
	}
	if got, want := blob.Reason(e), "dial: connect: connection refused"; got != want {
		t.Fatalf("Reason = %q, want %q", got, want)
	}
	if got, want := e.Error(), `s3://b/p: get "chunks/ab/cd": storage unavailable: dial tcp: connect: connection refused`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestReadIntoReusesTheBuffer(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{"mem://read-into", "file://" + t.TempDir() + "?create=true"} {
		s, err := providers.Open(ctx, url, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 5000)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if err := blob.PutBytes(ctx, s, "k", data, nil); err != nil {
			t.Fatal(err)
		}
		if err := blob.PutBytes(ctx, s, "empty", nil, nil); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10, 8192)
		got, err := blob.ReadInto(ctx, s, "k", buf)
		if err != nil || string(got) != string(data) {
			t.Fatalf("%s: read %d bytes, %v", url, len(got), err)
		}
		if &got[0] != &buf[:1][0] {
			t.Errorf("%s: a buffer with room was not reused", url)
		}
		small := make([]byte, 0, 100)
		if got, err = blob.ReadInto(ctx, s, "k", small); err != nil || string(got) != string(data) {
			t.Fatalf("%s: into a small buffer: %d bytes, %v", url, len(got), err)
		}
		if got, err = blob.ReadInto(ctx, s, "empty", buf); err != nil || len(got) != 0 {
			t.Fatalf("%s: empty object: %d bytes, %v", url, len(got), err)
		}
		if _, err = blob.ReadInto(ctx, s, "missing", buf); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("%s: missing object: %v", url, err)
		}
	}
}

// writerToStore records whether Put's reader could write itself out.
type writerToStore struct {
	blob.Store
	sawWriterTo bool
}

func (s *writerToStore) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	_, s.sawWriterTo = r.(io.WriterTo)
	_, err := io.Copy(io.Discard, r)
	return err
}

// Counting keeps a bytes.Reader's WriteTo visible, so drivers copy the
// caller's slice instead of through a fresh buffer per object, and still
// counts the bytes.
func TestCountingKeepsWriteTo(t *testing.T) {
	inner := &writerToStore{}
	s := blob.NewCounting(inner)
	if err := blob.PutBytes(context.Background(), s, "k", make([]byte, 4096), nil); err != nil {
		t.Fatal(err)
	}
	if !inner.sawWriterTo {
		t.Fatal("the reader Counting passed down hides WriteTo")
	}
	if st := s.RequestStats(); st.BytesUp != 4096 {
		t.Fatalf("counted %d bytes up, want 4096", st.BytesUp)
	}
	if err := s.Put(context.Background(), "k2", io.LimitReader(bytes.NewReader(make([]byte, 100)), 100), nil); err != nil {
		t.Fatal(err)
	}
	if st := s.RequestStats(); st.BytesUp != 4196 {
		t.Fatalf("counted %d bytes up, want 4196", st.BytesUp)
	}
}

// Content in memory reaches the store as it is (so a provider can rewind
// and send it without a copy) and is counted all the same.
func TestCountingPassesInMemoryContentThrough(t *testing.T) {
	ctx := context.Background()
	var seen io.Reader
	s, err := providers.Open(ctx, "mem://counting-passthrough", providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyStore{Store: s, put: func(r io.Reader) { seen = r }}
	c := blob.NewCounting(spy)
	body := bytes.NewReader(make([]byte, 700))
	if err := c.Put(ctx, "k", body, nil); err != nil {
		t.Fatal(err)
	}
	if seen != io.Reader(body) {
		t.Fatalf("the store got a %T, want the caller's *bytes.Reader", seen)
	}
	if err := c.Put(ctx, "s", io.LimitReader(bytes.NewReader(make([]byte, 300)), 300), nil); err != nil {
		t.Fatal(err)
	}
	if got := c.RequestStats(); got.Puts != 2 || got.BytesUp != 1000 {
		t.Fatalf("counted %+v, want 2 puts and 1000 bytes up", got)
	}
}

type spyStore struct {
	blob.Store
	put func(io.Reader)
}

func (s *spyStore) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	s.put(r)
	return s.Store.Put(ctx, key, r, opts)
}

// LockProbe asks until it gets an answer, then keeps it; a failure is not
// kept (a transient error must not refuse every later locked write).
func TestLockProbeKeepsAnswersNotFailures(t *testing.T) {
	var p blob.LockProbe
	asked := 0
	fail := true
	ask := func(context.Context) (bool, error) {
		asked++
		if fail {
			return false, blob.ErrUnavailable
		}
		return true, nil
	}
	if _, err := p.Enabled(context.Background(), ask); err == nil {
		t.Fatal("the failure was not returned")
	}
	fail = false
	for range 3 {
		if on, err := p.Enabled(context.Background(), ask); err != nil || !on {
			t.Fatalf("after the failure: %v %v", on, err)
		}
	}
	if asked != 2 {
		t.Fatalf("asked %d times, want 2 (once failing, once answering)", asked)
	}
}

// seekerSpy records whether each Put was given a seekable body.
type seekerSpy struct {
	blob.Store
	seekable []bool
}

func (s *seekerSpy) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	_, ok := r.(io.Seeker)
	s.seekable = append(s.seekable, ok)
	return s.Store.Put(ctx, key, r, opts)
}

// Transfer puts an object of a pack's size from memory (a seekable body,
// which an S3 store sends as one PutObject instead of a multipart upload),
// and streams a bigger one.
func TestTransferPutsPacksFromMemory(t *testing.T) {
	ctx := context.Background()
	src, err := providers.Open(ctx, "mem://transfer-src", providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := providers.Open(ctx, "mem://transfer-dst", providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := &seekerSpy{Store: mem}
	small, big := bytes.Repeat([]byte("p"), 8<<20), bytes.Repeat([]byte("b"), 17<<20)
	for key, data := range map[string][]byte{"small": small, "big": big} {
		if err := blob.PutBytes(ctx, src, key, data, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"small", "big"} {
		n, err := blob.Transfer(ctx, dst, key, src, key, nil, blob.RetryPolicy{})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := blob.ReadAll(ctx, mem, key)
		if want, _ := blob.ReadAll(ctx, src, key); n != int64(len(want)) || !bytes.Equal(got, want) {
			t.Fatalf("%s: copied %d bytes, content equal %v", key, n, bytes.Equal(got, want))
		}
	}
	if len(dst.seekable) != 2 || !dst.seekable[0] || dst.seekable[1] {
		t.Fatalf("seekable bodies %v, want the 8 MiB object from memory and the 17 MiB one streamed", dst.seekable)
	}
}
