package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers/local"
)

// benchGraph is a ~100 MB workspace, generated once per benchmark run and
// aged past the racy-mtime window so the numbers show steady-state work.
func benchGraph(b *testing.B) (string, int64) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "g")
	spec := fixture.SpecForSize(100<<20, 1)
	if err := fixture.Generate(dir, spec); err != nil {
		b.Fatal(err)
	}
	var size int64
	entries, _ := os.ReadDir(dir)
	old := time.Now().Add(-time.Hour)
	for _, e := range entries {
		info, _ := e.Info()
		size += info.Size()
		_ = os.Chtimes(filepath.Join(dir, e.Name()), old, old)
	}
	return dir, size
}

func benchRepo(b *testing.B, password string) *repo.Repository {
	return benchRepoLevel(b, password, "")
}

func benchRepoLevel(b *testing.B, password, level string) *repo.Repository {
	b.Helper()
	ctx := context.Background()
	store, err := local.Open(ctx, "file://"+b.TempDir()+"?create=true", local.Options{})
	if err != nil {
		b.Fatal(err)
	}
	r, err := repo.Init(ctx, store, repo.InitOptions{Password: password, CompressionLevel: level})
	if err != nil {
		b.Fatal(err)
	}
	r, err = repo.Open(ctx, store, repo.OpenOptions{Password: password, CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkCreate: a full backup of a new graph into a fresh encrypted
// local repository, at each compression level; stored/op is the bytes
// written for chunks.
func BenchmarkCreate(b *testing.B) {
	dir, size := benchGraph(b)
	for _, level := range []string{"fastest", "default"} {
		b.Run(level, func(b *testing.B) {
			b.SetBytes(size)
			var stored int64
			for b.Loop() {
				b.StopTimer()
				r := benchRepoLevel(b, "bench", level)
				b.StartTimer()
				res, err := backup.Create(context.Background(), r, backup.Source{Graph: "g", Dir: dir}, backup.Options{})
				if err != nil {
					b.Fatal(err)
				}
				stored = res.Manifest.Totals.StoredBytes
			}
			b.ReportMetric(float64(stored)/float64(size), "stored/byte")
		})
	}
}

// BenchmarkRestore: a full restore from an encrypted local repository.
func BenchmarkRestore(b *testing.B) {
	dir, size := benchGraph(b)
	r := benchRepo(b, "bench")
	res, err := backup.Create(context.Background(), r, backup.Source{Graph: "g", Dir: dir}, backup.Options{})
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	b.SetBytes(size)
	for b.Loop() {
		dest := filepath.Join(out, "r")
		_ = os.RemoveAll(dest)
		_ = os.RemoveAll(filepath.Join(out, ".graphkeep-previous-r"))
		if _, err := backup.Restore(context.Background(), r, res.Manifest.Ref(), dest, backup.RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
