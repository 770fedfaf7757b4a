package service_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/service"
)

// TestRestoreRefusesAnotherGraphsData: a restore of g1 over g2's directory,
// or over a copy of g2 restored elsewhere, is refused naming both graphs,
// and writes nothing; forced, it goes ahead. g1 over a copy of g1 is fine.
func TestRestoreRefusesAnotherGraphsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, root := newService(t, t.TempDir())
	if _, err := svc.Backup(ctx, service.BackupRequest{All: true}); err != nil {
		t.Fatal(err)
	}
	g2 := filepath.Join(root, "g2")
	before := dirListing(t, g2)
	_, err := svc.PrepareRestore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest", To: g2})
	if !errors.Is(err, service.ErrOtherGraph) || problem.KindOf(err) != problem.NeedsForce {
		t.Fatalf("restore g1 over g2's directory: %v (kind %s), want other_graph", err, problem.KindOf(err))
	}
	for _, w := range []string{"graph g2's data", "restoring graph g1 there would replace graph g2"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if got := dirListing(t, g2); got != before {
		t.Fatal("the refused restore changed g2's directory")
	}
	// The same through the API's confined path (relative to the graphs root).
	if _, err := svc.PrepareRestore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest", To: "g2", Confined: true}); !errors.Is(err, service.ErrOtherGraph) {
		t.Fatalf("confined restore g1 over g2: %v", err)
	}
	// A copy of g2 outside the root is g2's by its snapshot history.
	copyOfG2 := filepath.Join(t.TempDir(), "inspect")
	if _, err := svc.Restore(ctx, service.RestoreRequest{Graph: "g2", Snapshot: "latest", To: copyOfG2}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PrepareRestore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest", To: copyOfG2}); !errors.Is(err, service.ErrOtherGraph) {
		t.Fatalf("restore g1 over a restored copy of g2: %v", err)
	}
	// g2 over its own copy, and g1 over g1's directory, are restores as usual.
	if _, err := svc.PrepareRestore(ctx, service.RestoreRequest{Graph: "g2", Snapshot: "latest", To: copyOfG2}); err != nil {
		t.Fatalf("restore g2 over its own copy: %v", err)
	}
	if _, err := svc.PrepareRestore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest"}); err != nil {
		t.Fatalf("restore g1 in place: %v", err)
	}
	// Forced, it goes ahead (g2 kept as an undo copy).
	res, err := svc.Restore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest", To: g2, Force: true}, nil)
	if err != nil || len(res) != 1 || res[0].Previous == "" {
		t.Fatalf("forced restore: %v %+v", err, res)
	}
}

// TestRestoreIntoGraphsRootSaysItIsANewGraph: a restore into a new
// directory of the graphs root says that it is now a graph; one outside the
// root does not.
func TestRestoreIntoGraphsRootSaysItIsANewGraph(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, root := newService(t, t.TempDir())
	if _, err := svc.Backup(ctx, service.BackupRequest{Graphs: []string{"g1"}}); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Restore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest", To: "g1-check", Confined: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res[0].NewGraph, "g1-check"; got != want || res[0].Dest != filepath.Join(root, "g1-check") {
		t.Fatalf("new graph %q at %s, want %q in the graphs root", got, res[0].Dest, want)
	}
	if _, err := svc.Source("g1-check"); err != nil {
		t.Fatalf("the restored directory is not a graph: %v", err)
	}
	res, err = svc.Restore(ctx, service.RestoreRequest{Graph: "g1", Snapshot: "latest", To: filepath.Join(t.TempDir(), "x")}, nil)
	if err != nil || res[0].NewGraph != "" {
		t.Fatalf("restore outside the root: %v, new graph %q", err, res[0].NewGraph)
	}
}

func dirListing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, _ := e.Info()
		b.WriteString(e.Name() + " " + info.ModTime().String() + "\n")
	}
	return b.String()
}
