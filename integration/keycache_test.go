package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A process killed while it caches the key derived from the password (made,
// not yet in the user's keyring) leaves no key that outlives it: every
// graphkeep key in the kernel's keyrings has an expiry, and the next run
// caches its own.
func TestKill9WhileCachingTheKey(t *testing.T) {
	if _, err := os.Stat("/proc/keys"); err != nil {
		t.Skip("no kernel keyring here (/proc/keys): graphkeep derives the key every time")
	}
	e := newEnv(t)
	pw := filepath.Join(e.dir, "pw")
	if err := os.WriteFile(pw, []byte("kill me while caching"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.extra = []string{"GRAPHKEEP_PASSWORD_FILE=" + pw, "GRAPHKEEP_KEY_CACHE=off"}
	e.graph("g1", 2)
	e.ok("init") // nothing cached: the next run derives and caches
	e.ok("backup", "g1")

	permanent := func() []string {
		keys, err := os.ReadFile("/proc/keys")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, line := range strings.Split(string(keys), "\n") {
			// id flags usage timeout perm uid gid type description
			if f := strings.Fields(line); len(f) >= 9 && strings.HasPrefix(f[8], "graphkeep:kek:") && f[3] == "perm" {
				out = append(out, line)
			}
		}
		return out
	}
	before := map[string]bool{} // by key id: another process's doing, not this test's
	for _, line := range permanent() {
		before[strings.Fields(line)[0]] = true
	}
	added := func() []string {
		var out []string
		for _, line := range permanent() {
			if !before[strings.Fields(line)[0]] {
				out = append(out, line)
			}
		}
		return out
	}

	e.extra = []string{"GRAPHKEEP_PASSWORD_FILE=" + pw, "GRAPHKEEP_TEST_KILL_AT=key-cached"}
	if _, _, code := e.run("snapshots", "g1"); code != -1 {
		keys, _ := os.ReadFile("/proc/keys")
		if !strings.Contains(string(keys), "graphkeep:kek:") {
			t.Skip("this kernel refuses keyrings (a container's seccomp profile?): nothing is cached")
		}
		t.Fatalf("snapshots with a kill while caching the key: exit %d, want killed", code)
	}
	// The key the killed run made lived in its process keyring only; the
	// kernel collects it once nothing links it (within seconds).
	deadline := time.Now().Add(15 * time.Second)
	for len(added()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if p := added(); len(p) > 0 {
		t.Fatalf("a killed run left keys that never expire:\n%s", strings.Join(p, "\n"))
	}
	e.extra = []string{"GRAPHKEEP_PASSWORD_FILE=" + pw}
	e.ok("snapshots", "g1")
	e.ok("verify")
	if p := added(); len(p) > 0 {
		t.Fatalf("keys that never expire:\n%s", strings.Join(p, "\n"))
	}
}
