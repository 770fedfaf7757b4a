package recovery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers/local"
)

var seq atomic.Int64

func memURL() string { return fmt.Sprintf("mem://recovery-%d", seq.Add(1)) }

func open(ctx context.Context, url string) (blob.Store, error) {
	return local.Open(ctx, url, local.Options{})
}

type world struct {
	r       *repo.Repository
	sources []backup.Source
	targets map[string]string // id -> url
}

// newWorld: a primary with three graphs and two replicated targets.
func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	store, _ := open(ctx, memURL())
	cheap := repo.KDFParams{N: 1 << 10, R: 8, P: 1}
	r, err := repo.Init(ctx, store, repo.InitOptions{Password: "pw", AvgChunkSize: 64 << 10, KDF: &cheap})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{r: r, targets: map[string]string{}}
	for i, g := range []string{"g1", "g2", "g3"} {
		dir := filepath.Join(t.TempDir(), g)
		if err := fixture.Generate(dir, fixture.Spec{Docs: 3, EmbeddingDim: 64, Seed: uint64(i)}); err != nil {
			t.Fatal(err)
		}
		w.sources = append(w.sources, backup.Source{Graph: g, Dir: dir})
	}
	for _, id := range []string{"east", "west"} {
		w.targets[id] = memURL()
		if err := replication.AddTarget(ctx, r, open, replication.Target{ID: id, URL: w.targets[id]}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) replicate(t *testing.T) {
	t.Helper()
	if _, err := replication.RunOnce(context.Background(), w.r, open, replication.WatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointValidateEverywhere(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	cp, err := recovery.CreateCheckpoint(ctx, w.r, w.sources, recovery.CreateOptions{Note: "nightly"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Snapshots) != 3 || cp.Snapshots[0].LightRAG == nil || cp.Snapshots[0].LightRAG.Docs != 3 {
		t.Fatalf("checkpoint = %+v", cp)
	}
	w.replicate(t)

	// One chunk of one snapshot is lost on east.
	east, _ := open(ctx, w.targets["east"])
	m, _ := w.r.Cache().Manifest(ctx, repo.SnapshotRef{Graph: "g2", ID: cp.Snapshots[1].ID})
	var lost repo.ChunkID
	for id := range m.Objects() {
		if err := east.Delete(ctx, repo.ChunkKey(id)); err != nil {
			t.Fatal(err)
		}
		lost = id
		break
	}
	locs, err := recovery.Locations(ctx, w.r, open)
	if err != nil {
		t.Fatal(err)
	}
	v := recovery.Validate(ctx, w.r, cp, locs, true)
	got := map[string]string{}
	for _, l := range v.Locations {
		got[l.Location] = fmt.Sprintf("%s/%d", l.State, l.MissingObjects)
	}
	want := map[string]string{"primary": "restorable/0", "east": "missing/1", "west": "restorable/0"}
	for k, wv := range want {
		if got[k] != wv {
			t.Fatalf("validation = %v, want %v", got, want)
		}
	}
	// The damage is named: the chunk, and the snapshot and file using it.
	for _, l := range v.Locations {
		if l.Location == "east" && (!strings.Contains(l.Error, repo.ChunkKey(lost)) || !strings.Contains(l.Error, "g2/"+cp.Snapshots[1].ID+":")) {
			t.Fatalf("east: %q, want the lost chunk and its snapshot named", l.Error)
		}
	}
	if err := recovery.SaveValidation(ctx, w.r, v); err != nil {
		t.Fatal(err)
	}
	last, _ := recovery.LastValidation(ctx, w.r, cp.ID)
	if strings.Join(last.RestorableAt(), ",") != "primary,west" {
		t.Fatalf("stored validation says restorable at %v", last.RestorableAt())
	}

	// Checkpoints pin their snapshots; deleting one unpins.
	if err := recovery.DeleteCheckpoint(ctx, w.r, cp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := recovery.Find(ctx, w.r, "latest"); !errors.Is(err, recovery.ErrNoCheckpoint) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestFailoverRestoresEveryGraph(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	cp, err := recovery.CreateCheckpoint(ctx, w.r, w.sources, recovery.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.replicate(t)
	primaryURL := w.r.Store().Location()
	target, _ := replication.GetTarget(ctx, w.r, "west")
	dst, _ := open(ctx, target.URL)
	replica, err := repo.Open(ctx, dst, repo.OpenOptions{Password: "pw", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}

	// A new backup the target has not got: failover must say what is lost.
	if _, err := backup.Create(ctx, w.r, w.sources[0], backup.Options{}); err != nil {
		t.Fatal(err)
	}
	plan, err := recovery.PlanFailover(ctx, w.r, replica, target, primaryURL, recovery.FailoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Blockers) != 1 || !strings.Contains(plan.Blockers[0], "1 snapshots") {
		t.Fatalf("blockers = %v, want the data loss named", plan.Blockers)
	}
	if _, err := recovery.Failover(ctx, replica, plan, recovery.FailoverOptions{}); !errors.Is(err, recovery.ErrBlocked) {
		t.Fatalf("failover to a lagging target without --force: %v", err)
	}
	// A dry run answers "not possible, because ..." and succeeds.
	if out, err := recovery.Failover(ctx, replica, plan, recovery.FailoverOptions{DryRun: true}); err != nil || out.Possible || len(out.Plan.Blockers) != 1 {
		t.Fatalf("dry run with a blocker: %+v, %v; want success saying it is not possible", out, err)
	}
	if out, err := recovery.Failover(ctx, replica, plan, recovery.FailoverOptions{DryRun: true, Force: true}); err != nil || !out.Possible {
		t.Fatalf("forced dry run: %+v, %v", out, err)
	}

	// The primary is lost: plan without it, restore everything.
	root := t.TempDir()
	opts := recovery.FailoverOptions{Restore: true, GraphsRoot: root}
	plan, err = recovery.PlanFailover(ctx, nil, replica, target, primaryURL, opts)
	if err != nil || len(plan.Blockers) != 0 || plan.Checkpoint.ID != cp.ID {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	dry := opts
	dry.DryRun = true
	if out, err := recovery.Failover(ctx, replica, plan, dry); err != nil || out.Switch != nil {
		t.Fatalf("dry run did something: %+v, %v", out, err)
	}
	out, err := recovery.Failover(ctx, replica, plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range out.Restored {
		if !res.LightRAG.Equal(cp.Snapshots[i].LightRAG) {
			t.Fatalf("%s restored with %v, checkpoint says %v", res.Snapshot.Graph, res.LightRAG, cp.Snapshots[i].LightRAG)
		}
		want, _ := os.ReadFile(filepath.Join(w.sources[i].Dir, "vdb_chunks.json"))
		got, _ := os.ReadFile(filepath.Join(root, res.Snapshot.Graph, "vdb_chunks.json"))
		if string(got) != string(want) {
			t.Fatalf("%s differs after failover restore", res.Snapshot.Graph)
		}
	}
	hist, _ := recovery.History(ctx, replica)
	if len(hist) != 1 || hist[0].From != primaryURL || hist[0].Target != "west" {
		t.Fatalf("history = %+v", hist)
	}
	targets, _ := replication.ListTargets(ctx, replica)
	var ids []string
	for _, tg := range targets {
		ids = append(ids, tg.ID+"="+tg.URL)
	}
	if got := strings.Join(ids, " "); !strings.Contains(got, recovery.OldPrimaryTarget+"="+primaryURL) || strings.Contains(got, "west=") {
		t.Fatalf("targets of the new primary: %s", got)
	}
}

func TestRedirects(t *testing.T) {
	dir := t.TempDir()
	if got, r, err := recovery.Resolve(dir, "s3://a"); got != "s3://a" || r != nil || err != nil {
		t.Fatalf("no redirect: %s %v %v", got, r, err)
	}
	_ = recovery.SaveRedirect(dir, "s3://a", "s3://b", "id")
	_ = recovery.SaveRedirect(dir, "s3://b", "s3://c", "id")
	if got, _, _ := recovery.Resolve(dir, "s3://a"); got != "s3://c" {
		t.Fatalf("a resolves to %s, want c (two failovers)", got)
	}
	_ = recovery.SaveRedirect(dir, "s3://c", "s3://a", "id") // failback
	for _, start := range []string{"s3://a", "s3://b", "s3://c"} {
		if got, _, _ := recovery.Resolve(dir, start); got != "s3://a" {
			t.Fatalf("%s resolves to %s after failing back to a", start, got)
		}
	}
}

func TestHealth(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	h, err := recovery.SystemHealth(ctx, w.r, open, recovery.HealthOptions{Graphs: []string{"g1", "g2", "g3"}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != recovery.StateCritical || !strings.Contains(strings.Join(h.Reasons, ";"), "g1 has never been backed up") {
		t.Fatalf("before any backup: %s %v", h.Status, h.Reasons)
	}
	cp, err := recovery.CreateCheckpoint(ctx, w.r, w.sources, recovery.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Not validated, and older than twice a tiny schedule: each finding
	// names what would help, and the checkpoint has one age.
	h, err = recovery.SystemHealth(ctx, w.r, open, recovery.HealthOptions{BackupInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	var validate, old *recovery.Finding
	for i, f := range h.Findings {
		if f.Reason != h.Reasons[i] {
			t.Fatalf("finding %d says %q, reason %q", i, f.Reason, h.Reasons[i])
		}
		switch {
		case strings.Contains(f.Reason, "has not been validated"):
			validate = &h.Findings[i]
		case strings.Contains(f.Reason, "old, more than twice"):
			old = &h.Findings[i]
		}
	}
	if validate == nil || validate.Remedy != problem.ValidateCheckpoint || validate.Object != cp.ID || strings.Contains(validate.Reason, "validate it") {
		t.Fatalf("unvalidated checkpoint: %+v", h.Findings)
	}
	if age := duration.Age(time.Duration(h.Checkpoint.AgeSeconds * float64(time.Second))); old == nil || !strings.Contains(old.Reason, " "+age+" old") {
		t.Fatalf("the checkpoint's age reads %q in the reasons (%+v)", age, old)
	}
	w.replicate(t)
	locs, _ := recovery.Locations(ctx, w.r, open)
	_ = recovery.SaveValidation(ctx, w.r, recovery.Validate(ctx, w.r, cp, locs, false))
	h, err = recovery.SystemHealth(ctx, w.r, open, recovery.HealthOptions{Graphs: []string{"g1", "g2", "g3"}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != recovery.StateHealthy {
		t.Fatalf("after checkpoint and replication: %s %v", h.Status, h.Reasons)
	}
	// A target that falls behind degrades the system.
	if _, err := backup.Create(ctx, w.r, w.sources[0], backup.Options{}); err != nil {
		t.Fatal(err)
	}
	h, _ = recovery.SystemHealth(ctx, w.r, open, recovery.HealthOptions{})
	if h.Status != recovery.StateDegraded || !strings.Contains(strings.Join(h.Reasons, ";"), "snapshots behind") {
		t.Fatalf("with lagging targets: %s %v", h.Status, h.Reasons)
	}
	if down := recovery.PrimaryDown("s3://gone", errors.New("no such bucket")); down.Status != recovery.StateCritical {
		t.Fatalf("primary down: %s", down.Status)
	}
}

func TestAutomaticFailover(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	if _, err := recovery.CreateCheckpoint(ctx, w.r, w.sources, recovery.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.replicate(t)
	primaryURL := w.r.Store().Location()
	var down atomic.Bool
	var events []recovery.AutoEvent
	var switched []string
	m := outageMonitor(t, primaryURL, &down, recovery.AutoPolicy{After: time.Minute, MinInterval: time.Hour})
	m.OnSwitch = func(from, to, id string) error { switched = append(switched, from+"->"+to); return nil }
	m.OnEvent = func(e recovery.AutoEvent) { events = append(events, e) }
	t0 := time.Now()
	m.Step(ctx, t0) // learns targets and the checkpoint
	down.Store(true)
	m.Step(ctx, t0.Add(10*time.Second))
	m.Step(ctx, t0.Add(65*time.Second)) // down 55s: not yet
	if len(switched) != 0 {
		t.Fatalf("failed over after 55s of a 1m policy: %v", switched)
	}
	// Back up briefly: the outage clock restarts (no flapping on blips).
	down.Store(false)
	m.Step(ctx, t0.Add(70*time.Second))
	down.Store(true)
	m.Step(ctx, t0.Add(80*time.Second))
	m.Step(ctx, t0.Add(130*time.Second))
	if len(switched) != 0 {
		t.Fatal("failed over although the primary answered 60s ago")
	}
	m.Step(ctx, t0.Add(141*time.Second))
	if len(switched) != 1 || !strings.HasSuffix(switched[0], w.targets["east"]) {
		t.Fatalf("switches = %v, want one to east", switched)
	}
	if m.PrimaryURL != w.targets["east"] {
		t.Fatalf("the monitor now watches %s", m.PrimaryURL)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "primary-down,primary-up,primary-down,failover" {
		t.Fatalf("events = %s", got)
	}
}

func TestAutomaticFailoverRefusesDataLoss(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	if _, err := recovery.CreateCheckpoint(ctx, w.r, w.sources, recovery.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.replicate(t)
	if _, err := backup.Create(ctx, w.r, w.sources[0], backup.Options{}); err != nil { // not replicated
		t.Fatal(err)
	}
	primaryURL := w.r.Store().Location()
	var down atomic.Bool
	var events []recovery.AutoEvent
	m := outageMonitor(t, primaryURL, &down, recovery.AutoPolicy{After: time.Second})
	m.OnEvent = func(e recovery.AutoEvent) { events = append(events, e) }
	t0 := time.Now()
	m.Step(ctx, t0)
	down.Store(true)
	m.Step(ctx, t0.Add(time.Second))
	m.Step(ctx, t0.Add(3*time.Second))
	last := events[len(events)-1]
	if last.Kind != "refused" || !strings.Contains(last.Message, "lacks the newest snapshot of 1 graphs") {
		t.Fatalf("last event = %+v", last)
	}
	m.Policy.AllowDataLoss = true
	m.Step(ctx, t0.Add(time.Hour))
	if last := events[len(events)-1]; last.Kind != "failover" {
		t.Fatalf("with allow_data_loss: %+v", last)
	}
}

// Two monitors (two server instances) watching one primary promote one
// target once: the second follows the first.
func TestAutomaticFailoverOnceAcrossInstances(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	if _, err := recovery.CreateCheckpoint(ctx, w.r, w.sources, recovery.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.replicate(t)
	primaryURL := w.r.Store().Location()
	var down atomic.Bool
	var switches atomic.Int64
	monitor := func() *recovery.Monitor {
		m := outageMonitor(t, primaryURL, &down, recovery.AutoPolicy{After: time.Second})
		m.OnSwitch = func(from, to, id string) error { switches.Add(1); return nil }
		return m
	}
	a, b := monitor(), monitor()
	t0 := time.Now()
	a.Step(ctx, t0)
	b.Step(ctx, t0)
	down.Store(true)
	for _, m := range []*recovery.Monitor{a, b} {
		m.Step(ctx, t0.Add(time.Second))
		m.Step(ctx, t0.Add(3*time.Second))
	}
	if a.PrimaryURL != w.targets["east"] || b.PrimaryURL != w.targets["east"] {
		t.Fatalf("monitors watch %s and %s, want both on east", a.PrimaryURL, b.PrimaryURL)
	}
	east, _ := open(ctx, w.targets["east"])
	replica, _ := repo.Open(ctx, east, repo.OpenOptions{Password: "pw", CacheDir: t.TempDir()})
	if hist, _ := recovery.History(ctx, replica); len(hist) != 1 {
		t.Fatalf("%d failovers recorded on east, want 1", len(hist))
	}
	if switches.Load() != 2 {
		t.Fatalf("%d local switches, want 2 (one per instance)", switches.Load())
	}
}

// outageMonitor watches primaryURL, which stops answering while down is
// set; every other URL opens normally.
func outageMonitor(t *testing.T, primaryURL string, down *atomic.Bool, policy recovery.AutoPolicy) *recovery.Monitor {
	return &recovery.Monitor{
		Policy:     policy,
		PrimaryURL: primaryURL,
		Open: func(ctx context.Context, url string) (blob.Store, error) {
			if url == primaryURL && down.Load() {
				return nil, errors.New("connection refused")
			}
			return open(ctx, url)
		},
		OpenRepo: func(ctx context.Context, s blob.Store) (*repo.Repository, error) {
			return repo.Open(ctx, s, repo.OpenOptions{Password: "pw", CacheDir: t.TempDir()})
		},
	}
}

// TestHealthIsTheSharedTargetStatus: what health (and recovery status)
// says of a target is the status every other view reads (targets list),
// with its hysteresis; a graph never backed up has no age, not 0.
func TestHealthIsTheSharedTargetStatus(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	down := func(ctx context.Context, url string) (blob.Store, error) {
		if url == w.targets["east"] {
			return nil, errors.New("dial tcp: connection refused")
		}
		return open(ctx, url)
	}
	for i, want := range []string{replication.Degraded, replication.Degraded, replication.Unreachable} {
		h, err := recovery.SystemHealth(ctx, w.r, down, recovery.HealthOptions{Graphs: []string{"g1"}})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := replication.LoadStatus(ctx, w.r, "east")
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range h.Targets {
			if th.ID == "east" && (th.Status != stored.State || th.Status != want) {
				t.Fatalf("look %d: health says %s, the shared status %s, want %s", i+1, th.Status, stored.State, want)
			}
		}
		for _, gh := range h.Graphs {
			if gh.Graph == "g1" && gh.AgeSeconds != nil {
				t.Fatalf("a graph never backed up has age %v, want none", *gh.AgeSeconds)
			}
		}
	}
}

// TestCheckpointsAndFailoverUseGoodSnapshots: a checkpoint names a graph's
// newest good snapshot when the new one is flagged; failover --restore of
// an older checkpoint that names a flagged snapshot restores the newest
// good one instead, and says so.
func TestCheckpointsAndFailoverUseGoodSnapshots(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	src := w.sources[0]
	good, err := backup.Create(ctx, w.r, src, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// g1 breaks (damage an hour old, not a write in progress).
	broken := filepath.Join(src.Dir, "vdb_chunks.json")
	if err := os.WriteFile(broken, []byte(`{"embedding_dim": 4, "data": [{"__id__": "x"}], "matrix": ""}`), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{broken, src.Dir} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := recovery.CreateCheckpoint(ctx, w.r, w.sources[:1], recovery.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cp.Snapshots[0].ID != good.Manifest.ID || cp.Snapshots[0].Note == "" {
		t.Fatalf("checkpoint names %+v, want the good snapshot %s with a note", cp.Snapshots[0], good.Manifest.ID)
	}
	// An older-style checkpoint naming the flagged snapshot.
	refs, _ := w.r.ListSnapshots(ctx, "g1")
	flagged := refs[len(refs)-1]
	oldCP := &repo.Checkpoint{Version: repo.FormatVersion, ID: repo.NewSnapshotID(time.Now().Add(time.Second)), Time: time.Now().UTC(),
		Snapshots: []repo.CheckpointSnapshot{{Graph: "g1", ID: flagged.ID}}}
	if err := w.r.SaveCheckpoint(ctx, oldCP); err != nil {
		t.Fatal(err)
	}
	w.replicate(t)
	target, _ := replication.GetTarget(ctx, w.r, "east")
	dst, _ := open(ctx, target.URL)
	replica, err := repo.Open(ctx, dst, repo.OpenOptions{Password: "pw", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	opts := recovery.FailoverOptions{Checkpoint: oldCP.ID, Restore: true, GraphsRoot: t.TempDir(), Force: true}
	plan, err := recovery.PlanFailover(ctx, nil, replica, target, w.r.Store().Location(), opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := recovery.Failover(ctx, replica, plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Restored) != 1 || out.Restored[0].Snapshot.ID != good.Manifest.ID || len(out.Restored[0].PassedOver) != 1 {
		t.Fatalf("failover restored %+v, want %s passing over %s", out.Restored, good.Manifest.ID, flagged.ID)
	}
}

// TestUnknownLagIsNull: a target whose lag is not known has null figures
// in JSON, not -1.
func TestUnknownLagIsNull(t *testing.T) {
	b, err := json.Marshal(recovery.TargetHealth{ID: "eu", Status: "UNREACHABLE", LagSnapshots: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `"lag_snapshots":null`) || !strings.Contains(s, `"rpo_seconds":null`) || strings.Contains(s, "-1") {
		t.Fatalf("unknown lag: %s", s)
	}
	b, _ = json.Marshal(recovery.TargetHealth{ID: "eu", Status: "HEALTHY", LagSnapshots: 2, LagBytes: 10, RPOSeconds: 3})
	if s := string(b); !strings.Contains(s, `"lag_snapshots":2`) || !strings.Contains(s, `"lag_bytes":10`) || !strings.Contains(s, `"id":"eu"`) {
		t.Fatalf("known lag: %s", s)
	}
}
