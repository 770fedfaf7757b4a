package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers/local"
)

var seq atomic.Int64

// newRepo initialises a repository in a fresh in-memory store.
func newRepo(t *testing.T, password string) (*repo.Repository, blob.Store) {
	t.Helper()
	return newRepoWith(t, repo.InitOptions{Password: password})
}

// newRepoWith is newRepo with more choices (chunks of 64 KiB, a cheap KDF).
func newRepoWith(t *testing.T, opts repo.InitOptions) (*repo.Repository, blob.Store) {
	t.Helper()
	ctx := context.Background()
	password := opts.Password
	store, err := local.Open(ctx, fmt.Sprintf("mem://backup-test-%d", seq.Add(1)), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cheap := repo.KDFParams{N: 1 << 10, R: 8, P: 1}
	opts.AvgChunkSize, opts.KDF = 64<<10, &cheap
	r, err := repo.Init(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err = repo.Open(ctx, store, repo.OpenOptions{Password: password, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r, store
}

func graphDir(t *testing.T, docs int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "g1")
	if err := fixture.Generate(dir, fixture.Spec{Docs: docs, EmbeddingDim: 128, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sameTree fails unless a and b hold the same entries with the same bytes,
// modes and mtimes.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	read := func(root string) map[string]string {
		out := map[string]string{}
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			info, _ := os.Lstat(p)
			desc := fmt.Sprintf("%v", info.Mode())
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				desc += " -> " + target
			case info.Mode().IsRegular():
				data, _ := os.ReadFile(p)
				desc += fmt.Sprintf(" %x %s", data, info.ModTime().UTC().Format(time.RFC3339Nano))
			}
			out[rel] = desc
			return nil
		})
		return out
	}
	ta, tb := read(a), read(b)
	if len(ta) != len(tb) {
		t.Fatalf("trees differ: %d entries vs %d", len(ta), len(tb))
	}
	for k, v := range ta {
		if tb[k] != v {
			t.Fatalf("entry %s differs after restore", k)
		}
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	for _, password := range []string{"", "correct horse"} {
		t.Run(fmt.Sprintf("encrypted=%v", password != ""), func(t *testing.T) {
			ctx := context.Background()
			r, _ := newRepo(t, password)
			src := graphDir(t, 6)
			if err := os.MkdirAll(filepath.Join(src, "inputs", "nested"), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "inputs", "nested", "doc.txt"), []byte("hello"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("inputs/nested/doc.txt", filepath.Join(src, "link")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "vdb_chunks.json.tmp.999"), []byte("half-written"), 0o644); err != nil {
				t.Fatal(err)
			}

			res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{Quiet: -1})
			if err != nil {
				t.Fatal(err)
			}
			m := res.Manifest
			if m.LightRAG == nil || !m.LightRAG.Valid() || m.LightRAG.Docs != 6 {
				t.Fatalf("LightRAG stats = %+v", m.LightRAG)
			}
			for _, f := range m.Files {
				if strings.Contains(f.Path, ".tmp.") {
					t.Fatalf("transient file %s was backed up", f.Path)
				}
			}
			if m.Totals.AddedBytes != m.Totals.SizeBytes {
				t.Fatalf("first backup added %d bytes of %d", m.Totals.AddedBytes, m.Totals.SizeBytes)
			}

			_ = os.Remove(filepath.Join(src, "vdb_chunks.json.tmp.999"))
			dest := filepath.Join(t.TempDir(), "restored")
			rr, err := backup.Restore(ctx, r, m.Ref(), dest, backup.RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, src, dest)
			if !rr.LightRAG.Equal(m.LightRAG) {
				t.Fatalf("restored counts %v, snapshot %v", rr.LightRAG, m.LightRAG)
			}
		})
	}
}

func TestSecondBackupStoresNothingAndGrowthStoresLittle(t *testing.T) {
	ctx := context.Background()
	r, store := newRepo(t, "")
	src := graphDir(t, 20)
	first, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := blob.StatsOf(store)
	second, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := blob.StatsOf(store)
	if second.Manifest.Totals.StoredBytes != 0 || second.ReusedFiles != first.Manifest.Totals.Files {
		t.Fatalf("unchanged re-backup stored %d bytes and reused %d of %d files",
			second.Manifest.Totals.StoredBytes, second.ReusedFiles, first.Manifest.Totals.Files)
	}
	if second.Manifest.Parent != first.Manifest.ID {
		t.Fatalf("parent = %q, want %q", second.Manifest.Parent, first.Manifest.ID)
	}
	// One manifest and lease traffic; no chunk uploads.
	if puts := after.Sub(before).Puts; puts > 3 {
		t.Fatalf("unchanged re-backup made %d PUTs", puts)
	}

	if _, err := fixture.Grow(src, fixture.Spec{Docs: 20, EmbeddingDim: 128, Seed: 11}, 1); err != nil {
		t.Fatal(err)
	}
	third, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if added, size := third.Manifest.Totals.AddedBytes, third.Manifest.Totals.SizeBytes; added == 0 || added > size*2/3 {
		t.Fatalf("5%% more documents added %d of %d bytes", added, size)
	}
	// Files LightRAG appends to keep all but the chunks around the additions.
	old := first.Manifest.ChunkIDs()
	for _, f := range third.Manifest.Files {
		if f.Path != "kv_store_full_docs.json" && f.Path != "vdb_chunks.json" {
			continue
		}
		fresh := 0
		for _, c := range f.Chunks {
			if _, ok := old[c.ID]; !ok {
				fresh++
			}
		}
		// vdb files grow in two places (the data array and the matrix), and
		// the repository's chunker seed is random: up to two chunks each.
		if fresh > 4 {
			t.Errorf("%s: %d of %d chunks are new after appending one document", f.Path, fresh, len(f.Chunks))
		}
	}
}

// damageChunk rewrites one stored chunk of the snapshot.
func damageChunk(t *testing.T, store blob.Store, m *repo.Manifest, mutate func([]byte) []byte) string {
	t.Helper()
	ctx := context.Background()
	for _, f := range m.Files {
		if len(f.Chunks) > 0 {
			ref := f.Chunks[0]
			key := repo.ChunkKey(ref.Object())
			data, err := blob.ReadAll(ctx, store, key)
			if err != nil {
				t.Fatal(err)
			}
			if ref.Packed() {
				// Damage the chunk's bytes in its pack; "missing" deletes
				// the pack.
				region := data[ref.Offset : ref.Offset+int64(ref.Length)]
				if mutate(bytes.Clone(region)) == nil {
					data = nil
				} else {
					copy(region, mutate(region))
				}
			} else {
				data = mutate(data)
			}
			if data == nil {
				if err := store.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
			} else if err := blob.PutBytes(ctx, store, key, data, nil); err != nil {
				t.Fatal(err)
			}
			return f.Path
		}
	}
	t.Fatal("no chunk to damage")
	return ""
}

// replaceChunk stores encoded in place of file's first chunk: in its pack
// (encoded must then be as long as what it replaces), or as its object.
func replaceChunk(t *testing.T, r *repo.Repository, m *repo.Manifest, file string, encoded []byte) {
	t.Helper()
	ctx := context.Background()
	for _, f := range m.Files {
		if f.Path != file {
			continue
		}
		ref := f.Chunks[0]
		if !ref.Packed() {
			if err := r.PutChunk(ctx, ref.ID, encoded); err != nil {
				t.Fatal(err)
			}
			return
		}
		if len(encoded) != ref.Length {
			t.Fatalf("the replacement of %s's first chunk stores %d bytes, the pack holds %d", file, len(encoded), ref.Length)
		}
		key := repo.ChunkKey(ref.Pack)
		data, err := blob.ReadAll(ctx, r.Store(), key)
		if err != nil {
			t.Fatal(err)
		}
		copy(data[ref.Offset:], encoded)
		if err := blob.PutBytes(ctx, r.Store(), key, data, nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s not in the manifest", file)
}

func TestDamageIsCaughtAndDestinationUntouched(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func([]byte) []byte
		want   string
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, "corrupt"},
		{"missing", func([]byte) []byte { return nil }, "not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			r, store := newRepo(t, "")
			src := graphDir(t, 4)
			res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
			if err != nil {
				t.Fatal(err)
			}
			file := damageChunk(t, store, res.Manifest, c.mutate)

			v, err := backup.Verify(ctx, r, []repo.SnapshotRef{res.Manifest.Ref()}, backup.VerifyOptions{ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			var users []string
			for _, d := range v.Damaged {
				users = append(users, d.UsedBy...)
			}
			if v.OK() || !strings.Contains(strings.Join(users, ","), file) {
				t.Fatalf("verify --read-data = %+v, want damage used by %s", v, file)
			}
			// Each damaged chunk names the object to copy back from a
			// replica, and its bytes there (a pack).
			for _, d := range v.Damaged {
				if !strings.HasPrefix(d.Object, repo.ChunkPrefix) || d.Length <= 0 || d.Offset < 0 {
					t.Fatalf("damage %+v does not name its pack and place", d)
				}
			}

			dest := filepath.Join(t.TempDir(), "live")
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dest, "kv_store_keep.json"), []byte("current graph"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = backup.Restore(ctx, r, res.Manifest.Ref(), dest, backup.RestoreOptions{})
			named := err != nil && strings.Contains(err.Error(), file)
			if c.name == "missing" {
				// The whole pack is gone: whichever file is written first
				// is the one named.
				for _, f := range res.Manifest.Files {
					named = named || err != nil && strings.Contains(err.Error(), f.Path+":")
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !named {
				t.Fatalf("restore err = %v, want %q naming %s", err, c.want, file)
			}
			got, _ := os.ReadFile(filepath.Join(dest, "kv_store_keep.json"))
			entries, _ := os.ReadDir(filepath.Dir(dest))
			if string(got) != "current graph" || len(entries) != 1 {
				t.Fatalf("a failed restore changed the destination or left %d entries beside it", len(entries))
			}
		})
	}
}

// TestRestoreNamesTheChunkInEncryptedRepos: in an encrypted repository a
// restore trusts each chunk's AES-GCM tag instead of hashing it again, so
// damage shows as a failed tag, and a chunk sealed with the right key but
// holding other bytes than its id says (a writer's bug) fails the file's
// SHA-256, after which the restore re-derives the ids to name the chunk.
func TestRestoreNamesTheChunkInEncryptedRepos(t *testing.T) {
	ctx := context.Background()
	// Uncompressed, so that a chunk of other bytes stores as many bytes
	// and fits its place in the pack.
	r, store := newRepoWith(t, repo.InitOptions{Password: "pw", Compression: "none"})
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: graphDir(t, 3)}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	restoreErr := func() error {
		_, err := backup.Restore(ctx, r, m.Ref(), filepath.Join(t.TempDir(), "out"), backup.RestoreOptions{})
		return err
	}

	file := damageChunk(t, store, m, func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b })
	id := chunkOf(t, m, file)
	if err := restoreErr(); err == nil || !strings.Contains(err.Error(), "authentication failed") ||
		!strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("restore of a damaged encrypted chunk: %v", err)
	}

	// Sealed correctly under id, same size, one byte different.
	good := sourceChunk(t, m, file)
	bad := bytes.Clone(good)
	bad[len(bad)/3] ^= 0x20
	replaceChunk(t, r, m, file, r.EncodeChunk(id, bad))
	if err := restoreErr(); err == nil || !strings.Contains(err.Error(), "hashes to") ||
		!strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("restore of a chunk holding the wrong bytes: %v", err)
	}
}

