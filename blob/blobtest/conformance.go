// Package blobtest is the conformance suite every storage provider passes.
// A provider's test plugs a Harness into RunConformance; the suite proves the
// guarantees graphkeep's repository format relies on: atomic visibility,
// create-if-absent with exactly one winner, complete paginated listings,
// ranged reads, error categories.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
)

// Harness opens Stores for the suite.
type Harness interface {
	// NewLocation prepares a new, empty location (a bucket, or a prefix in
	// one) and returns an opener for it. Each call of the opener returns an
	// independent Store over that same location, as another process would
	// open it. The suite closes the Stores it opens.
	NewLocation(ctx context.Context, t *testing.T) (open func(t *testing.T) blob.Store)
}

// RunConformance runs every case against h.
func RunConformance(t *testing.T, h Harness) {
	cases := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"RangedRead", testRangedRead},
		{"Missing", testMissing},
		{"CreateIfAbsent", testCreateIfAbsent},
		{"DeferSync", testDeferSync},
		{"ConcurrentCreateIfAbsent", testConcurrentCreateIfAbsent},
		{"ListPagination", testListPagination},
		{"ListDelimiter", testListDelimiter},
		{"UnicodeAndSlashes", testUnicodeAndSlashes},
		{"Delete", testDelete},
		{"Copy", testCopy},
		{"Transfer", testTransfer},
		{"CancelMidUpload", testCancelMidUpload},
		{"ErrorShape", testErrorShape},
		{"RetainOnlyWhereLocked", testRetainOnlyWhereLocked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			open := h.NewLocation(context.Background(), t)
			c.fn(t, func(t *testing.T) blob.Store {
				t.Helper()
				s := open(t)
				t.Cleanup(func() { _ = s.Close() })
				return s
			})
		})
	}
}

func testRoundTrip(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	for _, size := range []int{0, 1, 1000, 17<<20 + 3} { // the last is multipart on S3
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key := fmt.Sprintf("roundtrip/%d", size)
			data := randomBytes(size)
			if err := blob.PutBytes(ctx, s, key, data, nil); err != nil {
				t.Fatalf("put %d bytes: %v", size, err)
			}
			got, err := blob.ReadAll(ctx, s, key)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, want the %d written", len(got), len(data))
			}
			a, err := s.Stat(ctx, key)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			if got, want := a.Size, int64(size); got != want {
				t.Fatalf("stat size = %d, want %d", got, want)
			}
		})
	}
}

func testOverwrite(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	mustPut(t, s, "k", []byte("first"))
	mustPut(t, s, "k", []byte("second, longer"))
	if got, want := mustGet(t, s, "k"), "second, longer"; string(got) != want {
		t.Fatalf("after overwrite got %q, want %q", got, want)
	}
	_ = ctx
}

