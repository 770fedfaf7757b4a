package replication_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/providers/local"
)

var seq atomic.Int64

func memURL() string { return fmt.Sprintf("mem://replication-%d", seq.Add(1)) }

func open(ctx context.Context, url string) (blob.Store, error) {
	return local.Open(ctx, url, local.Options{})
}

// primary makes a repository with snapshots of two graphs.
func primary(t *testing.T) (*repo.Repository, map[string]string) {
	t.Helper()
	ctx := context.Background()
	store, _ := open(ctx, memURL())
	cheap := repo.KDFParams{N: 1 << 10, R: 8, P: 1}
	r, err := repo.Init(ctx, store, repo.InitOptions{Password: "pw", AvgChunkSize: 64 << 10, KDF: &cheap})
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for i, g := range []string{"g1", "g2"} {
		dir := filepath.Join(t.TempDir(), g)
		if err := fixture.Generate(dir, fixture.Spec{Docs: 4, EmbeddingDim: 64, Seed: uint64(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := backup.Create(ctx, r, backup.Source{Graph: g, Dir: dir}, backup.Options{}); err != nil {
			t.Fatal(err)
		}
		dirs[g] = dir
	}
	return r, dirs
}

// consistent fails unless every manifest on dst has all its chunks there.
func consistent(t *testing.T, r *repo.Repository, dst blob.Store) int {
	t.Helper()
	ctx := context.Background()
	view := r.OnStore(dst, t.TempDir())
	refs, err := view.ListSnapshots(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := backup.Verify(ctx, view, refs, backup.VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("target holds a manifest whose chunks are missing or damaged: %+v", res.Damaged)
	}
	return len(refs)
}

func TestReplicateIsIncrementalAndRestorable(t *testing.T) {
	ctx := context.Background()
	r, dirs := primary(t)
	url := memURL()
	if err := replication.AddTarget(ctx, r, open, replication.Target{ID: "t1", URL: url}); err != nil {
		t.Fatal(err)
	}
	tg, _ := replication.GetTarget(ctx, r, "t1")
	dst, _ := open(ctx, url)
	lag, err := replication.ComputeLag(ctx, r, tg, dst, "")
	if err != nil || lag.Snapshots != 2 || lag.Bytes == 0 || lag.RPOSeconds <= 0 {
		t.Fatalf("lag before = %+v, %v", lag, err)
	}
	res, err := replication.Replicate(ctx, r, tg, dst, replication.Options{})
	if err != nil || res.Snapshots != 2 || res.Chunks == 0 {
		t.Fatalf("first run = %+v, %v", res, err)
	}
	again, err := replication.Replicate(ctx, r, tg, dst, replication.Options{})
	if err != nil || again.Snapshots != 0 || again.Chunks != 0 || again.Bytes != 0 {
		t.Fatalf("second run moved something: %+v, %v", again, err)
	}
	if lag, _ = replication.ComputeLag(ctx, r, tg, dst, ""); lag.Snapshots != 0 || lag.Bytes != 0 {
		t.Fatalf("lag after = %+v", lag)
	}
	consistent(t, r, dst)

	// Health computes the lag on every probe: what the target holds comes
	// from its kept index, not from reading (or decoding) its manifests,
	// even once the cached manifests are gone.
	cacheDir := t.TempDir()
	if _, err := replication.ComputeLag(ctx, r, tg, dst, cacheDir); err != nil {
		t.Fatal(err)
	}
	// So does a replication with nothing to do: it reads as many of the
	// target's objects with its cached manifests gone as with them.
	noop := func() int64 {
		t.Helper()
		before, _ := blob.StatsOf(dst)
		res, err := replication.Replicate(ctx, r, tg, dst, replication.Options{CacheDir: cacheDir})
		if err != nil || res.Snapshots != 0 || res.Chunks != 0 {
			t.Fatalf("no-op run = %+v, %v", res, err)
		}
		after, _ := blob.StatsOf(dst)
		return after.Sub(before).Gets
	}
	noop()
	warm := noop()
	cached, _ := filepath.Glob(filepath.Join(cacheDir, "*", "*", "snapshots"))
	if len(cached) == 0 {
		t.Fatal("no cached manifests to remove")
	}
	for _, dir := range cached {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	if cold := noop(); cold != warm {
		t.Fatalf("a no-op replication read %d of the target's objects with its cached manifests gone, %d with them", cold, warm)
	}
	before, _ := blob.StatsOf(dst)
	if lag, err := replication.ComputeLag(ctx, r, tg, dst, cacheDir); err != nil || lag.Snapshots != 0 {
		t.Fatalf("lag again = %+v, %v", lag, err)
	}
	after, _ := blob.StatsOf(dst)
	if gets := after.Sub(before).Gets; gets != 0 {
		t.Fatalf("computing the lag again read %d of the target's objects with its cached manifests gone, want none", gets)
	}

	// The target is a repository of its own: open it with the password and
	// restore from it.
	replica, err := repo.Open(ctx, dst, repo.OpenOptions{Password: "pw", CacheDir: t.TempDir()})
	if err != nil || replica.ID() != r.ID() {
		t.Fatalf("open the replica: %v", err)
	}
	ref, err := replica.FindSnapshot(ctx, "g2", "latest")
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "g2")
	if _, err := backup.Restore(ctx, replica, ref, to, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(dirs["g2"], "vdb_entities.json"))
	got, _ := os.ReadFile(filepath.Join(to, "vdb_entities.json"))
	if string(got) != string(want) {
		t.Fatal("restore from the replica differs")
	}
}

// failingStore fails every Put after the first n.
type failingStore struct {
	blob.Store
	left atomic.Int64
}

func (f *failingStore) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	if f.left.Add(-1) < 0 {
		return &blob.Error{Op: "put", Key: key, Kind: blob.ErrUnavailable, Err: errors.New("injected outage")}
	}
	return f.Store.Put(ctx, key, r, opts)
}

// A run cut short at any object leaves a consistent target, and the next
// run finishes the job without copying twice what was copied.
func TestInterruptedRunsResume(t *testing.T) {
	ctx := context.Background()
	r, _ := primary(t)
	url := memURL()
	if err := replication.AddTarget(ctx, r, open, replication.Target{ID: "t1", URL: url}); err != nil {
		t.Fatal(err)
	}
	tg, _ := replication.GetTarget(ctx, r, "t1")
	base, _ := open(ctx, url)
	copied := 0
	for budget := int64(1); ; budget += 3 {
		dst := &failingStore{Store: base}
		dst.left.Store(budget)
		res, err := replication.Replicate(ctx, r, tg, dst, replication.Options{Parallel: 1})
		consistent(t, r, base)
		copied += res.Chunks
		if err == nil {
			break
		}
		if !errors.Is(err, blob.ErrUnavailable) {
			t.Fatalf("budget %d: %v", budget, err)
		}
	}
	if n := consistent(t, r, base); n != 2 {
		t.Fatalf("target holds %d snapshots, want 2", n)
	}
	full, _ := open(ctx, memURL())
	once, err := replication.Replicate(ctx, r, tg, full, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if copied != once.Chunks {
		t.Fatalf("interrupted runs copied %d chunks in all, one clean run copies %d", copied, once.Chunks)
	}
}

func TestGraphFilterMirrorDeletesAndWipe(t *testing.T) {
	ctx := context.Background()
	r, _ := primary(t)
	url := memURL()
	tg := replication.Target{ID: "only-g1", URL: url, Graphs: []string{"g1"}, MirrorDeletes: true}
	if err := replication.AddTarget(ctx, r, open, tg); err != nil {
		t.Fatal(err)
	}
	dst, _ := open(ctx, url)
	if _, err := replication.Replicate(ctx, r, tg, dst, replication.Options{}); err != nil {
		t.Fatal(err)
	}
	view := r.OnStore(dst, t.TempDir())
	if refs, _ := view.ListSnapshots(ctx, "g2"); len(refs) != 0 {
		t.Fatalf("g2 reached a target that takes only g1: %v", refs)
	}
	ref, _ := r.FindSnapshot(ctx, "g1", "latest")
	if err := r.DeleteSnapshot(ctx, ref); err != nil {
		t.Fatal(err)
	}
	res, err := replication.Replicate(ctx, r, tg, dst, replication.Options{})
	if err != nil || res.Deleted != 1 {
		t.Fatalf("mirror deletes: %+v, %v", res, err)
	}

	// Wipe the target bucket: the next run fills it again.
	var keys []string
	_ = blob.Walk(ctx, dst, "", func(o blob.Object) error { keys = append(keys, o.Key); return nil })
	for _, k := range keys {
		_ = dst.Delete(ctx, k)
	}
	full := replication.Target{ID: "all", URL: url}
	if _, err := replication.Replicate(ctx, r, full, dst, replication.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := consistent(t, r, dst); n != 1 { // g1's only snapshot was forgotten
		t.Fatalf("refilled target holds %d snapshots, want 1", n)
	}
}

func TestAddTargetRefusals(t *testing.T) {
	ctx := context.Background()
	r, _ := primary(t)
	other, _ := open(ctx, memURL())
	if _, err := repo.Init(ctx, other, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		t    replication.Target
		want error
	}{
		{replication.Target{ID: "x", URL: other.Location()}, replication.ErrForeignTarget},
		{replication.Target{ID: "self", URL: r.Store().Location()}, replication.ErrTargetNotReady},
		{replication.Target{ID: "bad id!", URL: memURL()}, nil},
		{replication.Target{ID: "nowhere", URL: "file:///no/such/dir"}, nil},
	}
	for _, c := range cases {
		err := replication.AddTarget(ctx, r, open, c.t)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("AddTarget(%+v) = %v, want %v", c.t, err, c.want)
		}
	}
	if err := replication.AddTarget(ctx, r, open, replication.Target{ID: "ok", URL: memURL()}); err != nil {
		t.Fatal(err)
	}
	if err := replication.AddTarget(ctx, r, open, replication.Target{ID: "ok", URL: memURL()}); !errors.Is(err, replication.ErrTargetExists) {
		t.Fatalf("duplicate id: %v", err)
	}
	if err := replication.RemoveTarget(ctx, r, "ok"); err != nil {
		t.Fatal(err)
	}
	if err := replication.RemoveTarget(ctx, r, "ok"); !errors.Is(err, replication.ErrUnknownTarget) {
		t.Fatalf("removing twice: %v", err)
	}
}

func TestHysteresis(t *testing.T) {
	var s replication.Status
	now := time.Now()
	fail := errors.New("down")
	steps := []struct {
		err  error
		want string
	}{
		{nil, replication.Healthy},
		{fail, replication.Degraded},
		{nil, replication.Degraded}, // one success is not enough to recover
		{nil, replication.Healthy},
		{fail, replication.Degraded},
		{fail, replication.Degraded},
		{fail, replication.Unreachable},
		{nil, replication.Unreachable},
		{nil, replication.Healthy},
	}
	for i, st := range steps {
		s.Observe(st.err, time.Millisecond, now.Add(time.Duration(i)*time.Second), replication.Hysteresis{})
		if s.State != st.want {
			t.Fatalf("step %d: state %s, want %s", i, s.State, st.want)
		}
	}
	s.Observe(nil, 10*time.Second, now, replication.Hysteresis{})
	if s.State != replication.Degraded {
		t.Fatalf("a slow probe leaves the target %s, want DEGRADED", s.State)
	}
}

// Passwords follow the primary: one added there opens the target after a
// replication, one changed or removed there (say, leaked) stops opening it.
func TestPasswordsFollowThePrimary(t *testing.T) {
	ctx := context.Background()
	r, _ := primary(t)
	dst, err := open(ctx, memURL())
	if err != nil {
		t.Fatal(err)
	}
	tgt := replication.Target{ID: "t", URL: dst.Location()}
	replicate := func() {
		t.Helper()
		if _, err := replication.Replicate(ctx, r, tgt, dst, replication.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	opens := func(password string) bool {
		t.Helper()
		_, err := repo.Open(ctx, dst, repo.OpenOptions{Password: password, CacheDir: t.TempDir()})
		if err != nil && !errors.Is(err, repo.ErrWrongPassword) {
			t.Fatal(err)
		}
		return err == nil
	}
	replicate()
	added, err := r.AddKey(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	replicate()
	if !opens("second") {
		t.Fatal("a password added on the primary does not open the target")
	}
	if _, err := r.ChangePassword(ctx, "pw, changed"); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveKey(ctx, added.ID); err != nil {
		t.Fatal(err)
	}
	replicate()
	if opens("pw") || opens("second") {
		t.Fatal("a password changed or removed on the primary still opens the target")
	}
	if !opens("pw, changed") {
		t.Fatal("the changed password does not open the target")
	}
}

// A pack prune compacted (its chunks moved, the manifests naming the old
// places) is copied as it is, and the target reads and restores from it.
func TestReplicatesCompactedPacks(t *testing.T) {
	ctx := context.Background()
	store, _ := open(ctx, memURL())
	r, err := repo.Init(ctx, store, repo.InitOptions{AvgChunkSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r, err = repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "g1")
	var first *repo.Manifest
	for _, docs := range []int{12, 40} {
		if err := fixture.Generate(dir, fixture.Spec{Docs: docs, EmbeddingDim: 64, Seed: 3}); err != nil {
			t.Fatal(err)
		}
		res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: dir}, backup.Options{Quiet: -1})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = res.Manifest
		}
	}
	if err := retention.DeleteSnapshot(ctx, r, first.Ref()); err != nil {
		t.Fatal(err)
	}
	pr, err := retention.Prune(ctx, r, retention.PruneOptions{})
	if err != nil || pr.Compacted == 0 {
		t.Fatalf("prune = %+v, %v: want a pack compacted", pr, err)
	}
	url := memURL()
	if err := replication.AddTarget(ctx, r, open, replication.Target{ID: "t1", URL: url}); err != nil {
		t.Fatal(err)
	}
	tg, _ := replication.GetTarget(ctx, r, "t1")
	dst, _ := open(ctx, url)
	if _, err := replication.Replicate(ctx, r, tg, dst, replication.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := consistent(t, r, dst); n != 1 {
		t.Fatalf("target holds %d snapshots, want 1", n)
	}
	view := r.OnStore(dst, t.TempDir())
	refs, _ := view.ListSnapshots(ctx, "g1")
	out := filepath.Join(t.TempDir(), "out")
	if _, err := backup.Restore(ctx, view, refs[0], out, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
}