// sourceChunk is the plaintext of file's first chunk, read from the graph
// the snapshot was taken of (the stored copy may be damaged).
func sourceChunk(t *testing.T, m *repo.Manifest, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(m.Source, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if f.Path == file {
			return data[:f.Chunks[0].Size]
		}
	}
	t.Fatalf("%s not in the manifest", file)
	return nil
}

// chunkOf is the first chunk of file in m.
func chunkOf(t *testing.T, m *repo.Manifest, file string) repo.ChunkID {
	t.Helper()
	for _, f := range m.Files {
		if f.Path == file {
			return f.Chunks[0].ID
		}
	}
	t.Fatalf("%s not in the manifest", file)
	return repo.ChunkID{}
}

func TestQuickVerifyFindsMissingChunks(t *testing.T) {
	ctx := context.Background()
	r, store := newRepo(t, "")
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: graphDir(t, 2)}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := backup.Verify(ctx, r, []repo.SnapshotRef{res.Manifest.Ref()}, backup.VerifyOptions{})
	if err != nil || !v.OK() {
		t.Fatalf("verify of a healthy snapshot = %+v, %v", v, err)
	}
	damageChunk(t, store, res.Manifest, func([]byte) []byte { return nil })
	if v, _ = backup.Verify(ctx, r, []repo.SnapshotRef{res.Manifest.Ref()}, backup.VerifyOptions{}); v.OK() || v.Damaged[0].Problem != "missing" {
		t.Fatalf("quick verify = %+v, want a missing chunk", v)
	}
}

