package repo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/graphkeep/graphkeep/core/repo"
)

func openWith(t *testing.T, r *repo.Repository, password string) (*repo.Repository, error) {
	t.Helper()
	return repo.Open(context.Background(), r.Store(), repo.OpenOptions{Password: password, CacheDir: t.TempDir()})
}

// Several passwords open the repository; each can be added, changed and
// removed without touching the data, the key in use and the config's own
// key are never removed, and the one in use is marked.
func TestKeys(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, newStore(t), repo.InitOptions{Password: "first", KDF: cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	id := r.HashChunk([]byte("data"))
	if err := r.PutChunk(ctx, id, r.EncodeChunk(id, []byte("data"))); err != nil {
		t.Fatal(err)
	}
	second, err := r.AddKey(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := openWith(t, r, "second")
	if err != nil {
		t.Fatalf("the added password does not open it: %v", err)
	}
	if data, err := r2.ReadChunk(ctx, id); err != nil || string(data) != "data" {
		t.Fatalf("data through the second password: %q %v", data, err)
	}
	keys, err := r2.ListKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != repo.ConfigKeyID || keys[0].Current || keys[1].ID != second.ID || !keys[1].Current {
		t.Fatalf("keys seen through the second password: %+v %v", keys, err)
	}
	if err := r2.RemoveKey(ctx, second.ID); !errors.Is(err, repo.ErrKeyInUse) {
		t.Fatalf("removing the key in use: %v", err)
	}
	if err := r2.RemoveKey(ctx, repo.ConfigKeyID); !errors.Is(err, repo.ErrKeyInUse) {
		t.Fatalf("removing the config's key: %v", err)
	}
	if err := r.RemoveKey(ctx, "0123456789abcdef"); !errors.Is(err, repo.ErrNoSuchKey) {
		t.Fatalf("removing a key that is not there: %v", err)
	}
	if _, err := openWith(t, r, "wrong"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("a wrong password: %v", err)
	}

	// Change the second password: the old one stops working, the new one
	// works, the first is untouched.
	changed, err := r2.ChangePassword(ctx, "second, changed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(t, r, "second"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("the old second password still opens it: %v", err)
	}
	r3, err := openWith(t, r, "second, changed")
	if err != nil || r3.KeyID() != changed.ID {
		t.Fatalf("the changed password: %v (key %q, want %q)", err, r3.KeyID(), changed.ID)
	}
	// Change the config's password (rewrites the config in one write).
	if _, err := r.ChangePassword(ctx, "first, changed"); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(t, r, "first"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("the old first password still opens it: %v", err)
	}
	r4, err := openWith(t, r, "first, changed")
	if err != nil || r4.KeyID() != repo.ConfigKeyID || r4.ID() != r.ID() {
		t.Fatalf("the changed first password: %v", err)
	}
	if data, err := r4.ReadChunk(ctx, id); err != nil || string(data) != "data" {
		t.Fatalf("data after both changes: %q %v", data, err)
	}
	// With the first password, the second key can go.
	if err := r4.RemoveKey(ctx, changed.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(t, r, "second, changed"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("a removed password still opens it: %v", err)
	}
	if _, err := r4.AddKey(ctx, ""); err == nil {
		t.Fatal("an empty password was added")
	}
}

// An unencrypted repository has no passwords to manage.
func TestKeysNeedEncryption(t *testing.T) {
	r, err := repo.Init(context.Background(), newStore(t), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ListKeys(context.Background()); !errors.Is(err, repo.ErrNotEncrypted) {
		t.Fatalf("list keys of an unencrypted repository: %v", err)
	}
}

// OpenLeased opens and holds a lease; with a wrong password it fails as
// Open does and leaves no lease behind.
func TestOpenLeased(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, newStore(t), repo.InitOptions{Password: "pw", KDF: cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := repo.OpenLeased(ctx, r.Store(), repo.OpenOptions{Password: "wrong", CacheDir: t.TempDir()}, repo.Shared, "backup", repo.LeaseOptions{}); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if states, err := r.Leases(ctx, repo.LeaseOptions{}); err != nil || len(states) != 0 {
		t.Fatalf("a failed open left leases: %+v %v", states, err)
	}
	opened, lease, err := repo.OpenLeased(ctx, r.Store(), repo.OpenOptions{Password: "pw", CacheDir: t.TempDir()}, repo.Shared, "backup", repo.LeaseOptions{})
	if err != nil || opened.ID() != r.ID() || opened.KeyID() != repo.ConfigKeyID {
		t.Fatalf("open: %v", err)
	}
	states, _ := r.Leases(ctx, repo.LeaseOptions{})
	if len(states) != 1 || !states[0].Alive || states[0].Purpose != "backup" || lease.Check() != nil {
		t.Fatalf("lease while open: %+v", states)
	}
	if err := lease.Release(); err != nil {
		t.Fatal(err)
	}
	if states, _ := r.Leases(ctx, repo.LeaseOptions{}); len(states) != 0 {
		t.Fatalf("leases after release: %+v", states)
	}
}

// Undelete needs a store that keeps versions, and says so.
func TestUndeleteNeedsVersions(t *testing.T) {
	r, err := repo.Init(context.Background(), newStore(t), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Undelete(context.Background(), r.Store(), repo.UndeleteOptions{}); !errors.Is(err, repo.ErrNotVersioned) {
		t.Fatalf("undelete on a store without versions: %v", err)
	}
}