func testRangedRead(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	data := randomBytes(64 << 10)
	mustPut(t, s, "ranged", data)
	for _, r := range []struct{ off, n int64 }{{0, 10}, {5, -1}, {int64(len(data)) - 3, 3}, {1000, 4096}, {0, -1}} {
		rc, err := s.Get(ctx, "ranged", r.off, r.n)
		if err != nil {
			t.Fatalf("get [%d,+%d): %v", r.off, r.n, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read [%d,+%d): %v", r.off, r.n, err)
		}
		end := int64(len(data))
		if r.n >= 0 {
			end = r.off + r.n
		}
		if !bytes.Equal(got, data[r.off:end]) {
			t.Fatalf("range [%d,+%d): got %d bytes that differ from the object's", r.off, r.n, len(got))
		}
	}
}

func testMissing(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Get(ctx, "no/such/key", 0, -1); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("get of a missing key: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "no/such/key"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("stat of a missing key: err = %v, want ErrNotFound", err)
	}
	if ok, err := blob.Exists(ctx, s, "no/such/key"); ok || err != nil {
		t.Fatalf("Exists(missing) = %v, %v; want false, nil", ok, err)
	}
}

func testCreateIfAbsent(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	ifAbsent := &blob.PutOptions{IfAbsent: true}
	if err := blob.PutBytes(ctx, s, "manifest", []byte("one"), ifAbsent); err != nil {
		t.Fatalf("first create: %v", err)
	}
	err := blob.PutBytes(ctx, s, "manifest", []byte("two"), ifAbsent)
	if !errors.Is(err, blob.ErrExists) {
		t.Fatalf("second create: err = %v, want ErrExists", err)
	}
	if got := mustGet(t, s, "manifest"); string(got) != "one" {
		t.Fatalf("a refused create changed the object to %q", got)
	}
}

// flushCounter is what a store that makes writes durable itself (a local
// folder: fsync) reports, so that the suite can see durability paid for,
// not only Sync returning nil.
type flushCounter interface {
	Flushes() int64
}

// testDeferSync: a write whose durability is deferred is visible whole at
// once, Sync makes it durable (and succeeds with nothing owed), and
// DeferSync never weakens IfAbsent. A store that defers durability must
// count its flushes: an acknowledged write has flushed its file and its
// directory, a deferred one nothing until Sync flushes each file and
// directory it names.
func testDeferSync(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	flushes := func() int64 { return -1 }
	if _, defers := blob.Find[blob.Syncer](s); defers {
		fc, ok := blob.Find[flushCounter](s)
		if !ok {
			t.Fatalf("%T defers durability (blob.Syncer) but does not count its flushes (Flushes() int64)", s)
		}
		flushes = fc.Flushes
	}
	counted := flushes() >= 0
	expectFlushes := func(what string, before int64, atLeast int) {
		t.Helper()
		if !counted {
			return
		}
		if got := flushes() - before; got < int64(atLeast) {
			t.Fatalf("%s flushed %d files or directories, want at least %d", what, got, atLeast)
		}
	}

	before := flushes()
	mustPut(t, s, "meta/plain", []byte("acknowledged"))
	expectFlushes("an acknowledged put", before, 2)
	before = flushes()
	if err := blob.PutBytes(ctx, s, "manifests/once", []byte("created"), &blob.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("create: %v", err)
	}
	expectFlushes("an acknowledged create-if-absent", before, 2)

	deferred := &blob.PutOptions{DeferSync: true}
	data := randomBytes(300 << 10)
	var keys []string
	before = flushes()
	for i := range 3 {
		keys = append(keys, fmt.Sprintf("chunks/%02d/c", i))
		if err := blob.PutBytes(ctx, s, keys[i], data, deferred); err != nil {
			t.Fatalf("deferred put: %v", err)
		}
	}
	if counted && flushes() != before {
		t.Fatalf("deferred puts flushed %d times before Sync; deferring is what they are for", flushes()-before)
	}
	if got := mustGet(t, s, "chunks/01/c"); !bytes.Equal(got, data) {
		t.Fatal("a deferred write reads back different bytes")
	}
	before = flushes()
	if err := blob.Sync(ctx, s, keys); err != nil {
		t.Fatalf("sync: %v", err)
	}
	expectFlushes("Sync of 3 files in 3 directories", before, 6)
	if err := blob.Sync(ctx, s, keys[:1]); err != nil {
		t.Fatalf("sync again: %v", err)
	}
	before = flushes()
	if err := blob.Sync(ctx, s, nil); err != nil {
		t.Fatalf("sync of nothing: %v", err)
	}
	if counted && flushes() != before {
		t.Fatal("Sync of no keys flushed something")
	}
	both := &blob.PutOptions{DeferSync: true, IfAbsent: true}
	if err := blob.PutBytes(ctx, s, "chunks/01/c", []byte("other"), both); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("IfAbsent with DeferSync over an existing key: %v, want ErrExists", err)
	}
	if got := mustGet(t, s, "chunks/01/c"); !bytes.Equal(got, data) {
		t.Fatal("a refused create changed the object")
	}
}

