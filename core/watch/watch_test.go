package watch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/core/watch"
	"github.com/graphkeep/graphkeep/providers/local"
)

var seq atomic.Int64

func newRepo(t *testing.T) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	store, err := local.Open(ctx, fmt.Sprintf("mem://watch-test-%d", seq.Add(1)), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, store, repo.InitOptions{AvgChunkSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func files(m *repo.Manifest) map[string]string {
	out := map[string]string{}
	for _, f := range m.Files {
		if f.Type == repo.TypeFile {
			out[f.Path] = f.Digest()
		}
	}
	return out
}

// TestWatchSnapshotsEverySettledState runs continuous protection while a
// live writer ingests documents, in both write modes: every snapshot is one
// state of the directory, the settled ones are consistent, the final state
// is protected, retention keeps the count bounded, and a cancel stops it
// cleanly.
func TestWatchSnapshotsEverySettledState(t *testing.T) {
	if testing.Short() {
		t.Skip("live writer: a few seconds")
	}
	for _, mode := range []fixture.Mode{fixture.Atomic, fixture.InPlace} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := newRepo(t)
			lw, err := fixture.NewWriter(filepath.Join(t.TempDir(), "g1"), fixture.Spec{Docs: 10, EmbeddingDim: 64, Seed: 8},
				fixture.LiveOptions{Mode: mode, Docs: 5, DocGap: 600 * time.Millisecond, StepDelay: 5 * time.Millisecond, ExtractDelay: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var events []watch.Event
			done := make(chan error, 1)
			go func() {
				done <- watch.Run(ctx, r, []backup.Source{{Graph: "g1", Dir: lw.Dir()}}, watch.Options{
					BackupOptions: backup.Options{Quiet: 200 * time.Millisecond, MaxWait: 5 * time.Second},
					MinInterval:   100 * time.Millisecond, Rescan: time.Second,
					Retention: &retention.Policy{KeepLast: 3},
					OnSnapshot: func(ev watch.Event) {
						mu.Lock()
						events = append(events, ev)
						mu.Unlock()
					},
				})
			}()
			if err := lw.Run(ctx); err != nil {
				t.Fatal(err)
			}
			final := lw.States()[len(lw.States())-1]
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				var last *repo.Manifest
				if n := len(events); n > 0 && events[n-1].Err == nil {
					last = events[n-1].Manifest
				}
				mu.Unlock()
				if last != nil {
					if st, ok := lw.Generation(files(last)); ok && st.Seq == final.Seq {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("the final state (generation %d) was not protected within 10s", final.Seq)
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("watch after cancel: %v, want a clean stop", err)
			}
			mu.Lock()
			defer mu.Unlock()
			var maxRPO time.Duration
			for i, ev := range events {
				if ev.Err != nil {
					t.Errorf("backup %d: %v", i, ev.Err)
					continue
				}
				st, ok := lw.Generation(files(ev.Manifest))
				if !ok {
					t.Errorf("snapshot %s mixes states of the directory", ev.Manifest.ID)
					continue
				}
				if ev.Manifest.Good() != st.AtRest {
					t.Errorf("snapshot %s: good=%v, state at rest=%v", ev.Manifest.ID, ev.Manifest.Good(), st.AtRest)
				}
				maxRPO = max(maxRPO, ev.RPO)
			}
			if len(events) < 3 {
				t.Errorf("%d snapshots for 5 documents, want several", len(events))
			}
			refs, _ := r.ListSnapshots(context.Background(), "g1")
			if len(refs) > 3 {
				t.Errorf("%d snapshots kept, want at most 3 (keep_last 3)", len(refs))
			}
			t.Logf("%s: %d snapshots, worst RPO %s", mode, len(events), maxRPO)
		})
	}
}
