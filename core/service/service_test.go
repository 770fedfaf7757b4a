package service_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/service"
	"github.com/graphkeep/graphkeep/providers/local"
)

var seq atomic.Int64

func open(ctx context.Context, url string) (blob.Store, error) {
	return local.Open(ctx, url, local.Options{})
}

// newService makes a service on a fresh in-memory repository with graphs
// g1 and g2 under a graphs root.
func newService(t *testing.T, stateDir string) (*service.Service, string) {
	t.Helper()
	root := t.TempDir()
	for i, g := range []string{"g1", "g2"} {
		if err := fixture.Generate(filepath.Join(root, g), fixture.Spec{Docs: 2, EmbeddingDim: 16, Seed: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	svc := service.New(service.Config{
		PrimaryURL: fmt.Sprintf("mem://service-%d", seq.Add(1)), Open: open, CacheDir: t.TempDir(), StateDir: stateDir,
		Sources: func() ([]backup.Source, error) { return backup.Discover(root) }, GraphsRoot: root,
		Backup: backup.Options{Quiet: -1},
	})
	t.Cleanup(func() { svc.Close() })
	if _, err := svc.Init(context.Background(), service.InitOptions{AvgChunkSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	return svc, root
}

func TestBackupRestoreAndOneResultShape(t *testing.T) {
	ctx := context.Background()
	svc, root := newService(t, t.TempDir())
	var observed []string
	svc.Observe(service.Hooks{Snapshot: func(m *repo.Manifest, _ time.Duration) { observed = append(observed, m.Graph) }})
	report, err := svc.Backup(ctx, service.BackupRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(report.Results), 2; got != want || report.Failed != 0 {
		t.Fatalf("backed up %d graphs (%d failed), want %d", got, report.Failed, want)
	}
	if got, want := len(observed), 2; got != want {
		t.Fatalf("the snapshot hook saw %d snapshots, want %d", got, want)
	}
	snaps, err := svc.Snapshots(ctx, "g1")
	if err != nil || len(snaps) != 1 || snaps[0].ID != report.Results[0].ID {
		t.Fatalf("snapshots of g1: %v %+v, want the backup's %s", err, snaps, report.Results[0].ID)
	}
	res, err := svc.Restore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest", To: filepath.Join(t.TempDir(), "g1")}, nil)
	if err != nil || len(res) != 1 || res[0].Files == 0 {
		t.Fatalf("restore: %v %+v", err, res)
	}
	// A confined restore outside the roots is refused before it writes.
	_, err = svc.PrepareRestore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest", To: "/etc/x", Confined: true})
	if !errors.Is(err, service.ErrOutsideRestoreRoots) || problem.KindOf(err) != problem.Invalid {
		t.Fatalf("confined restore to /etc/x: %v (kind %s)", err, problem.KindOf(err))
	}
	// An unknown graph names the known ones, as not found.
	_, err = svc.Snapshots(ctx, "nope")
	if problem.KindOf(err) != problem.NotFound {
		t.Fatalf("unknown graph: %v (kind %s)", err, problem.KindOf(err))
	}
	_ = root
}

// TestFailoverSwitchesAndSaysWhenItCannotRemember: one rule for the CLI and
// the API. The primary moves to the target, and a redirect that cannot be
// saved fails the failover with switch_not_recorded while the switch stands.
func TestFailoverSwitchesAndSaysWhenItCannotRemember(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state")
	svc, _ := newService(t, state)
	target := fmt.Sprintf("mem://service-target-%d", seq.Add(1))
	if _, err := svc.AddTarget(ctx, replication.Target{ID: "t1", URL: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateCheckpoint(ctx, nil, "test", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Replicate(ctx, "", ""); err != nil {
		t.Fatal(err)
	}
	dry, err := svc.Failover(ctx, service.FailoverRequest{Target: "t1", DryRun: true})
	if err != nil || dry.Plan == nil || len(dry.Plan.Blockers) != 0 {
		t.Fatalf("dry run: %v %+v", err, dry)
	}
	if url, _, _ := svc.PrimaryURL(); url == target {
		t.Fatal("a dry run moved the primary")
	}
	// This machine can no longer write its state.
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Failover(ctx, service.FailoverRequest{Target: "t1"})
	if !errors.Is(err, service.ErrSwitchNotRecorded) {
		t.Fatalf("failover with an unwritable state dir: %v, want switch_not_recorded", err)
	}
	if url, _, _ := svc.PrimaryURL(); url != target {
		t.Fatalf("primary after failover = %s, want %s", url, target)
	}
	if _, err := svc.Snapshots(ctx, "g1"); err != nil {
		t.Fatalf("snapshots on the new primary: %v", err)
	}
}

func TestBackupWithoutRepositorySaysSo(t *testing.T) {
	svc := service.New(service.Config{Open: open})
	_, err := svc.Backup(context.Background(), service.BackupRequest{Graphs: []string{"g1"}})
	if !errors.Is(err, service.ErrNoRepository) {
		t.Fatalf("backup without a repository: %v", err)
	}
}

// The scheduled lock extension does nothing, and fails on nothing, for a
// repository and targets without lock policies; asking to extend an
// unlocked repository's locks says it has none.
func TestExtendAllLocksWithoutPolicies(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t, t.TempDir())
	out, err := svc.ExtendAllLocks(ctx)
	if err != nil || len(out) != 0 {
		t.Fatalf("extend all without policies: %v %v", out, err)
	}
	if _, err := svc.ExtendLocks(ctx, 0, ""); !errors.Is(err, repo.ErrLockUnavailable) {
		t.Fatalf("extend an unlocked primary: %v", err)
	}
}