func testConcurrentCreateIfAbsent(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	const writers = 8
	stores := make([]blob.Store, writers)
	for i := range stores {
		stores[i] = open(t) // independent, as separate processes
	}
	for round := 0; round < 3; round++ {
		key := fmt.Sprintf("race/%d", round)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, writers)
		)
		for i := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				payload := bytes.Repeat([]byte{byte('a' + i)}, 256<<10)
				errs[i] = blob.PutBytes(ctx, stores[i], key, payload, &blob.PutOptions{IfAbsent: true})
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both created %q", round, winner, i, key)
				}
				winner = i
			case !errors.Is(err, blob.ErrExists):
				t.Fatalf("round %d: writer %d: err = %v, want nil or ErrExists", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer created %q", round, key)
		}
		got := mustGet(t, stores[0], key)
		if want := bytes.Repeat([]byte{byte('a' + winner)}, 256<<10); !bytes.Equal(got, want) {
			t.Fatalf("round %d: stored content is not the winner's (writer %d)", round, winner)
		}
	}
}

func testListPagination(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	const n = 1100
	var want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("many/%05d", i))
	}
	putAll(t, s, want)
	mustPut(t, s, "other/x", []byte("x")) // outside the prefix

	objs, next, err := s.List(ctx, blob.ListOptions{Prefix: "many/", PageSize: 1000})
	if err != nil {
		t.Fatalf("list first page: %v", err)
	}
	if len(objs) == 0 || len(objs) > 1000 || next == "" {
		t.Fatalf("first page: %d objects, next token %q; want 1..1000 and a token", len(objs), next)
	}
	var got []string
	err = blob.Walk(ctx, s, "many/", func(o blob.Object) error {
		got = append(got, o.Key)
		if o.Size != 1 {
			return fmt.Errorf("object %s has size %d, want 1", o.Key, o.Size)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("walk listed %d keys (first %q), want %d in order", len(got), first(got), len(want))
	}
}

func testListDelimiter(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	putAll(t, s, []string{"snap/a/1", "snap/a/2", "snap/b/1", "snap/c"})
	objs, _, err := s.List(ctx, blob.ListOptions{Prefix: "snap/", Delimiter: "/"})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, fmt.Sprintf("%s:%v", o.Key, o.IsDir))
	}
	if want := []string{"snap/a/:true", "snap/b/:true", "snap/c:false"}; !slices.Equal(got, want) {
		t.Fatalf("delimited listing = %v, want %v", got, want)
	}
}

func testUnicodeAndSlashes(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	keys := []string{
		"u/snapshots/grâph-ü/日本語のキー",
		"u/deep/a/b/c/d/e/f/g",
		"u/with space and+plus=equals",
		"u/emoji-🦀/x",
	}
	for i, k := range keys {
		mustPut(t, s, k, []byte(fmt.Sprint(i)))
	}
	for i, k := range keys {
		if got := mustGet(t, s, k); string(got) != fmt.Sprint(i) {
			t.Fatalf("key %q read back %q", k, got)
		}
	}
	var listed []string
	if err := blob.Walk(ctx, s, "u/", func(o blob.Object) error { listed = append(listed, o.Key); return nil }); err != nil {
		t.Fatalf("walk: %v", err)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Fatalf("listed %q, want %q", listed, want)
	}
}

func testDelete(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	if err := s.Delete(ctx, "never/was"); err != nil {
		t.Fatalf("delete of a missing key: %v, want nil", err)
	}
	mustPut(t, s, "gone", []byte("x"))
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.Stat(ctx, "gone"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("stat after delete: err = %v, want ErrNotFound", err)
	}
}

func testCopy(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	data := randomBytes(300 << 10)
	mustPut(t, s, "src", data)
	if err := s.Copy(ctx, "dst/copy", "src"); err != nil {
		t.Fatalf("copy: %v", err)
	}
	if got := mustGet(t, s, "dst/copy"); !bytes.Equal(got, data) {
		t.Fatalf("copy holds %d bytes that differ from the source", len(got))
	}
	if err := s.Copy(ctx, "dst/none", "no-source"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("copy of a missing source: err = %v, want ErrNotFound", err)
	}
}

