package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/file"
)

// TestListOrderAndPages lists trees whose names sort in awkward ways
// ("a-b" < "a/x" < "a0"), with prefixes that end inside a name, with and
// without a delimiter, page by page at several sizes: every page must hold
// the right keys in key order, and the pages together every key once.
// fileblob's own listing fails this: it walks directories in name order,
// so after a page that ends inside "a/" it never lists "a-b".
func TestListOrderAndPages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := file.Open(ctx, file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a-b", "a/x", "a/y/z", "a0", "ab/c", "a.b/c", "a!/d",
		"snap/a/1", "snap/a/2", "snap/b/1", "snap/c", "snap-x", "snapshots/g/1", "snapshots/g.x/2",
		"x/y/z/w", "x/y!", "x/y.z", "x/y/a", "u/grâph-ü/日本語", "u/with space+plus"}
	for i := 0; i < 40; i++ {
		keys = append(keys, fmt.Sprintf("many/%02x/%d", i%7, i))
	}
	for _, k := range keys {
		if err := blob.PutBytes(ctx, s, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	// An empty directory, and a write in progress: neither is an object.
	if err := os.MkdirAll(filepath.Join(dir, "snap", "empty", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "snap", "a", "3.18a2f0c9d.tmp"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// What a listing must give, from the keys alone.
	model := func(prefix, delim string) []string {
		var out []string
		for _, k := range slices.Sorted(slices.Values(keys)) {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			if i := strings.Index(k[len(prefix):], delim); delim != "" && i >= 0 {
				p := k[:len(prefix)+i+1] + " dir"
				if len(out) == 0 || out[len(out)-1] != p {
					out = append(out, p)
				}
				continue
			}
			out = append(out, fmt.Sprintf("%s %d", k, len(k)))
		}
		return out
	}
	listAll := func(opts blob.ListOptions) []string {
		var out []string
		for {
			objs, next, err := s.List(ctx, opts)
			if err != nil {
				t.Fatalf("list %+v: %v", opts, err)
			}
			if len(objs) > opts.PageSize {
				t.Fatalf("list %+v: %d objects in a page", opts, len(objs))
			}
			for _, o := range objs {
				if o.IsDir {
					out = append(out, o.Key+" dir")
				} else {
					out = append(out, fmt.Sprintf("%s %d", o.Key, o.Size))
				}
			}
			if next == "" {
				return out
			}
			opts.Token = next
		}
	}
	for _, prefix := range []string{"", "a", "a/", "a-", "snap", "snap/", "snap/a", "snapshots/", "x/y", "x/y/", "many/", "many/0", "nothing/", "u/"} {
		for _, delim := range []string{"", "/"} {
			for _, page := range []int{1, 2, 3, 7, 1000} {
				want := model(prefix, delim)
				if got := listAll(blob.ListOptions{Prefix: prefix, Delimiter: delim, PageSize: page}); !slices.Equal(got, want) {
					t.Fatalf("prefix %q delimiter %q page %d:\n got %q\nwant %q", prefix, delim, page, got, want)
				}
			}
		}
	}
}

// TestListKeysOnly: a keys-only listing names the same keys, page by page.
func TestListKeysOnly(t *testing.T) {
	ctx := context.Background()
	s, err := file.Open(ctx, file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"s/g-x/1", "s/g/1", "s/g/2", "s/g.y/3", "t/1"} {
		if err := blob.PutBytes(ctx, s, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, page := range []int{1, 2, 1000} {
		var got []string
		opts := blob.ListOptions{Prefix: "s/", PageSize: page, KeysOnly: true}
		for {
			objs, next, err := s.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				got = append(got, o.Key)
			}
			if next == "" {
				break
			}
			opts.Token = next
		}
		if want := []string{"s/g-x/1", "s/g.y/3", "s/g/1", "s/g/2"}; !slices.Equal(got, want) {
			t.Fatalf("page %d: %q, want %q", page, got, want)
		}
	}
}

// TestListFindsEveryGraph: with more snapshots of graph "g" than a page
// holds, the snapshots of graph "g-x" (whose keys sort before "g/") are
// still listed. fileblob's listing lost them, and a prune that does not
// see a snapshot deletes its chunks.
func TestListFindsEveryGraph(t *testing.T) {
	ctx := context.Background()
	s, err := file.Open(ctx, file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < blob.DefaultPageSize+1; i++ {
		if err := blob.PutBytes(ctx, s, fmt.Sprintf("snapshots/g/%05d", i), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := blob.PutBytes(ctx, s, "snapshots/g-x/1", nil, nil); err != nil {
		t.Fatal(err)
	}
	found := false
	n := 0
	if err := blob.Walk(ctx, s, "snapshots/", func(o blob.Object) error {
		n++
		found = found || o.Key == "snapshots/g-x/1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !found || n != blob.DefaultPageSize+2 {
		t.Fatalf("listed %d snapshots, g-x's among them: %v; want %d", n, found, blob.DefaultPageSize+2)
	}
}
