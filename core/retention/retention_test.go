package retention_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/providers/local"
)

func snaps(times ...string) []repo.SnapshotRef {
	var out []repo.SnapshotRef
	for i, s := range times {
		t, _ := time.Parse("2006-01-02 15:04", s)
		out = append(out, repo.SnapshotRef{Graph: "g", ID: t.Format("20060102T150405Z") + fmt.Sprintf("-aaaa%c%c", 'a'+i/26, 'a'+i%26), Time: t})
	}
	return out
}

func kept(ds []retention.Decision) string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Snapshot.Time.Format("01-02 15:04"))
		}
	}
	return strings.Join(out, ",")
}

func TestApply(t *testing.T) {
	all := snaps("2026-01-01 10:00", "2026-01-01 11:00", "2026-01-01 11:30", "2026-01-02 09:00",
		"2026-01-08 09:00", "2026-02-01 09:00", "2026-02-01 18:00")
	for _, c := range []struct {
		name   string
		policy retention.Policy
		want   string
	}{
		{"last 2", retention.Policy{KeepLast: 2}, "02-01 18:00,02-01 09:00"},
		{"hourly 3", retention.Policy{KeepHourly: 3}, "02-01 18:00,02-01 09:00,01-08 09:00"},
		{"daily 3", retention.Policy{KeepDaily: 3}, "02-01 18:00,01-08 09:00,01-02 09:00"},
		{"weekly 2", retention.Policy{KeepWeekly: 2}, "02-01 18:00,01-08 09:00"},
		{"monthly 5", retention.Policy{KeepMonthly: 5}, "02-01 18:00,01-08 09:00"},
		{"yearly 1", retention.Policy{KeepYearly: 1}, "02-01 18:00"},
		{"within 10h", retention.Policy{KeepWithin: duration.Duration(10 * time.Hour)}, "02-01 18:00,02-01 09:00"},
		{"last 1 + daily 2", retention.Policy{KeepLast: 1, KeepDaily: 2}, "02-01 18:00,01-08 09:00"},
	} {
		if got := kept(retention.Apply(all, c.policy, nil)); got != c.want {
			t.Errorf("%s: kept %s, want %s", c.name, got, c.want)
		}
	}
	pins := map[string][]string{"g/" + all[0].ID: {"cp1"}}
	ds := retention.Apply(all, retention.Policy{KeepLast: 1}, pins)
	if last := ds[len(ds)-1]; !last.Keep || last.Reasons[0] != "pinned by checkpoint cp1" {
		t.Fatalf("pinned snapshot: %+v", last)
	}
}

func TestEmptyPolicyIsRefused(t *testing.T) {
	if err := (retention.Policy{}).Validate(); !errors.Is(err, retention.ErrEmptyPolicy) {
		t.Fatalf("empty policy: %v", err)
	}
	if err := (retention.Policy{KeepLast: -1}).Validate(); err == nil {
		t.Fatal("negative count accepted")
	}
}

var seq atomic.Int64

func TestForgetAndPrune(t *testing.T) {
	ctx := context.Background()
	store, _ := local.Open(ctx, fmt.Sprintf("mem://retention-%d", seq.Add(1)), local.Options{})
	r, err := repo.Init(ctx, store, repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Three snapshots, each with a chunk of its own and one shared.
	shared := []byte("shared chunk")
	var made []*repo.Manifest
	for i := 0; i < 3; i++ {
		own := []byte(fmt.Sprintf("chunk of snapshot %d", i))
		var refs []repo.ChunkRef
		for _, data := range [][]byte{shared, own} {
			id := r.HashChunk(data)
			if err := r.PutChunk(ctx, id, r.EncodeChunk(id, data)); err != nil {
				t.Fatal(err)
			}
			refs = append(refs, repo.ChunkRef{ID: id, Size: len(data)})
		}
		m := &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(time.Now().Add(time.Duration(i) * time.Hour)), Graph: "g", Time: time.Now(),
			Files: []repo.FileEntry{{Path: "f", Type: repo.TypeFile, Chunks: refs}}}
		if err := r.SaveManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
		made = append(made, m)
	}
	// The oldest is pinned.
	if err := r.SaveCheckpoint(ctx, &repo.Checkpoint{Version: 1, ID: repo.NewSnapshotID(time.Now()), Snapshots: []repo.CheckpointSnapshot{{Graph: "g", ID: made[0].ID}}}); err != nil {
		t.Fatal(err)
	}
	if err := retention.DeleteSnapshot(ctx, r, made[0].Ref()); !errors.Is(err, retention.ErrPinned) {
		t.Fatalf("deleting a pinned snapshot: %v", err)
	}
	res, err := retention.Forget(ctx, r, "g", retention.Policy{KeepLast: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 1 {
		t.Fatalf("forget removed %d, want 1 (newest kept by keep_last, oldest pinned)", res.Removed)
	}
	dry, err := retention.Prune(ctx, r, retention.PruneOptions{DryRun: true})
	if err != nil || dry.Unreferenced != 1 || dry.Deleted != 0 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	pr, err := retention.Prune(ctx, r, retention.PruneOptions{})
	if err != nil || pr.Deleted != 1 || pr.Stored != 4 {
		t.Fatalf("prune = %+v, %v", pr, err)
	}
	// Every chunk the remaining snapshots name is still there.
	for _, m := range []*repo.Manifest{made[0], made[2]} {
		for id := range m.Objects() {
			if ok, _ := blob.Exists(ctx, store, repo.ChunkKey(id)); !ok {
				t.Fatalf("prune deleted %s of a kept snapshot", repo.ChunkKey(id))
			}
		}
	}
}
