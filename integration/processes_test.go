package integration

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
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
	// The pruners have caches of their own, as on other hosts: the
	// backups learn of their deletes only from the sweep log.
	runGK := func(cache string, args ...string) error {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(e.environ(), "GRAPHKEEP_CACHE_DIR="+filepath.Join(e.dir, cache))
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
				if err := runGK("cache", "backup", filepath.Base(d)); err != nil {
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
				if err := runGK(fmt.Sprintf("cache-pruner-%d", p), "forget", "--keep-last", "2", "--prune"); err != nil {
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

// TestKill9DuringPrune kills prune at random points of its run (listing,
// publishing what it will delete, waiting for a running backup, deleting)
// while backups go on: no committed snapshot ever loses a chunk, a backup
// never waits for the dead prune, and the next prune cleans up after it.
func TestKill9DuringPrune(t *testing.T) {
	e := newEnv(t)
	e.extra = []string{"GRAPHKEEP_LEASE_TTL=2s"}
	dir := filepath.Join(e.root, "g1")
	spec := fixture.Spec{Docs: 30, EmbeddingDim: 256, Seed: 11}
	if err := fixture.Generate(dir, spec); err != nil {
		t.Fatal(err)
	}
	e.ok("init", "--avg-chunk-size", "16384")
	rng := rand.New(rand.NewPCG(5, 5))
	repoDir := strings.TrimPrefix(e.repo, "file://")
	for round := 0; round < 6; round++ {
		var err error
		if spec, err = fixture.Grow(dir, spec, 3); err != nil {
			t.Fatal(err)
		}
		e.ok("backup", "g1", "--quiet-window", "0")
		e.ok("forget", "--keep-last", "1")

		// A backup runs beside the prune the whole time (so the prune has
		// a writer to wait for), and the prune dies at a random moment.
		backupDone := make(chan error, 1)
		go func() {
			cmd := exec.Command(binary, "backup", "g1", "--quiet-window", "0")
			cmd.Env = e.environ()
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%v: %s", err, out)
			}
			backupDone <- err
		}()
		prune := exec.Command(binary, "prune")
		// As on another host: the backups learn of its deletes only
		// from the sweep log.
		prune.Env = append(e.environ(), "GRAPHKEEP_CACHE_DIR="+filepath.Join(e.dir, "cache-prune"))
		if err := prune.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.IntN(600)) * time.Millisecond
		time.Sleep(delay)
		_ = prune.Process.Signal(syscall.SIGKILL)
		_ = prune.Wait()
		records, _ := filepath.Glob(filepath.Join(repoDir, "gc", "*", "*"))
		t.Logf("round %d: prune killed after %s, %d records left", round, delay, len(records))
		if err := <-backupDone; err != nil {
			t.Fatalf("round %d (prune killed after %s): backup beside it: %v", round, delay, err)
		}
		// A backup right after the kill does not wait out the dead prune.
		start := time.Now()
		e.ok("backup", "g1", "--quiet-window", "0")
		if took := time.Since(start); took > 20*time.Second {
			t.Fatalf("round %d: a backup after the killed prune took %s", round, took)
		}
		e.ok("verify")
	}
	time.Sleep(3 * time.Second) // the last dead prune's lease expires
	// A prune killed while writing leaves the local folder's temporary file
	// (name.<random>.tmp), which no reader sees; prune removes those over an
	// hour old: age whatever the kills left.
	old := time.Now().Add(-2 * time.Hour)
	_ = filepath.WalkDir(repoDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".tmp") {
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})
	e.ok("prune")
	left, _ := filepath.Glob(filepath.Join(repoDir, "gc", "*", "*"))
	for _, p := range left {
		if filepath.Base(p) != "ended" {
			t.Fatalf("records of dead prunes left after a prune (only ended records may stay): %v", left)
		}
	}
	var dry struct {
		Unreferenced int `json:"unreferenced_chunks"`
	}
	e.jsonOut(&dry, "prune", "--dry-run")
	if dry.Unreferenced != 0 {
		t.Fatalf("%d unreferenced chunks left after a full prune", dry.Unreferenced)
	}
	e.ok("verify", "--read-data")
	to := filepath.Join(e.dir, "restored")
	e.ok("restore", "g1", "latest", "--to", to)
	sameTree(t, dir, to)
}

// TestKill9DuringCompaction kills prune as it compacts a pack: with the
// compacted form made but not stored, and right after it replaced the
// pack. Either way every snapshot verifies with its data read and restores
// whole, a backup after the kill goes on, and the next prune finishes the
// job: nothing unreferenced and nothing compactable left.
func TestKill9DuringCompaction(t *testing.T) {
	e := newEnv(t)
	e.extra = []string{"GRAPHKEEP_LEASE_TTL=2s"}
	dir := filepath.Join(e.root, "g1")
	spec := fixture.Spec{Docs: 30, EmbeddingDim: 256, Seed: 12}
	if err := fixture.Generate(dir, spec); err != nil {
		t.Fatal(err)
	}
	e.ok("init", "--avg-chunk-size", "16384", "--pack-size", "1")
	e.ok("backup", "g1", "--quiet-window", "0")
	type pruneCounts struct {
		Unreferenced int `json:"unreferenced_chunks"`
		Compactable  int `json:"compactable_packs"`
		Compacted    int `json:"compacted_packs"`
	}
	for _, point := range []string{"compacting", "compacted"} {
		var err error
		if spec, err = fixture.Grow(dir, spec, 4); err != nil {
			t.Fatal(err)
		}
		e.ok("backup", "g1", "--quiet-window", "0")
		e.ok("forget", "--keep-last", "1")
		var dry pruneCounts
		e.jsonOut(&dry, "prune", "--dry-run")
		t.Logf("%s: %+v", point, dry)
		if dry.Compactable == 0 {
			t.Fatalf("%s: nothing to compact, the test does not reach compaction: %+v", point, dry)
		}
		killed := *e
		killed.extra = append(append([]string{}, e.extra...), "GRAPHKEEP_TEST_KILL_AT="+point)
		if _, errOut, code := killed.run("prune"); code != -1 {
			t.Fatalf("prune with a kill at %s: exit %d, want killed\n%s", point, code, errOut)
		}
		e.ok("verify", "--read-data")
		to := filepath.Join(e.dir, "restored-"+point)
		e.ok("restore", "g1", "latest", "--to", to)
		sameTree(t, dir, to)
		// A backup after the kill reuses chunks of the pack it was
		// compacting, at the places the index kept.
		if spec, err = fixture.Grow(dir, spec, 1); err != nil {
			t.Fatal(err)
		}
		e.ok("backup", "g1", "--quiet-window", "0")
		e.ok("verify", "--read-data")
	}
	time.Sleep(3 * time.Second) // the last killed prune's lease expires
	var done pruneCounts
	e.jsonOut(&done, "prune")
	if done.Compacted == 0 {
		t.Fatalf("the prune after the kills compacted nothing: %+v", done)
	}
	var dry pruneCounts
	e.jsonOut(&dry, "prune", "--dry-run")
	if dry.Unreferenced != 0 || dry.Compactable != 0 {
		t.Fatalf("left after a full prune: %+v", dry)
	}
	e.ok("verify", "--read-data")
	to := filepath.Join(e.dir, "restored")
	e.ok("restore", "g1", "latest", "--to", to)
	sameTree(t, dir, to)
}
