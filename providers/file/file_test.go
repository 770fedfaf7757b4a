package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/blob/blobtest"
	"github.com/graphkeep/graphkeep/providers"
	"github.com/graphkeep/graphkeep/providers/file"
)

type harness struct{}

func (harness) NewLocation(ctx context.Context, t *testing.T) func(t *testing.T) blob.Store {
	dir := t.TempDir()
	return func(t *testing.T) blob.Store {
		s, err := providers.Open(ctx, "file://"+dir, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	t.Run("file", func(t *testing.T) { blobtest.RunConformance(t, harness{}) })
}

// TestCreateIfAbsentAcrossProcesses races separate OS processes, where
// fileblob's own in-process lock cannot help: exactly one must win.
func TestCreateIfAbsentAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("GRAPHKEEP_TEST_CREATE_DIR"); dir != "" {
		createOnce(dir) // child process
		return
	}
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		roundDir := filepath.Join(dir, fmt.Sprint(round))
		if err := os.Mkdir(roundDir, 0o755); err != nil {
			t.Fatal(err)
		}
		const procs = 8
		cmds := make([]*exec.Cmd, procs)
		outs := make([]*strings.Builder, procs)
		for i := range cmds {
			cmds[i] = exec.Command(os.Args[0], "-test.run=^TestCreateIfAbsentAcrossProcesses$")
			cmds[i].Env = append(os.Environ(), "GRAPHKEEP_TEST_CREATE_DIR="+roundDir, fmt.Sprintf("GRAPHKEEP_TEST_WRITER=%d", i))
			outs[i] = &strings.Builder{}
			cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
			if err := cmds[i].Start(); err != nil {
				t.Fatal(err)
			}
		}
		wins := 0
		for i, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Fatalf("writer %d: %v\n%s", i, err, outs[i])
			}
			if strings.Contains(outs[i].String(), "RESULT won") {
				wins++
			} else if !strings.Contains(outs[i].String(), "RESULT exists") {
				t.Fatalf("writer %d said neither won nor exists:\n%s", i, outs[i])
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d processes created the key, want exactly 1", round, wins)
		}
	}
}

func createOnce(dir string) {
	s, err := file.Open(context.Background(), file.Config{Dir: dir})
	if err != nil {
		fmt.Println("RESULT error", err)
		return
	}
	payload := strings.Repeat(os.Getenv("GRAPHKEEP_TEST_WRITER"), 1<<20)
	err = blob.PutBytes(context.Background(), s, "snapshots/g/manifest", []byte(payload), &blob.PutOptions{IfAbsent: true})
	switch {
	case err == nil:
		fmt.Println("RESULT won")
	case errors.Is(err, blob.ErrExists):
		fmt.Println("RESULT exists")
	default:
		fmt.Println("RESULT error", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "nope")
	regular := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ url, want string }{
		{"file://" + missing, "create it, or add ?create=true"}, // never "graphkeep init": the folder may be a target
		{"file://" + regular, "not a directory"},
		{"file://host/abs", "three slashes"},
		{"file://" + missing + "?create=maybe", "not a boolean"},
		{"file://" + missing + "?colour=red", "unknown setting(s) colour"},
		{"relative/dir", "has no scheme"},
	} {
		_, err := providers.Open(ctx, c.url, providers.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", c.url, err, c.want)
		}
	}
	if _, err := providers.Open(ctx, "file://"+missing+"?create=true", providers.Options{}); err != nil {
		t.Fatalf("create=true: %v", err)
	}
	if _, err := os.Stat(missing); err != nil {
		t.Fatalf("create=true did not create the directory: %v", err)
	}
}

// TestListWhileWriting lists a directory while other writers create and
// delete objects in it: fileblob stats entries after reading the directory,
// and a vanished temporary file must not fail the listing.
func TestListWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := providers.Open(ctx, "file://"+dir, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprintf("leases/lease-%d", i%4)
			_ = blob.PutBytes(ctx, s, key, []byte("x"), nil)
			_ = s.Delete(ctx, key)
		}
	}()
	for i := 0; i < 2000; i++ {
		if err := blob.Walk(ctx, s, "leases/", func(blob.Object) error { return nil }); err != nil {
			close(stop)
			<-done
			t.Fatalf("listing %d failed while another writer worked: %v", i, err)
		}
	}
	close(stop)
	<-done
}

// A deferred write that vanishes before Sync fails that Sync (its caller
// must not commit anything naming it), and only the keys a caller names are
// synced: another caller's vanished write does not fail it.
func TestSyncReportsAVanishedDeferredWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := providers.Open(ctx, "file://"+dir+"?create=true", providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deferred := &blob.PutOptions{DeferSync: true}
	if err := blob.PutBytes(ctx, s, "chunks/aa/gone", []byte("x"), deferred); err != nil {
		t.Fatal(err)
	}
	if err := blob.PutBytes(ctx, s, "chunks/aa/kept", []byte("y"), deferred); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "chunks", "aa", "gone")); err != nil {
		t.Fatal(err)
	}
	err = blob.Sync(ctx, s, []string{"chunks/aa/gone", "chunks/aa/kept"})
	if err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("sync after a deferred write vanished: %v", err)
	}
	if err := blob.Sync(ctx, s, []string{"chunks/aa/kept"}); err != nil {
		t.Fatalf("sync of the caller's own keys: %v", err)
	}
	// A key fileblob would escape is never deferred, so Sync skips it.
	if err := blob.PutBytes(ctx, s, "odd//key", []byte("z"), deferred); err != nil {
		t.Fatal(err)
	}
	if err := blob.Sync(ctx, s, []string{"odd//key"}); err != nil {
		t.Fatalf("sync of a key written durably: %v", err)
	}
}

// The temporary file a killed write left is removed once it is over the
// age given; a younger one (a write that may still run) and every object
// stay.
func TestRemoveStaleTemps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := providers.Open(ctx, "file://"+dir+"?create=true", providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := blob.PutBytes(ctx, s, "gc/p1/chunks", []byte("record"), nil); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "gc", "p1", "waits.18ee8cad6045de61.tmp")
	fresh := filepath.Join(dir, "gc", "p1", "chunks.18ee8cad6045de62.tmp")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	sw, ok := blob.Find[blob.TempSweeper](s)
	if !ok {
		t.Fatal("a local folder is not a TempSweeper")
	}
	n, err := sw.RemoveStaleTemps(ctx, "", time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the stale temporary is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a fresh temporary was removed: %v", err)
	}
	if data, err := blob.ReadAll(ctx, s, "gc/p1/chunks"); err != nil || string(data) != "record" {
		t.Fatalf("the object: %q %v", data, err)
	}
}
