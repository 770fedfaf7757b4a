package backup_test

import (
	"context"
	"errors"
	"os"
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
			var single, total, consistent, resumable, mid int
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
				// Resumable exactly when the state is one LightRAG resumes
				// from; never good while the graph stores disagree.
				if c.Resumable != st.Resumable {
					t.Errorf("backup %d: resumable=%v, but the state (generation %d) resumable=%v: %+v", i, c.Resumable, st.Seq, st.Resumable, c)
				}
				switch {
				case c.Consistent:
					consistent++
				case c.Resumable:
					resumable++
					if c.Resume.Total() != 1 || len(c.Resume.Docs) != 1 {
						t.Errorf("backup %d: resumable with %v, want the one document being ingested", i, c.Resume)
					}
				case !c.MidIngestion:
					t.Errorf("backup %d: inconsistent but neither resumable nor marked mid-ingestion: %+v", i, c)
				default:
					mid++
				}
				if m.Good() != (st.AtRest || st.Resumable) {
					t.Errorf("backup %d: good=%v for a state at rest=%v, resumable=%v", i, m.Good(), st.AtRest, st.Resumable)
				}
				if opts.Quiet > 0 && !c.Consistent && c.WaitedMS < opts.MaxWait.Milliseconds() {
					t.Errorf("backup %d: with a quiet window, not consistent after waiting only %d ms", i, c.WaitedMS)
				}
			}
			t.Logf("%s: %d snapshots, %d single-instant, %d consistent, %d resumable, %d mid-ingestion", mode, total, single, consistent, resumable, mid)
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