func TestRestoreReplacesAndKeepsPrevious(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	src := graphDir(t, 2)
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "g1")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dest, "old.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A folder of other files is not a graph: refused unless forced.
	if _, err := backup.Restore(ctx, r, res.Manifest.Ref(), dest, backup.RestoreOptions{}); !errors.Is(err, backup.ErrNotAGraph) {
		t.Fatalf("restore over a folder with no LightRAG data: %v, want ErrNotAGraph", err)
	}
	rr, err := backup.Restore(ctx, r, res.Manifest.Ref(), dest, backup.RestoreOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dest)
	if got, _ := os.ReadFile(filepath.Join(rr.Previous, "old.txt")); string(got) != "old" {
		t.Fatalf("previous directory %s does not hold the old graph", rr.Previous)
	}
	// Restoring again keeps the first undo copy: each restore adds one.
	rr2, err := backup.Restore(ctx, r, res.Manifest.Ref(), dest, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rr2.Previous == rr.Previous {
		t.Fatalf("the second restore reused the undo copy %s", rr.Previous)
	}
	if got, _ := os.ReadFile(filepath.Join(rr.Previous, "old.txt")); string(got) != "old" {
		t.Fatalf("the second restore destroyed the first undo copy %s", rr.Previous)
	}
	prev, err := backup.ListPrevious(dest)
	if err != nil || len(prev) != 2 {
		t.Fatalf("ListPrevious = %+v, %v: want both undo copies", prev, err)
	}
	if discovered, _ := backup.Discover(filepath.Dir(dest)); len(discovered) != 1 {
		t.Fatalf("graph discovery sees graphkeep's undo directories: %v", discovered)
	}
	removed, err := backup.RemovePrevious(dest, 0)
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemovePrevious = %+v, %v", removed, err)
	}
	if prev, _ := backup.ListPrevious(dest); len(prev) != 0 {
		t.Fatalf("after RemovePrevious: %+v", prev)
	}
	sameTree(t, src, dest)
}

