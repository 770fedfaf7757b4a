package blob_test

import (
	"context"
	"errors"
	"fmt"
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
