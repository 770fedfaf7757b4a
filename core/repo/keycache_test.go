package repo_test

import (
	"context"
	"errors"
	"maps"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/repo"
)

// memKeyCache is a KeyCache in memory.
type memKeyCache struct {
	mu      sync.Mutex
	entries map[string][]byte
}

func (c *memKeyCache) Load(name string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[name]
	return append([]byte(nil), v...), ok
}

func (c *memKeyCache) Store(name string, value []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string][]byte{}
	}
	c.entries[name] = append([]byte(nil), value...)
}

func (c *memKeyCache) snapshot() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.entries)
}

// A cached key spares the derivation for the password it was derived
// from, and for no other: a wrong password derives and fails as without a
// cache, and so do a changed or removed password.
func TestKeyCache(t *testing.T) {
	ctx := context.Background()
	derived := repo.CountDerivations(t)
	cache := &memKeyCache{}
	r, err := repo.Init(ctx, newStore(t), repo.InitOptions{Password: "first", KDF: cheapKDF, KeyCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	open := func(password string) (*repo.Repository, error) {
		return repo.Open(ctx, r.Store(), repo.OpenOptions{Password: password, CacheDir: t.TempDir(), KeyCache: cache})
	}
	expectDerived := func(what string, want int64) {
		t.Helper()
		if got := derived.Swap(0); got != want {
			t.Errorf("%s: %d derivations, want %d", what, got, want)
		}
	}
	expectDerived("init", 1)

	for range 3 {
		if _, err := open("first"); err != nil {
			t.Fatal(err)
		}
	}
	expectDerived("three opens after init", 0)

	before := cache.snapshot()
	if _, err := open("wrong"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("wrong password with the right one cached: %v", err)
	}
	expectDerived("wrong password", 1)
	if !maps.EqualFunc(before, cache.snapshot(), func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Error("a wrong password changed the cache")
	}
	_, lease, err := repo.OpenLeased(ctx, r.Store(), repo.OpenOptions{Password: "first", CacheDir: t.TempDir(), KeyCache: cache}, repo.Shared, "backup", repo.LeaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = lease.Release()
	expectDerived("leased open", 0)

	// An extra password: derived when added, then cached.
	second, err := r.AddKey(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	expectDerived("key add", 1)
	if _, err := open("second"); err != nil {
		t.Fatal(err)
	}
	// The config's key is tried first with the other password: that
	// derivation finds no cached key of its own and fails.
	expectDerived("open with the extra password", 1)

	// Removed: its cached key unwraps nothing any more.
	if err := r.RemoveKey(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := open("second"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("removed password with its key cached: %v", err)
	}

	// Changed: the old password's cached key is for the old salt.
	if _, err := r.ChangePassword(ctx, "first, changed"); err != nil {
		t.Fatal(err)
	}
	derived.Store(0)
	if _, err := open("first"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("old password after passwd with its key cached: %v", err)
	}
	if _, err := open("first, changed"); err != nil {
		t.Fatal(err)
	}
	expectDerived("old password (fails), then the new one (cached by passwd)", 1)
}

// A damaged cache entry costs a derivation, never the repository.
func TestKeyCacheDamaged(t *testing.T) {
	ctx := context.Background()
	cache := &memKeyCache{}
	r, err := repo.Init(ctx, newStore(t), repo.InitOptions{Password: "pw", KDF: cheapKDF, KeyCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	// Another repository's key for the same password: its check passes,
	// it unwraps nothing here.
	other := &memKeyCache{}
	if _, err := repo.Init(ctx, newStore(t), repo.InitOptions{Password: "pw", KDF: cheapKDF, KeyCache: other}); err != nil {
		t.Fatal(err)
	}
	var foreign []byte
	for _, v := range other.snapshot() {
		foreign = v
	}
	for name, v := range cache.snapshot() {
		for _, damaged := range [][]byte{nil, v[:10], append(append([]byte{}, v...), 0), foreign} {
			cache.Store(name, damaged)
			if _, err := repo.Open(ctx, r.Store(), repo.OpenOptions{Password: "pw", CacheDir: t.TempDir(), KeyCache: cache}); err != nil {
				t.Fatalf("damaged entry (%d bytes): %v", len(damaged), err)
			}
			if got, _ := cache.Load(name); string(got) != string(v) {
				t.Error("the entry was not replaced by a good one")
			}
		}
	}
}

// The kernel keyring keeps an entry for the next process, readable back.
func TestKernelKeyring(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the kernel keyring is Linux's")
	}
	kc := repo.KernelKeyring(time.Minute)
	name := "graphkeep:test:" + time.Now().Format("150405.000000000")
	value := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	kc.Store(name, value)
	got, ok := kc.Load(name)
	if !ok {
		t.Skip("this kernel refuses keyrings (a container's seccomp profile?): graphkeep derives keys every time here")
	}
	if string(got) != string(value) {
		t.Fatalf("read back %q", got)
	}
	kc.Store(name, []byte("replaced"))
	if got, _ := kc.Load(name); string(got) != "replaced" {
		t.Fatalf("after a second store: %q", got)
	}
	if repo.KernelKeyring(0) != nil {
		t.Error("a zero lifetime still caches")
	}
}