func TestRestoreRefusesUnsafePaths(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	for _, files := range [][]repo.FileEntry{
		{{Path: "../escape", Type: repo.TypeFile}},
		{{Path: "/etc/passwd", Type: repo.TypeFile}},
		{{Path: "a/../../b", Type: repo.TypeFile}},
		{{Path: "link", Type: repo.TypeSymlink, Target: "/etc"}, {Path: "link/passwd", Type: repo.TypeFile}},
	} {
		m := &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(time.Now()), Graph: "evil", Time: time.Now(), Files: files}
		if err := r.SaveManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(t.TempDir(), "evil")
		_, err := backup.Restore(ctx, r, m.Ref(), dest, backup.RestoreOptions{})
		if !errors.Is(err, backup.ErrUnsafePath) {
			t.Fatalf("restore of %v: err = %v, want ErrUnsafePath", files, err)
		}
		if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused restore created %s", dest)
		}
	}
}

// A file rewritten every time it is read fails the snapshot clearly and
// leaves no snapshot behind.
func TestFileThatNeverSettles(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	src := graphDir(t, 2)
	hot := filepath.Join(src, "kv_store_doc_status.json")
	n := 0
	restore := backup.SetAfterReadHook(func(path string) {
		if path == hot {
			n++
			_ = os.WriteFile(hot, []byte(fmt.Sprintf("{\"rewrite\": %d}", n)), 0o644)
		}
	})
	defer restore()
	_, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{Attempts: 3, Settle: time.Millisecond, Quiet: -1})
	if !errors.Is(err, backup.ErrUnstable) || !strings.Contains(err.Error(), "kv_store_doc_status.json") {
		t.Fatalf("err = %v, want ErrUnstable naming the file", err)
	}
	if n != 3 {
		t.Fatalf("the file was read %d times, want 3 attempts", n)
	}
	if refs, _ := r.ListSnapshots(ctx, "g1"); len(refs) != 0 {
		t.Fatalf("a refused backup left snapshots %v", refs)
	}
}

