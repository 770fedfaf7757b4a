package cost_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/cost"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/providers/local"
)

func counted(t *testing.T, name string) blob.Store {
	t.Helper()
	s, err := local.Open(context.Background(), fmt.Sprintf("mem://cost-%s-%d", name, time.Now().UnixNano()), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func requests(t *testing.T, stores ...blob.Store) cost.Requests {
	t.Helper()
	var r cost.Requests
	for _, s := range stores {
		st, ok := blob.StatsOf(s)
		if !ok {
			t.Fatal("store counts nothing")
		}
		r.Writes += float64(st.Puts + st.Lists + st.Copies)
		r.Reads += float64(st.Gets + st.Stats)
		r.Deletes += float64(st.Deletes)
	}
	return r
}

func minus(a, b cost.Requests) cost.Requests {
	return cost.Requests{Writes: a.Writes - b.Writes, Reads: a.Reads - b.Reads, Deletes: a.Deletes - b.Deletes}
}

func near(t *testing.T, what string, got, want cost.Requests) {
	t.Helper()
	t.Logf("%s: counted %+v, model %+v", what, got, want)
	ok := func(g, w float64) bool { return math.Abs(g-w) <= math.Max(2, 0.1*w) }
	if !ok(got.Writes, want.Writes) || !ok(got.Reads, want.Reads) || !ok(got.Deletes, want.Deletes) {
		t.Errorf("%s: counted %+v, the model says %+v", what, got, want)
	}
}

// TestModelMatchesCountedRequests runs each scheduled operation against
// counting stores and compares what it sent with what the model charges.
func TestModelMatchesCountedRequests(t *testing.T) {
	ctx := context.Background()
	primary, target := counted(t, "primary"), counted(t, "target")
	r, err := repo.Init(ctx, primary, repo.InitOptions{AvgChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "kv_store_full_docs.bin")
	rng := rand.New(rand.NewPCG(1, 1))
	grow := func(n int) {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	opts := backup.Options{Quiet: -1}
	snap := func() *backup.Result {
		res, err := backup.Create(ctx, r, backup.Source{Graph: "g", Dir: dir}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	tgt := replication.Target{ID: "t", URL: target.Location()}
	replicate := func() {
		if _, err := replication.Replicate(ctx, r, tgt, target, replication.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	grow(1 << 20)
	first := snap()
	replicate()

	// A backup that stores new chunks: those its manifest names and the
	// first's does not.
	grow(1 << 20)
	before := requests(t, primary)
	second := snap()
	old := first.Manifest.Objects()
	added := 0.0
	for id := range second.Manifest.Objects() {
		if _, ok := old[id]; !ok {
			added++
		}
	}
	e := cost.Compute(cost.Shape{Graphs: []cost.Graph{{Name: "g", BackupInterval: time.Hour, NewObjects: added}}}, nil)
	near(t, "backup", minus(requests(t, primary), before), e.Operations[0].PerRun)

	// A no-change backup.
	before = requests(t, primary)
	snap()
	e = cost.Compute(cost.Shape{Graphs: []cost.Graph{{Name: "g", BackupInterval: time.Hour}}}, nil)
	near(t, "no-change backup", minus(requests(t, primary), before), e.Operations[0].PerRun)

	// Replication of those two snapshots.
	before = requests(t, primary, target)
	replicate()
	refs, _ := r.ListSnapshots(ctx, "")
	e = cost.Compute(cost.Shape{Graphs: []cost.Graph{{Name: "g", BackupInterval: time.Hour, NewObjects: added / 2}},
		Targets: 1, Snapshots: len(refs), ReplicationInterval: 2 * time.Hour}, nil)
	near(t, "replication", minus(requests(t, primary, target), before), e.Operations[1].PerRun)

	// A cleanup that forgets two snapshots of three and prunes what they
	// alone named: the file is replaced, so no chunk of the two is kept
	// and neither is any pack holding them (a pack goes once none of its
	// chunks is named; appends keep the older packs).
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	grow(1 << 20)
	snap()
	refs, _ = r.ListSnapshots(ctx, "")
	before = requests(t, primary)
	if _, err := retention.Forget(ctx, r, "g", retention.Policy{KeepLast: 1}, false); err != nil {
		t.Fatal(err)
	}
	pr, err := retention.Prune(ctx, r, retention.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Deleted == 0 {
		t.Fatalf("prune = %+v, want the forgotten snapshots' objects deleted", pr)
	}
	e = cost.Compute(cost.Shape{Graphs: []cost.Graph{{Name: "g", BackupInterval: 30 * time.Minute, NewObjects: float64(pr.Deleted) / 2}},
		Snapshots: len(refs), StoredObjects: int64(pr.Stored), CleanupInterval: time.Hour}, nil)
	near(t, "cleanup", minus(requests(t, primary), before), e.Operations[1].PerRun)
}
