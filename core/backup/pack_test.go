package backup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/repo/repotest"
	"github.com/graphkeep/graphkeep/providers/local"
	"lukechampine.com/blake3"
)

// A backup stores a file's new chunks back to back in packs, in the file's
// order, so a restore reads each run of them with one ranged read: far
// fewer requests than chunks, and every file comes back whole. A second
// backup of the grown graph stores only the new chunks, in a new pack, and
// its restore reads from both.
func TestPacksAreReadInRuns(t *testing.T) {
	ctx := context.Background()
	mem, err := local.Open(ctx, fmt.Sprintf("mem://pack-runs-%d", seq.Add(1)), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := blob.NewCounting(mem)
	if _, err := repo.Init(ctx, store, repo.InitOptions{AvgChunkSize: 16 << 10, PackSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "g1")
	if err := fixture.Generate(src, fixture.Spec{Docs: 20, EmbeddingDim: 256, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	chunks, objects := m.Totals.Chunks, len(m.Objects())
	if chunks < 40 || objects < 2 || objects > chunks/10 {
		t.Fatalf("%d chunks in %d objects: want many chunks in a few 1 MiB packs", chunks, objects)
	}
	for _, f := range m.Files {
		for i, c := range f.Chunks {
			if !c.Packed() || i > 0 && c.Pack == f.Chunks[i-1].Pack && c.Offset < f.Chunks[i-1].Offset {
				t.Fatalf("%s: chunk %d is not packed after the one before it: %+v", f.Path, i, c)
			}
		}
	}

	before := store.RequestStats()
	out := filepath.Join(t.TempDir(), "out")
	if _, err := backup.Restore(ctx, r, m.Ref(), out, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, src, out)
	gets := store.RequestStats().Sub(before).Gets
	// One read per run: a file's chunks in one pack are one run, cut
	// where a pack ends.
	if gets > int64(len(m.Files)+objects) {
		t.Fatalf("the restore of %d chunks in %d packs made %d reads, want at most one per file and pack", chunks, objects, gets)
	}

	// The graph grows; the next backup stores only what is new.
	if err := fixture.Generate(src, fixture.Spec{Docs: 24, EmbeddingDim: 256, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	next, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if next.Manifest.Totals.StoredBytes == 0 || next.Manifest.Totals.StoredBytes > res.Manifest.Totals.StoredBytes/2 {
		t.Fatalf("the second backup stored %d bytes, the first %d", next.Manifest.Totals.StoredBytes, res.Manifest.Totals.StoredBytes)
	}
	out2 := filepath.Join(t.TempDir(), "out2")
	if _, err := backup.Restore(ctx, r, next.Manifest.Ref(), out2, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, src, out2)
	v, err := backup.Verify(ctx, r, []repo.SnapshotRef{m.Ref(), next.Manifest.Ref()}, backup.VerifyOptions{ReadData: true})
	if err != nil || !v.OK() {
		t.Fatalf("verify --read-data = %+v, %v", v, err)
	}
}

// A repository of format 1 (each chunk an object of its own, as releases
// before packs wrote) is still backed up, restored and verified as such.
func TestFormat1RepositoriesStayUnpacked(t *testing.T) {
	ctx := context.Background()
	r, store := newRepoWith(t, repo.InitOptions{PackSize: -1})
	src := graphDir(t, 3)
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Manifest.Files {
		for _, c := range f.Chunks {
			if c.Packed() {
				t.Fatalf("%s: a format 1 repository stored a chunk in a pack", f.Path)
			}
			if ok, err := blob.Exists(ctx, store, repo.ChunkKey(c.ID)); err != nil || !ok {
				t.Fatalf("chunk %s is not an object of its own: %v", c.ID, err)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := backup.Restore(ctx, r, res.Manifest.Ref(), out, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, src, out)
	v, err := backup.Verify(ctx, r, []repo.SnapshotRef{res.Manifest.Ref()}, backup.VerifyOptions{ReadData: true})
	if err != nil || !v.OK() {
		t.Fatalf("verify --read-data = %+v, %v", v, err)
	}
}

// A repository of format 2 (packs, chunks named with SHA-256) keeps its
// chunk ids: a backup after the upgrade to format 3 code deduplicates
// against what it holds, and restores and verifies as before.
func TestFormat2RepositoriesKeepTheirChunkIDs(t *testing.T) {
	ctx := context.Background()
	_, store := newRepoWith(t, repo.InitOptions{})
	repotest.AsFormat2(t, store)
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil || r.Format() != 2 {
		t.Fatalf("open as format 2: format %d, %v", r.Format(), err)
	}
	src := graphDir(t, 3)
	first, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range first.Manifest.Files {
		data, err := os.ReadFile(filepath.Join(src, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); f.SHA256 != hex.EncodeToString(sum[:]) || f.BLAKE3 != "" {
			t.Fatalf("%s: digests sha256 %q blake3 %q, want the SHA-256 alone", f.Path, f.SHA256, f.BLAKE3)
		}
		for _, c := range f.Chunks {
			if want := repo.ChunkID(sha256.Sum256(data[:c.Size])); c.ID != want || !c.Packed() {
				t.Fatalf("%s: chunk %s (packed %v), want the SHA-256 %s in a pack", f.Path, c.ID, c.Packed(), want)
			}
			data = data[c.Size:]
		}
	}
	// A copy backed up as another graph is read whole; with a fresh cache
	// what it deduplicates against is the repository's own index.
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	r, err = repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	second, err := backup.Create(ctx, r, backup.Source{Graph: "g2", Dir: copied}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if second.ReusedFiles != 0 || second.Manifest.Totals.AddedBytes != 0 {
		t.Fatalf("a backup of a copy reused %d files and added %d bytes, want 0 and 0", second.ReusedFiles, second.Manifest.Totals.AddedBytes)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := backup.Restore(ctx, r, second.Manifest.Ref(), out, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, src, out)
	v, err := backup.Verify(ctx, r, []repo.SnapshotRef{first.Manifest.Ref(), second.Manifest.Ref()}, backup.VerifyOptions{ReadData: true})
	if err != nil || !v.OK() {
		t.Fatalf("verify --read-data = %+v, %v", v, err)
	}
}

// In format 3 a manifest records each file's BLAKE3 (what b3sum prints)
// and a restore checks every file against it: a snapshot whose recorded
// hash is not the content's is refused, naming the file and both hashes,
// and nothing is swapped into place.
func TestRestoreChecksTheFileBLAKE3(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "pw")
	src := graphDir(t, 1)
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: src}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := *res.Manifest
	m.Files = append([]repo.FileEntry(nil), m.Files...)
	victim := -1
	for i, f := range m.Files {
		if f.Type != repo.TypeFile {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if sum := blake3.Sum256(data); f.BLAKE3 != hex.EncodeToString(sum[:]) || f.SHA256 != "" || f.Digest() != "blake3:"+f.BLAKE3 {
			t.Fatalf("%s: digests blake3 %q sha256 %q, want the BLAKE3 alone", f.Path, f.BLAKE3, f.SHA256)
		}
		if victim < 0 && f.Size > 0 {
			victim = i
		}
	}
	m.ID = repo.NewSnapshotID(m.Time.Add(1e9))
	m.Files[victim].BLAKE3 = strings.Repeat("0", 64)
	if err := r.SaveManifest(ctx, &m); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "g1")
	_, err = backup.Restore(ctx, r, m.Ref(), dest, backup.RestoreOptions{})
	if !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), m.Files[victim].Path) ||
		!strings.Contains(err.Error(), "blake3:"+strings.Repeat("0", 64)) || !strings.Contains(err.Error(), "blake3:"+res.Manifest.Files[victim].BLAKE3) {
		t.Fatalf("restore of a snapshot with a wrong file hash: %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore left %s: %v", dest, err)
	}
}

// sameFiles checks that every file of want is in got with the same bytes.
func sameFiles(t *testing.T, want, got string) {
	t.Helper()
	entries, err := os.ReadDir(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		a, _ := os.ReadFile(filepath.Join(want, e.Name()))
		b, err := os.ReadFile(filepath.Join(got, e.Name()))
		if err != nil || string(a) != string(b) {
			t.Fatalf("%s differs after the restore (%v)", e.Name(), err)
		}
	}
}