// A file that changes once while it is read is read again, and the
// snapshot holds the settled content: a cut of one instant, in which the
// stores disagree (the status store lost its documents), so it is marked
// mid-ingestion once the wait passes.
func TestFileThatChangesOnceIsReadAgain(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	src := graphDir(t, 2)
	hot := filepath.Join(src, "kv_store_doc_status.json")
	final := []byte(`{"settled": true}`)
	restore := backup.SetAfterReadHook(func(path string) {
		if path == hot && !bytes.Equal(mustRead(hot), final) {
			_ = os.WriteFile(hot, final, 0o644)
		}
	})
	defer restore()
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src},
		backup.Options{Settle: time.Millisecond, Quiet: -1, MaxWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Manifest.Consistency
	if !c.SingleInstant || !c.MidIngestion || c.Attempts < 2 {
		t.Fatalf("consistency = %+v, want a single-instant cut marked mid-ingestion after a retry", c)
	}
	to := filepath.Join(t.TempDir(), "r")
	if _, err := backup.Restore(ctx, r, res.Manifest.Ref(), to, backup.RestoreOptions{}); !errors.Is(err, repo.ErrNotGood) {
		t.Fatalf("restoring a mid-ingestion snapshot without allowing it: %v, want ErrNotGood", err)
	}
	if _, err := backup.Restore(ctx, r, res.Manifest.Ref(), to, backup.RestoreOptions{AllowNotGood: true}); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(filepath.Join(to, "kv_store_doc_status.json")); !bytes.Equal(got, final) {
		t.Fatalf("snapshot holds %q, want the settled content", got)
	}
}

func mustRead(p string) []byte {
	b, _ := os.ReadFile(p)
	return b
}

