package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/repo"
)

// killedAt runs a restore that stops dead at point, as kill -9 would.
func killedAt(t *testing.T, point string, restore func()) {
	t.Helper()
	defer backup.SetCrashHook(func(p string) {
		if p == point {
			panic("killed at " + p)
		}
	})()
	defer func() {
		if v := recover(); v == nil {
			t.Fatalf("the restore never reached %s", point)
		}
	}()
	restore()
}

// TestSwapKilledMidwayIsFinishedNext: a restore killed in the middle of
// its swap never leaves the graph directory missing for long: the next
// restore of that destination first finishes the swap (the killed
// restore's tree in place, the old one kept as an undo copy), and removes
// what interrupted restores left behind.
func TestSwapKilledMidwayIsFinishedNext(t *testing.T) {
	for _, c := range []struct {
		name, point string
		exchange    bool
	}{{"exchange", "exchanged", true}, {"two renames", "moved-aside", false}} {
		t.Run(c.name, func(t *testing.T) {
			if !c.exchange {
				defer backup.WithoutExchange()()
			}
			ctx := context.Background()
			r, _ := newRepo(t, "")
			first, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: graphDir(t, 2)}, backup.Options{})
			if err != nil {
				t.Fatal(err)
			}
			second, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: graphDir(t, 3)}, backup.Options{})
			if err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			dest := filepath.Join(parent, "g1")
			if _, err := backup.Restore(ctx, r, first.Manifest.Ref(), dest, backup.RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			// What an earlier restore killed while writing left behind.
			junk := filepath.Join(parent, ".graphkeep-restore-g1-0123456789ab")
			if err := os.MkdirAll(junk, 0o700); err != nil {
				t.Fatal(err)
			}
			killedAt(t, c.point, func() {
				_, _ = backup.Restore(ctx, r, second.Manifest.Ref(), dest, backup.RestoreOptions{})
			})
			if _, err := os.Stat(dest); c.exchange && err != nil {
				t.Fatalf("after a kill at the exchange the graph directory is missing: %v", err)
			}
			// The next restore (of anything) into dest finishes the swap first.
			res, err := backup.Restore(ctx, r, first.Manifest.Ref(), filepath.Join(parent, "g1"), backup.RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Recovered, "finished") {
				t.Fatalf("recovered = %q, want the interrupted swap finished", res.Recovered)
			}
			prev, err := backup.ListPrevious(dest)
			if err != nil || len(prev) != 2 {
				t.Fatalf("undo copies = %+v, %v: want the first tree and the killed restore's", prev, err)
			}
			if docs := countDocs(t, prev[1].Path); docs != 3 {
				t.Fatalf("the newest undo copy holds %d documents, want the killed restore's 3 (finished, then replaced)", docs)
			}
			leftovers, _ := filepath.Glob(filepath.Join(parent, ".graphkeep-restore-*"))
			journals, _ := filepath.Glob(filepath.Join(parent, ".graphkeep-swap-*"))
			if len(leftovers)+len(journals) > 0 {
				t.Fatalf("left behind: %v %v", leftovers, journals)
			}
		})
	}
}