func testTransfer(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	src, dst := open(t), open(t)
	data := randomBytes(6<<20 + 11)
	mustPut(t, src, "chunks/ab/from", data)
	n, err := blob.Transfer(ctx, dst, "chunks/ab/to", src, "chunks/ab/from", nil, blob.RetryPolicy{})
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	if n != int64(len(data)) {
		t.Fatalf("transfer moved %d bytes, want %d", n, len(data))
	}
	if got := mustGet(t, dst, "chunks/ab/to"); !bytes.Equal(got, data) {
		t.Fatal("transferred object differs from the source")
	}
}

// stallingReader yields some data, then blocks until its context ends.
type stallingReader struct {
	ctx  context.Context
	left int
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if r.left > 0 {
		n := min(len(p), r.left)
		for i := range p[:n] {
			p[i] = byte(i)
		}
		r.left -= n
		return n, nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func testCancelMidUpload(t *testing.T, open func(t *testing.T) blob.Store) {
	s := open(t)
	for _, ifAbsent := range []bool{false, true} {
		t.Run(fmt.Sprintf("IfAbsent=%v", ifAbsent), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			key := fmt.Sprintf("cancelled/%v", ifAbsent)
			done := make(chan error, 1)
			go func() {
				done <- s.Put(ctx, key, &stallingReader{ctx: ctx, left: 6 << 20}, &blob.PutOptions{IfAbsent: ifAbsent})
			}()
			time.Sleep(300 * time.Millisecond)
			cancel()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a cancelled upload reported success")
				}
			case <-time.After(30 * time.Second):
				t.Fatal("a cancelled upload did not return within 30s")
			}
			bg := context.Background()
			if _, err := s.Stat(bg, key); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("after a cancelled upload stat = %v, want ErrNotFound", err)
			}
			var listed []string
			_ = blob.Walk(bg, s, "cancelled/", func(o blob.Object) error { listed = append(listed, o.Key); return nil })
			if len(listed) != 0 {
				t.Fatalf("after a cancelled upload the listing shows %q", listed)
			}
		})
	}
}

func testErrorShape(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	_, err := s.Get(ctx, "missing/object", 0, -1)
	var be *blob.Error
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T) is not a *blob.Error", err, err)
	}
	if be.Key != "missing/object" || be.Op != "get" {
		t.Fatalf("error names op %q key %q, want get of missing/object", be.Op, be.Key)
	}
	if msg := err.Error(); !bytes.Contains([]byte(msg), []byte("missing/object")) {
		t.Fatalf("error message %q does not name the key", msg)
	}
}

// testRetainOnlyWhereLocked: a write asking for a lock on a store (or
// bucket) that cannot lock fails and leaves nothing, so a repository never
// believes unlocked objects locked.
func testRetainOnlyWhereLocked(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	s := open(t)
	if lk, ok := blob.LockerOf(s); ok {
		if on, err := lk.LockEnabled(ctx); err != nil || on {
			t.Skipf("a locking location (enabled %v, %v): the provider's own lock tests cover it", on, err)
		}
	}
	r := &blob.Retention{Mode: blob.Compliance, Until: time.Now().Add(time.Hour)}
	err := s.Put(ctx, "locked", bytes.NewReader([]byte("x")), &blob.PutOptions{Retain: r})
	if err == nil {
		t.Fatal("a locked write succeeded where nothing can be locked")
	}
	if _, err := s.Stat(ctx, "locked"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the refused locked write left an object: %v", err)
	}
	if _, ok := blob.LockerOf(s); !ok && !errors.Is(err, blob.ErrUnsupported) {
		t.Fatalf("a store that cannot lock: %v, want ErrUnsupported", err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(b)
	return b
}

func mustPut(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := blob.PutBytes(context.Background(), s, key, data, nil); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

func mustGet(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	b, err := blob.ReadAll(context.Background(), s, key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return b
}

// putAll writes one byte under each key with a few writers at once.
func putAll(t *testing.T, s blob.Store, keys []string) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		work = make(chan string)
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if err := blob.PutBytes(context.Background(), s, k, []byte("x"), nil); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d puts failed, first: %v", len(errs), errs[0])
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
