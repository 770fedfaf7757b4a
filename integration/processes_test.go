package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
)

// TestKill9DuringBackup: a backup killed mid-upload leaves no visible
// snapshot, the next backup succeeds, and the dead process's lease stops
// blocking prune once it expires.
func TestKill9DuringBackup(t *testing.T) {
	e := newEnv(t)
	e.extra = []string{"GRAPHKEEP_LEASE_TTL=3s"}
	dir := filepath.Join(e.root, "big")
	if err := fixture.Generate(dir, fixture.Spec{Docs: 260, EmbeddingDim: 1024, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	e.ok("init", "--avg-chunk-size", "262144")

	cmd := exec.Command(binary, "backup", "big")
	cmd.Env = e.environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	chunkDir := filepath.Join(strings.TrimPrefix(e.repo, "file://"), "chunks")
	deadline := time.Now().Add(30 * time.Second)
	for {
		found, _ := filepath.Glob(filepath.Join(chunkDir, "*", "*"))
		if len(found) >= 5 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the backup stored no chunks within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	if status, ok := err.(*exec.ExitError); !ok || status.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the backup finished before it could be killed (%v): make the graph bigger", err)
	}

	var snaps []snapshotLine
	e.jsonOut(&snaps, "snapshots")
	if len(snaps) != 0 {
		t.Fatalf("a killed backup left visible snapshots: %+v", snaps)
	}
	e.ok("backup", "big")
	start := time.Now()
	e.ok("prune")
	if waited := time.Since(start); waited > 15*time.Second {
		t.Fatalf("prune waited %s for the dead backup's lease", waited)
	}
	e.ok("verify", "--read-data")
	to := filepath.Join(e.dir, "restored")
	e.ok("restore", "big", "latest", "--to", to)
	sameTree(t, dir, to)
}

// TestConcurrentBackupAndPrune runs backups of a growing graph in one set of
// processes while other processes forget and prune: no chunk named by a
// committed snapshot may ever disappear.
func TestConcurrentBackupAndPrune(t *testing.T) {
	e := newEnv(t)
	e.extra = []string{"GRAPHKEEP_LEASE_TTL=5s"}
	spec := fixture.Spec{Docs: 20, EmbeddingDim: 256, Seed: 4}
	dirs := []string{filepath.Join(e.root, "g1"), filepath.Join(e.root, "g2")}
	for _, d := range dirs {
		if err := fixture.Generate(d, spec); err != nil {
			t.Fatal(err)
		}
	}
	e.ok("init", "--avg-chunk-size", "65536")

	const rounds = 6
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	done := make(chan struct{})
	runGK := func(args ...string) error {
		cmd := exec.Command(binary, args...)
		cmd.Env = e.environ()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("graphkeep %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec
			for r := 0; r < rounds; r++ {
				var err error
				if s, err = fixture.Grow(d, s, 1); err != nil {
					errs <- err
					return
				}
				if err := runGK("backup", filepath.Base(d)); err != nil {
					errs <- err
				}
			}
			_ = i
		}()
	}
	var pruners sync.WaitGroup
	for p := 0; p < 2; p++ {
		pruners.Add(1)
		go func() {
			defer pruners.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := runGK("forget", "--keep-last", "2", "--prune"); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	pruners.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// Every snapshot that survived is whole, and the latest is the live graph.
	e.ok("verify", "--read-data")
	for _, d := range dirs {
		to := filepath.Join(e.dir, "check-"+filepath.Base(d))
		e.ok("restore", filepath.Base(d), "latest", "--to", to)
		sameTree(t, d, to)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "check-g1")); err != nil {
		t.Fatal(err)
	}
}