func TestBrokenGraphIsStoredButFlagged(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	src := graphDir(t, 2)
	broken := filepath.Join(src, "vdb_chunks.json")
	if err := os.WriteFile(broken, []byte(`{"embedding_dim": 4, "data": [{"__id__": "x"}], "matrix": ""}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Broken an hour ago: damage, not a write in progress.
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{broken, src} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.LightRAG.Valid() || !strings.Contains(strings.Join(res.Manifest.LightRAG.Problems, ";"), "vdb_chunks.json") {
		t.Fatalf("problems = %v, want vdb_chunks.json flagged", res.Manifest.LightRAG.Problems)
	}
}

func TestDiscover(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"alpha", "beta", ".hidden", "bad name", ".graphkeep-previous-alpha"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := backup.Discover(root)
	if err != nil || len(got) != 2 || got[0].Graph != "alpha" || got[1].Graph != "beta" {
		t.Fatalf("Discover = %v, %v", got, err)
	}
	flat := t.TempDir()
	if err := os.WriteFile(filepath.Join(flat, "kv_store_full_docs.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := backup.Discover(flat); len(got) != 1 || got[0].Graph != backup.DefaultGraph {
		t.Fatalf("a root holding LightRAG files: Discover = %v, want one graph %q", got, backup.DefaultGraph)
	}
}

// orderStore records the order of chunk writes, syncs and manifest writes;
// with failSync set, its Sync fails.
type orderStore struct {
	blob.Store
	mu       sync.Mutex
	events   []string
	deferred map[string]bool // chunk keys written with DeferSync, not yet synced
	failSync bool
}

func (s *orderStore) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	err := s.Store.Put(ctx, key, r, opts)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasPrefix(key, "chunks/") && opts != nil && opts.DeferSync:
		s.events = append(s.events, "deferred-chunk")
		if s.deferred == nil {
			s.deferred = map[string]bool{}
		}
		s.deferred[key] = true
	case strings.HasPrefix(key, "chunks/"):
		s.events = append(s.events, "chunk")
	case strings.HasPrefix(key, repo.SnapshotPrefix):
		s.events = append(s.events, "manifest")
	}
	return err
}

func (s *orderStore) Sync(ctx context.Context, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "sync")
	if s.failSync {
		return errors.New("disk full")
	}
	for _, k := range keys {
		delete(s.deferred, k)
	}
	return nil
}

// TestChunksAreDurableBeforeTheManifest: a backup defers each chunk's
// fsync but syncs them all before it writes the manifest naming them, and a
// failed sync commits nothing.
func TestChunksAreDurableBeforeTheManifest(t *testing.T) {
	ctx := context.Background()
	mem, err := local.Open(ctx, fmt.Sprintf("mem://order-%d", seq.Add(1)), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &orderStore{Store: mem}
	if _, err := repo.Init(ctx, store, repo.InitOptions{AvgChunkSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: graphDir(t, 3)}, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	// Compress runs of chunk writes: want deferred-chunk..., sync, manifest.
	var order []string
	for _, e := range store.events {
		if len(order) == 0 || order[len(order)-1] != e {
			order = append(order, e)
		}
	}
	if got := strings.Join(order, ","); got != "deferred-chunk,sync,manifest" {
		t.Fatalf("want chunks (deferred), then a sync, then the manifest; got %s", got)
	}
	if len(store.deferred) > 0 {
		t.Fatalf("%d chunks were never synced", len(store.deferred))
	}

	store.events, store.failSync = nil, true
	_, err = backup.Create(ctx, r, backup.Source{Graph: "g2", Dir: graphDir(t, 2)}, backup.Options{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("backup with a failing sync: %v", err)
	}
	if slices.Contains(store.events, "manifest") {
		t.Fatalf("a manifest was written after the sync failed: %v", store.events)
	}
}

// TestAFailedBackupsChunksDoNotFailTheNext: a backup that fails leaves
// chunks it stored without syncing; once prune deletes them (nothing names
// them), the next backup in the same process must not trip over them.
func TestAFailedBackupsChunksDoNotFailTheNext(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := local.Open(ctx, "file://"+dir+"?create=true", local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := repo.Init(ctx, store, repo.InitOptions{AvgChunkSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	src := graphDir(t, 2)
	hot := filepath.Join(src, "vdb_relationships.json") // read last: the others' chunks are stored
	restore := backup.SetAfterReadHook(func(path string) {
		if path == hot {
			_ = os.WriteFile(hot, []byte(fmt.Sprint(time.Now().UnixNano())), 0o644)
		}
	})
	_, err = backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{Attempts: 1})
	restore()
	if !errors.Is(err, backup.ErrUnstable) {
		t.Fatalf("the first backup: %v, want ErrUnstable", err)
	}
	// What prune does with chunks no snapshot names.
	if err := os.RemoveAll(filepath.Join(dir, "chunks")); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Create(ctx, r, backup.Source{Graph: "g2", Dir: graphDir(t, 3)}, backup.Options{}); err != nil {
		t.Fatalf("the next backup failed over the first one's chunks: %v", err)
	}
}

// Stats gives each graph what its snapshots hold, what its backups stored
// and the ratio: a graph backed up twice unchanged dedups two to one
// against what it stored.
func TestStatsPerGraph(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "pw")
	a, b := graphDir(t, 4), graphDir(t, 6)
	for range 2 {
		for g, dir := range map[string]string{"a": a, "b": b} {
			if _, err := backup.Create(ctx, r, backup.Source{Graph: g, Dir: dir}, backup.Options{Quiet: -1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := backup.Stats(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Graphs) != 2 {
		t.Fatalf("graphs: %+v", st.Graphs)
	}
	var logical int64
	for _, g := range st.Graphs {
		logical += g.LogicalBytes
		if g.Snapshots != 2 || g.LogicalBytes != 2*g.LatestSize || g.StoredBytes <= 0 || g.StoredBytes >= g.LatestSize {
			t.Fatalf("graph %s: %+v", g.Graph, g)
		}
		if want := float64(g.LogicalBytes) / float64(g.StoredBytes); g.DedupRatio != want || g.DedupRatio < 2 {
			t.Fatalf("graph %s dedup %v, want %v (at least 2)", g.Graph, g.DedupRatio, want)
		}
	}
	if logical != st.LogicalBytes {
		t.Fatalf("graphs' logical bytes add up to %d, the repository says %d", logical, st.LogicalBytes)
	}
}

// TestStatsAfterForget: a graph whose first snapshot is forgotten still
// shows what its chunks take and its deduplication (the kept snapshots
// stored nothing new, but they name everything the first one stored); a
// graph keeping one snapshot has no average addition, not zero.
func TestStatsAfterForget(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "pw")
	dir := graphDir(t, 4)
	var first repo.SnapshotRef
	for i := range 3 {
		res, err := backup.Create(ctx, r, backup.Source{Graph: "a", Dir: dir}, backup.Options{Quiet: -1})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res.Manifest.Ref()
		}
	}
	before, err := backup.Stats(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteSnapshot(ctx, first); err != nil {
		t.Fatal(err)
	}
	after, err := backup.Stats(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	b, a := before.Graphs[0], after.Graphs[0]
	if a.StoredBytes == 0 || a.StoredBytes != b.StoredBytes || a.UniqueBytes != b.UniqueBytes || a.UniqueBytes < a.LatestSize {
		t.Fatalf("stored %d (unique %d) after forgetting the first snapshot, %d (unique %d) before", a.StoredBytes, a.UniqueBytes, b.StoredBytes, b.UniqueBytes)
	}
	if want := float64(a.LogicalBytes) / float64(a.StoredBytes); a.DedupRatio != want || a.DedupRatio < 2 {
		t.Fatalf("dedup %v after forget, want %v", a.DedupRatio, want)
	}
	if a.AddedBytes == nil || *a.AddedBytes != 0 {
		t.Fatalf("added per snapshot of two unchanged snapshots: %v", a.AddedBytes)
	}
	refs, _ := r.ListSnapshots(ctx, "a")
	if err := r.DeleteSnapshot(ctx, refs[0]); err != nil {
		t.Fatal(err)
	}
	one, err := backup.Stats(ctx, r, false)
	if err != nil {
		t.Fatal(err)
	}
	if one.Graphs[0].AddedBytes != nil {
		t.Fatalf("added per snapshot with one snapshot kept: %d, want none", *one.Graphs[0].AddedBytes)
	}
}
