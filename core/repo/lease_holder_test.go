package repo_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// deadPID is the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	return cmd.Process.Pid
}

// writeLease puts a lease object as another process would.
func writeLease(t *testing.T, r *repo.Repository, id string, info repo.LeaseInfo) {
	t.Helper()
	data, _ := json.Marshal(info)
	if err := blob.PutBytes(context.Background(), r.Store(), repo.LeasePrefix+id, data, nil); err != nil {
		t.Fatal(err)
	}
}

// A prune lease left by a process of this host that is gone no longer
// blocks the next prune, long before it expires; one from another host (or
// a holder still running) does, and breaking it needs force.
func TestLeaseOfAGoneProcessIsReleasedAtOnce(t *testing.T) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip("this system does not say its boot id")
	}
	pidns, _ := os.Readlink("/proc/self/ns/pid")
	host, _ := os.Hostname()
	ctx := context.Background()
	r, err := repo.Init(ctx, newStore(t), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	gone := repo.LeaseInfo{Kind: repo.Prune, Purpose: "prune", Host: host, PID: deadPID(t), Created: now, Expires: now.Add(time.Hour),
		Boot: strings.TrimSpace(string(boot)), PIDNS: pidns}
	writeLease(t, r, "prune-gone", gone)
	opts := repo.LeaseOptions{Wait: 100 * time.Millisecond, Poll: 10 * time.Millisecond}
	l, err := r.AcquireLease(ctx, repo.Prune, "prune", opts)
	if err != nil {
		t.Fatalf("a dead process's lease still blocks: %v", err)
	}
	_ = l.Release()
	if _, err := r.Store().Stat(ctx, repo.LeasePrefix+"prune-gone"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the dead lease was not cleaned up: %v", err)
	}

	// Another host with the same pid: it counts until it expires.
	elsewhere := gone
	elsewhere.Host = host + "-other"
	writeLease(t, r, "prune-elsewhere", elsewhere)
	if _, err := r.AcquireLease(ctx, repo.Prune, "prune", opts); !errors.Is(err, repo.ErrLeaseBusy) {
		t.Fatalf("another host's prune lease did not block: %v", err)
	}
	states, err := r.Leases(ctx, opts)
	if err != nil || len(states) != 1 || !states[0].Alive || states[0].ID != "prune-elsewhere" {
		t.Fatalf("leases: %+v %v", states, err)
	}
	if _, err := r.BreakLease(ctx, "prune-elsewhere", false, opts); !errors.Is(err, repo.ErrLeaseAlive) {
		t.Fatalf("breaking a live lease without force: %v", err)
	}
	if _, err := r.BreakLease(ctx, "prune-elsewhere", true, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BreakLease(ctx, "prune-elsewhere", true, opts); err == nil {
		t.Fatal("breaking a lease that is not there succeeded")
	}
	// This process's own lease is alive.
	mine, err := r.AcquireLease(ctx, repo.Shared, "backup", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Release()
	states, _ = r.Leases(ctx, opts)
	if len(states) != 1 || !states[0].Alive || states[0].Boot == "" {
		t.Fatalf("own lease: %+v", states)
	}
}
