package backup_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
)

// startWriter runs a live LightRAG writer on a fresh workspace until the
// test ends.
func startWriter(t *testing.T, mode fixture.Mode) *fixture.Writer {
	t.Helper()
	opts := fixture.LiveOptions{Mode: mode, DocGap: 300 * time.Millisecond, StepDelay: 5 * time.Millisecond, ExtractDelay: 60 * time.Millisecond}
	if mode == fixture.InPlace {
		opts.PieceSize, opts.PiecePause = 16<<10, time.Millisecond // slow rewrites: torn files are likely
	}
	lw, err := fixture.NewWriter(filepath.Join(t.TempDir(), "g1"), fixture.Spec{Docs: 12, EmbeddingDim: 64, Seed: 21}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("writer: %v", err)
		}
	})
	return lw
}

// generationOf says which state of the writer a snapshot holds.
func generationOf(lw *fixture.Writer, m *repo.Manifest) (fixture.State, bool) {
	files := map[string]string{}
	for _, f := range m.Files {
		if f.Type == repo.TypeFile {
			files[f.Path] = f.Digest()
		}
	}
	return lw.Generation(files)
}

// TestLiveSnapshotsAreOneInstant backs up a workspace LightRAG is writing,
// in both write modes, with and without the quiet window: every snapshot
// holds one state of the directory (never files from different moments);
// with the quiet window, a consistent snapshot is a state at rest; a
// snapshot is consistent exactly when its state is at rest; no torn file is
// stored unflagged; and "latest" restores a graph whose stores agree.
func TestLiveSnapshotsAreOneInstant(t *testing.T) {
	if testing.Short() {
		t.Skip("live writer: a few seconds")
	}
	for _, mode := range []fixture.Mode{fixture.Atomic, fixture.InPlace} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			r, _ := newRepo(t, "")
			lw := startWriter(t, mode)
			src := backup.Source{Graph: "g1", Dir: lw.Dir()}
			quiet := backup.Options{Quiet: 150 * time.Millisecond, MaxWait: 3 * time.Second, Settle: 10 * time.Millisecond}
			atOnce := backup.Options{Quiet: -1, MaxWait: time.Millisecond, Settle: 10 * time.Millisecond, Attempts: 20}
			var single, total, consistent, mid int
			for i := 0; i < 24; i++ {
				opts := quiet
				if i%3 != 0 {
					opts = atOnce // cuts in the middle of a document's burst
				}
				res, err := backup.Create(ctx, r, src, opts)
				if errors.Is(err, backup.ErrUnstable) && mode == fixture.InPlace {
					continue // refused, never stored: allowed while files are rewritten in place
				}
				if err != nil {
					t.Fatalf("backup %d: %v", i, err)
				}
				m := res.Manifest
				total++
				st, ok := generationOf(lw, m)
				if !ok {
					t.Errorf("backup %d (%s): snapshot %s mixes states of the directory or holds a torn file", i, opts.Quiet, m.ID)
					continue
				}
				single++
				c := m.Consistency
				if m.Flagged() {
					t.Errorf("backup %d: snapshot flagged: %v", i, m.LightRAG.Problems)
				}
				if c.Consistent != st.AtRest {
					t.Errorf("backup %d: consistent=%v, but the state (generation %d) at rest=%v: %v", i, c.Consistent, st.Seq, st.AtRest, c.Broken())
				}
				if c.Consistent {
					consistent++
				} else if !c.MidIngestion {
					t.Errorf("backup %d: inconsistent but not marked mid-ingestion: %+v", i, c)
				} else {
					mid++
				}
				if opts.Quiet > 0 && !c.Consistent && c.WaitedMS < opts.MaxWait.Milliseconds() {
					t.Errorf("backup %d: mid-ingestion after waiting only %d ms", i, c.WaitedMS)
				}
			}
			t.Logf("%s: %d snapshots, %d single-instant, %d consistent, %d mid-ingestion", mode, total, single, consistent, mid)
			if total < 12 {
				t.Fatalf("only %d of 24 backups stored a snapshot", total)
			}
			if consistent == 0 {
				t.Fatalf("no snapshot was consistent")
			}
			ref, err := r.FindSnapshot(ctx, "g1", "latest")
			if err != nil {
				t.Fatal(err)
			}
			res, err := backup.Restore(ctx, r, ref, filepath.Join(t.TempDir(), "restored"), backup.RestoreOptions{})
			if err != nil {
				t.Fatalf("restore latest: %v", err)
			}
			if !res.LightRAG.Valid() {
				t.Fatalf("latest restored a broken graph: %v", res.LightRAG.Problems)
			}
		})
	}
}

// TestLatestPassesOverMidIngestion: a snapshot cut while the stores
// disagree is kept, marked, and passed over by "latest", which says why;
// restoring it needs its id and an explicit allowance.
func TestLatestPassesOverMidIngestion(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	lw, err := fixture.NewWriter(filepath.Join(t.TempDir(), "g1"), fixture.Spec{Docs: 5, EmbeddingDim: 32, Seed: 2},
		fixture.LiveOptions{Docs: 1, StepDelay: time.Millisecond, ExtractDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	src := backup.Source{Graph: "g1", Dir: lw.Dir()}
	good, err := backup.Create(ctx, r, src, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := good.Manifest.Consistency; !c.Consistent || c.MidIngestion || c.Attempts != 1 || c.WaitedMS > 100 {
		t.Fatalf("a workspace at rest: %+v, want consistent at once", c)
	}
	// LightRAG stops half-way through a document (a crash): the workspace
	// stays mid-ingestion.
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		for len(lw.States()) < 12 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if err := lw.Run(wctx); err != nil {
		t.Fatal(err)
	}
	torn, err := backup.Create(ctx, r, src, backup.Options{Quiet: 50 * time.Millisecond, MaxWait: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := torn.Manifest.Consistency
	if !c.MidIngestion || c.Consistent || len(c.Broken()) == 0 || c.WaitedMS < 350 {
		t.Fatalf("a workspace mid-ingestion: %+v, want it marked after the maximum wait", c)
	}
	refs, _ := r.ListSnapshots(ctx, "g1")
	choice, ok, err := r.LatestGood(ctx, "g1", refs)
	if err != nil || !ok || choice.ID != good.Manifest.ID || len(choice.Passed) != 1 || choice.Passed[0].ID != torn.Manifest.ID {
		t.Fatalf("latest = %+v, %v: want %s, passing over %s", choice, err, good.Manifest.ID, torn.Manifest.ID)
	}
	to := filepath.Join(t.TempDir(), "r")
	if _, err := backup.Restore(ctx, r, torn.Manifest.Ref(), to, backup.RestoreOptions{}); !errors.Is(err, repo.ErrNotGood) {
		t.Fatalf("restore of a mid-ingestion snapshot: %v, want ErrNotGood", err)
	}
	if _, err := backup.Restore(ctx, r, torn.Manifest.Ref(), to, backup.RestoreOptions{AllowNotGood: true}); err != nil {
		t.Fatalf("restore allowed explicitly: %v", err)
	}
}