func countDocs(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kv_store_full_docs.json"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), `"doc-`)
}

// TestRestoreNeverSetsSpecialBits: a manifest asking for setuid, setgid or
// sticky bits gets permission bits only.
func TestRestoreNeverSetsSpecialBits(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: graphDir(t, 1)}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := *res.Manifest
	m.ID = repo.NewSnapshotID(m.Time.Add(1e9))
	m.Files = append([]repo.FileEntry(nil), m.Files...)
	for i := range m.Files {
		m.Files[i].Mode = uint32(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) | 0o777
	}
	m.RootMode = uint32(os.ModeSetgid) | 0o755
	if err := r.SaveManifest(ctx, &m); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "g1")
	if _, err := backup.Restore(ctx, r, m.Ref(), dest, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
			t.Errorf("%s restored as %v", p, info.Mode())
		}
		return nil
	})
}

// TestBackupFinishesAnInterruptedSwap: with the two-rename swap killed
// between its renames the graph directory is missing; the next backup of
// that graph puts the restored tree in place first, and backs it up.
func TestBackupFinishesAnInterruptedSwap(t *testing.T) {
	defer backup.WithoutExchange()()
	ctx := context.Background()
	r, snap := snapshotOfG1(t, 2)
	dest := filepath.Join(t.TempDir(), "g1")
	if _, err := backup.Restore(ctx, r, snap, dest, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	killedAt(t, "moved-aside", func() {
		_, _ = backup.Restore(ctx, r, snap, dest, backup.RestoreOptions{})
	})
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("the kill point is not between the renames: %v", err)
	}
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: dest}, backup.Options{})
	if err != nil {
		t.Fatalf("backup after an interrupted swap: %v", err)
	}
	if res.Manifest.LightRAG.Docs != 2 || !res.Manifest.Good() {
		t.Fatalf("backup after an interrupted swap: %+v", res.Manifest.LightRAG)
	}
}

// TestVerifyFlagsUnsafeEntries: verify reports special mode bits and paths
// that escape the destination, naming the snapshot and the entry.
func TestVerifyFlagsUnsafeEntries(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: graphDir(t, 1)}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clean, err := backup.Verify(ctx, r, []repo.SnapshotRef{res.Manifest.Ref()}, backup.VerifyOptions{})
	if err != nil || !clean.OK() {
		t.Fatalf("a clean snapshot: %+v, %v", clean, err)
	}
	m := *res.Manifest
	m.ID = repo.NewSnapshotID(m.Time.Add(2e9))
	m.Files = append([]repo.FileEntry(nil), m.Files...)
	m.Files[0].Mode |= uint32(os.ModeSetuid)
	m.Files = append(m.Files, repo.FileEntry{Path: "../escape", Type: repo.TypeFile})
	if err := r.SaveManifest(ctx, &m); err != nil {
		t.Fatal(err)
	}
	v, err := backup.Verify(ctx, r, []repo.SnapshotRef{m.Ref()}, backup.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || len(v.Unsafe) != 2 || v.Unsafe[1].Path != m.Files[0].Path || !strings.Contains(v.Unsafe[0].Problem, "../escape") {
		t.Fatalf("verify of a hostile manifest: %+v", v.Unsafe)
	}
}

// TestRestoreLeavesOtherGraphsStagingAlone: graph "g1" takes only its own
// interrupted restores' directories for junk, never those of a graph whose
// name starts like its own ("g1-b"), which may be restoring right now.
func TestRestoreLeavesOtherGraphsStagingAlone(t *testing.T) {
	ctx := context.Background()
	r, snap := snapshotOfG1(t, 2)
	parent := t.TempDir()
	own := filepath.Join(parent, ".graphkeep-restore-g1-0123456789ab")
	other := filepath.Join(parent, ".graphkeep-restore-g1-b-0123456789ab")
	for _, dir := range []string{own, other} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := backup.Restore(ctx, r, snap, filepath.Join(parent, "g1"), backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Fatalf("g1's own leftover %s is still there (%v)", own, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("restoring g1 removed graph g1-b's staging directory: %v", err)
	}
}

// TestRestoresIntoOneRootRunTogether: this process's restores of different
// graphs into one root do not wait for each other (restore --all runs them
// together); restores into the same destination still take turns.
func TestRestoresIntoOneRootRunTogether(t *testing.T) {
	ctx := context.Background()
	r, snap := snapshotOfG1(t, 2)
	parent := t.TempDir()
	if _, err := backup.Restore(ctx, r, snap, filepath.Join(parent, "a"), backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	// The next restore into a stops at its swap until the one into b has
	// finished.
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer backup.SetCrashHook(func(point string) {
		if point == "exchanged" || point == "moved-aside" {
			once.Do(func() { close(held); <-release })
		}
	})()
	first := make(chan error, 1)
	go func() {
		_, err := backup.Restore(ctx, r, snap, filepath.Join(parent, "a"), backup.RestoreOptions{})
		first <- err
	}()
	<-held
	second := make(chan error, 1)
	go func() {
		_, err := backup.Restore(ctx, r, snap, filepath.Join(parent, "b"), backup.RestoreOptions{})
		second <- err
	}()
	awaitRestore(t, second, func() { close(release) }, "a restore into b waited for the restore into a, in the same root")
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	// Into one destination, four at once: each swap is whole.
	dest := filepath.Join(parent, "same")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := backup.Restore(ctx, r, snap, dest, backup.RestoreOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	prev, err := backup.ListPrevious(dest)
	if err != nil || len(prev) != 3 {
		t.Fatalf("undo copies = %d, %v: want 3, one per restore after the first", len(prev), err)
	}
	if prev, err := backup.ListPrevious(filepath.Join(parent, "a")); err != nil || len(prev) != 1 {
		t.Fatalf("undo copies of a = %d, %v: want 1", len(prev), err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(parent, ".graphkeep-restore-*"))
	journals, _ := filepath.Glob(filepath.Join(parent, ".graphkeep-swap-*"))
	if len(leftovers)+len(journals) > 0 {
		t.Fatalf("left behind: %v %v", leftovers, journals)
	}
}

// TestCancelledRestoresLeaveSharedDownloadsWhole: a restore cancelled while
// it waits for a file slot of shared read-ahead gives back every slot it
// took, so the restores after it through the same read-ahead still run.
func TestCancelledRestoresLeaveSharedDownloadsWhole(t *testing.T) {
	ctx := context.Background()
	r, snap := snapshotOfG1(t, 4)
	downloads := backup.NewDownloads(ctx, r, 0)
	defer downloads.Close()
	parent := t.TempDir()
	for i := range 12 {
		cctx, cancel := context.WithCancel(ctx)
		_, err := backup.Restore(cctx, r, snap, filepath.Join(parent, fmt.Sprint("cancelled-", i)),
			backup.RestoreOptions{Downloads: downloads, Progress: func(backup.Progress) { cancel() }})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("restore %d was cancelled at its first bytes; got %v, want it to say so", i, err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := backup.Restore(ctx, r, snap, filepath.Join(parent, "after"), backup.RestoreOptions{Downloads: downloads})
		done <- err
	}()
	awaitRestore(t, done, func() {}, "a restore after cancelled ones never got a file slot: the cancelled ones kept theirs")
}

// awaitRestore fails t with the restore's error, or with stuck (after
// calling unblock) when it has not returned within 20 s.
func awaitRestore(t *testing.T, result <-chan error, unblock func(), stuck string) {
	t.Helper()
	select {
	case err := <-result:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		unblock()
		t.Fatal(stuck)
	}
}

// snapshotOfG1 returns a repository in memory holding one snapshot of a
// graph g1 of docs documents.
func snapshotOfG1(t *testing.T, docs int) (*repo.Repository, repo.SnapshotRef) {
	t.Helper()
	r, _ := newRepo(t, "")
	res, err := backup.Create(context.Background(), r, backup.Source{Graph: "g1", Dir: graphDir(t, docs)}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r, res.Manifest.Ref()
}

// TestRestoreRefusesLinksOutside: a manifest whose symlink points outside
// the destination (a planted passwd -> /etc/passwd) is refused naming the
// link, and nothing is written; verify lists it; a link that stays inside
// restores, and the outside one does too when explicitly allowed.
func TestRestoreRefusesLinksOutside(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, "")
	res, err := backup.Create(ctx, r, backup.Source{Graph: "g1", Dir: graphDir(t, 1)}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := *res.Manifest
	m.ID = repo.NewSnapshotID(m.Time.Add(2e9))
	m.Files = append(append([]repo.FileEntry(nil), m.Files...),
		repo.FileEntry{Path: "inside", Type: repo.TypeSymlink, Target: "./kv_store_full_docs.json"},
		repo.FileEntry{Path: "passwd", Type: repo.TypeSymlink, Target: "/etc/passwd"},
		repo.FileEntry{Path: "up", Type: repo.TypeSymlink, Target: "../../.ssh/authorized_keys"})
	if err := r.SaveManifest(ctx, &m); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "g1")
	_, err = backup.Restore(ctx, r, m.Ref(), dest, backup.RestoreOptions{})
	if !errors.Is(err, backup.ErrOutsideLink) || !strings.Contains(err.Error(), "passwd -> /etc/passwd") || !strings.Contains(err.Error(), "up -> ../../.ssh/authorized_keys") {
		t.Fatalf("restore with links outside: %v, want ErrOutsideLink naming both", err)
	}
	if strings.Contains(err.Error(), "inside ->") {
		t.Fatalf("the link inside was called outside: %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore created %s", dest)
	}
	v, err := backup.Verify(ctx, r, []repo.SnapshotRef{m.Ref()}, backup.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || len(v.Unsafe) != 2 || v.Unsafe[0].Path != "passwd" || v.Unsafe[1].Path != "up" {
		t.Fatalf("verify: %+v, want the two outside links", v.Unsafe)
	}
	if _, err := backup.Restore(ctx, r, m.Ref(), dest, backup.RestoreOptions{AllowOutsideLinks: true}); err != nil {
		t.Fatalf("restore with outside links allowed: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(dest, "passwd")); err != nil || target != "/etc/passwd" {
		t.Fatalf("the allowed link: %q, %v", target, err)
	}
}