// TestResumableIsLatestAndSaysWhatResumes: LightRAG stopped with a
// document pending or processing (all other stores agreeing) is a state it
// resumes from: the backup keeps it at once, marked resumable and naming
// the document; "latest" takes it over the older consistent snapshot, and
// its restore says which document LightRAG processes again. With a quiet
// window the backup first waits for consistency, the whole maximum wait.
func TestResumableIsLatestAndSaysWhatResumes(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	lw, err := fixture.NewWriter(filepath.Join(t.TempDir(), "g1"), fixture.Spec{Docs: 5, EmbeddingDim: 32, Seed: 7},
		fixture.LiveOptions{Docs: 1, StepDelay: time.Millisecond, ExtractDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	src := backup.Source{Graph: "g1", Dir: lw.Dir()}
	consistent, err := backup.Create(ctx, r, src, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		for len(lw.States()) < 5 { // the document and its status changes: pending, processing
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if err := lw.Run(wctx); err != nil {
		t.Fatal(err)
	}
	states := lw.States()
	if last := states[len(states)-1]; !last.Resumable {
		t.Fatalf("the writer stopped in state %d, not a resumable one", last.Seq)
	}
	res, err := backup.Create(ctx, r, src, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, c := res.Manifest, res.Manifest.Consistency
	if !c.Resumable || c.Consistent || c.MidIngestion || !m.Good() || m.State() != repo.StateResumable || c.WaitedMS > 1000 {
		t.Fatalf("a workspace with a document processing: %+v, want resumable at once", c)
	}
	if c.Resume.Total() != 1 || len(c.Resume.Docs) != 1 || c.Resume.Docs[0].Status != "processing" {
		t.Fatalf("resume = %v, want the one processing document", c.Resume)
	}
	refs, _ := r.ListSnapshots(ctx, "g1")
	choice, _, err := r.LatestGood(ctx, "g1", refs)
	if err != nil || choice.ID != m.ID || choice.ID == consistent.Manifest.ID {
		t.Fatalf("latest = %+v, %v: want the resumable %s", choice, err, m.ID)
	}
	restored, err := backup.Restore(ctx, r, m.Ref(), filepath.Join(t.TempDir(), "r"), backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if restored.Resume == nil || restored.Resume.Docs[0].ID != c.Resume.Docs[0].ID {
		t.Fatalf("restore of a resumable snapshot says %v, want the document LightRAG processes again", restored.Resume)
	}
	// A quiet window asks for consistency first: resumable after the wait.
	waited, err := backup.Create(ctx, r, src, backup.Options{Quiet: 50 * time.Millisecond, MaxWait: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// (On a loaded machine the graph may already have been untouched for
	// the whole wait when the backup starts: then it needs no more.)
	if wc := waited.Manifest.Consistency; !wc.Resumable || wc.WaitedMS < 350 && wc.QuietMS < 400 {
		t.Fatalf("with a quiet window: %+v, want resumable after the maximum wait", wc)
	}
}

// TestBulkIngestionSnapshotsAreGoodAndQuick backs up a workspace into which
// LightRAG ingests documents back to back (a bulk import: never silent for
// a second): nearly every snapshot is good (consistent or resumable) and
// taken within seconds, and none is good while the graph stores disagree.
func TestBulkIngestionSnapshotsAreGoodAndQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("live writer: a few seconds")
	}
	ctx := context.Background()
	r, _ := newRepo(t, "")
	lw, err := fixture.NewWriter(filepath.Join(t.TempDir(), "g1"), fixture.Spec{Docs: 12, EmbeddingDim: 64, Seed: 23},
		fixture.LiveOptions{Bulk: true, StepDelay: 5 * time.Millisecond, ExtractDelay: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- lw.Run(wctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("writer: %v", err)
		}
	}()
	src := backup.Source{Graph: "g1", Dir: lw.Dir()}
	opts := backup.Options{MaxWait: 5 * time.Second}
	const backups = 15
	good, worst := 0, time.Duration(0)
	for i := range backups {
		start := time.Now()
		res, err := backup.Create(ctx, r, src, opts)
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		worst = max(worst, time.Since(start))
		m := res.Manifest
		st, ok := generationOf(lw, m)
		if !ok {
			t.Fatalf("backup %d: snapshot mixes states of the directory", i)
		}
		if m.Good() != (st.AtRest || st.Resumable) {
			t.Errorf("backup %d: good=%v (%s) for a state at rest=%v, resumable=%v", i, m.Good(), m.State(), st.AtRest, st.Resumable)
		}
		if m.Good() {
			good++
		}
	}
	t.Logf("bulk ingestion: %d of %d snapshots good, slowest backup %s", good, backups, worst)
	if good*10 < backups*9 {
		t.Fatalf("only %d of %d snapshots during bulk ingestion were good (consistent or resumable)", good, backups)
	}
}

// TestFlushWaitSeesThroughStaleTemporaries: a temporary file a crash of
// LightRAG left behind long ago does not hold the cut up; one being written
// now does, until it is renamed away.
func TestFlushWaitSeesThroughStaleTemporaries(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	dir := graphDir(t, 2)
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"kv_store_full_docs.json", "vdb_chunks.json.tmp.1.2.3"} {
		p := filepath.Join(dir, f)
		if f != "kv_store_full_docs.json" {
			if err := os.WriteFile(p, []byte("{"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	settleAll(t, dir, old)
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: dir}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Manifest.Consistency; c.WaitedMS > 1000 {
		t.Fatalf("a stale temporary file held the cut up %d ms", c.WaitedMS)
	}
	// A flush in progress: the cut waits for its rename.
	tmp := filepath.Join(dir, "vdb_entities.json.tmp.9.9.9")
	if err := os.WriteFile(tmp, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(400 * time.Millisecond)
		_ = os.Remove(tmp)
	}()
	res, err = backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: dir}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Manifest.Consistency; c.WaitedMS < 300 {
		t.Fatalf("the cut did not wait for a flush in progress (waited %d ms)", c.WaitedMS)
	}
}

// settleAll dates every file of dir at when, so the graph reads as quiet.
func settleAll(t *testing.T, dir string, when time.Time) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Chtimes(filepath.Join(dir, e.Name()), when, when); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(dir, when, when); err != nil {
		t.Fatal(err)
	}
}
