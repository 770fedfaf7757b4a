package integration

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runWith runs graphkeep with password (and, when set, a new password).
func (e *env) runWith(password, newPassword string, args ...string) (string, string, int) {
	e.t.Helper()
	saved := e.extra
	defer func() { e.extra = saved }()
	e.extra = append(append([]string(nil), saved...), "GRAPHKEEP_PASSWORD="+password, "GRAPHKEEP_NEW_PASSWORD="+newPassword)
	return e.run(args...)
}

// TestKeyCommands: list, add, passwd and remove through the CLI, with the
// password given as a file, a command and the environment.
func TestKeyCommands(t *testing.T) {
	e := newEnv(t)
	e.graph("g1", 4)
	if _, errOut, code := e.runWith("first", "", "init"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := e.runWith("first", "", "backup", "g1", "--quiet-window", "0"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := e.runWith("first", "second", "key", "add")
	if code != 0 || !strings.Contains(out, "added key ") {
		t.Fatalf("key add: %s %s", out, errOut)
	}
	added := strings.Fields(strings.TrimPrefix(out, "added key "))[0]
	added = strings.TrimSuffix(added, ":")
	// The second password, from a command, opens it and is marked.
	out, errOut, code = e.runWith("", "", "--password-command", "echo second", "key", "list")
	if code != 0 || !strings.Contains(out, "* "+added) || !strings.Contains(out, "  config") {
		t.Fatalf("key list with the second password:\n%s%s", out, errOut)
	}
	// From a file too.
	pwFile := filepath.Join(e.dir, "pw")
	if err := os.WriteFile(pwFile, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.runWith("", "", "--password-file", pwFile, "snapshots"); code != 0 {
		t.Fatalf("password file: %s", errOut)
	}
	// Refusals, each saying why.
	for _, c := range []struct {
		password, want string
		args           []string
	}{
		{"second", "opened the repository", []string{"key", "remove", added}},
		{"first", "config's own", []string{"key", "remove", "config"}},
		{"first", "no such key", []string{"key", "remove", "0123456789abcdef"}},
		{"first", "no new password", []string{"key", "add"}},
		{"first", "not both", []string{"--password-file", pwFile, "--password-command", "echo x", "snapshots"}},
		{"", "printed no password", []string{"--password-command", "true", "snapshots"}},
		{"nope", "wrong password", []string{"snapshots"}},
	} {
		out, errOut, code := e.runWith(c.password, "", c.args...)
		if code == 0 || !strings.Contains(strings.ToLower(out+errOut), strings.ToLower(c.want)) {
			t.Errorf("graphkeep %s: exit %d, want an error saying %q:\n%s%s", strings.Join(c.args, " "), code, c.want, out, errOut)
		}
	}
	// Change the first password; remove the second key with it.
	if out, errOut, code := e.runWith("first", "first, changed", "key", "passwd"); code != 0 {
		t.Fatalf("key passwd: %s %s", out, errOut)
	}
	if _, _, code := e.runWith("first", "", "snapshots"); code == 0 {
		t.Fatal("the old password still opens the repository")
	}
	if out, errOut, code := e.runWith("first, changed", "", "key", "remove", added); code != 0 {
		t.Fatalf("key remove: %s %s", out, errOut)
	}
	if _, _, code := e.runWith("second", "", "snapshots"); code == 0 {
		t.Fatal("a removed password still opens the repository")
	}
	restored := filepath.Join(e.dir, "restored")
	if _, errOut, code := e.runWith("first, changed", "", "restore", "g1", "latest", "--to", restored); code != 0 {
		t.Fatalf("restore after the changes: %s", errOut)
	}
}

// TestKill9DuringPasswordChange kills key passwd at random moments, on the
// config's key and on a key under keys/: afterwards the old or the new
// password always opens the repository, and its data still restores.
func TestKill9DuringPasswordChange(t *testing.T) {
	e := newEnv(t)
	g1 := e.graph("g1", 4)
	if _, errOut, code := e.runWith("p0", "", "init"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := e.runWith("p0", "", "backup", "g1", "--quiet-window", "0"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := e.runWith("p0", "k0", "key", "add"); code != 0 {
		t.Fatal(errOut)
	}
	// Two chains of passwords: the config's (p0, p1, ...) and the added
	// key's (k0, k1, ...).
	current := map[string]string{"p": "p0", "k": "k0"}
	rng := rand.New(rand.NewPCG(7, 7))
	opens := func(password string) bool {
		_, _, code := e.runWith(password, "", "snapshots")
		return code == 0
	}
	killed := 0
	for round := 1; round <= 12; round++ {
		chain := []string{"p", "k"}[round%2]
		old, next := current[chain], chain+strings.Repeat("x", round)
		cmd := exec.Command(binary, "key", "passwd")
		cmd.Env = append(e.environ(), "GRAPHKEEP_PASSWORD="+old, "GRAPHKEEP_NEW_PASSWORD="+next)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err != nil {
			killed++
		}
		oldOK, newOK := opens(old), opens(next)
		if !oldOK && !newOK {
			t.Fatalf("round %d: after kill -9 of key passwd neither %q nor %q opens the repository", round, old, next)
		}
		if newOK {
			current[chain] = next
		}
		// The other chain is untouched.
		other := map[string]string{"p": "k", "k": "p"}[chain]
		if !opens(current[other]) {
			t.Fatalf("round %d: changing %q broke the other password %q", round, old, current[other])
		}
	}
	t.Logf("%d of 12 password changes were killed mid-way", killed)
	restored := filepath.Join(e.dir, "restored")
	if _, errOut, code := e.runWith(current["p"], "", "restore", "g1", "latest", "--to", restored); code != 0 {
		t.Fatalf("restore: %s", errOut)
	}
	sameTree(t, g1, restored)
}

// TestLeasesOfADeadProcess: a prune killed with -9 leaves its lease; on
// the same host it shows as dead at once and another prune runs without
// waiting for it to expire; a live lease of another host is only broken by
// force.
func TestLeasesOfADeadProcess(t *testing.T) {
	e := newEnv(t)
	e.ok("fixture", "generate", e.root, "--graphs", "g1", "--size", "2000000")
	e.ok("init")
	e.ok("backup", "g1", "--quiet-window", "0")
	// Other content altogether: no chunk of the first backup's pack is
	// named any more.
	e.ok("fixture", "generate", e.root, "--graphs", "g1", "--size", "2000000", "--seed", "2")
	e.ok("backup", "g1", "--quiet-window", "0")
	e.ok("forget", "--keep-last", "1") // the prune has a pack to delete, so it waits for writers
	repoDir := strings.TrimPrefix(e.repo, "file://")
	// The chunks are old: a prune condemns the unnamed ones and then waits
	// for the backups running when it began.
	old := time.Now().Add(-2 * time.Hour)
	_ = filepath.WalkDir(filepath.Join(repoDir, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	// A backup on another host holds a shared lease: the prune waits for it.
	remote := fmt.Sprintf(`{"kind":"shared","purpose":"backup g9","host":"elsewhere","pid":4242,"created":%q,"expires":%q}`,
		time.Now().UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(repoDir, "leases", "shared-remote"), []byte(remote), 0o644); err != nil {
		t.Fatal(err)
	}
	prune := exec.Command(binary, "prune")
	prune.Env = e.environ()
	if err := prune.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if held, _ := filepath.Glob(filepath.Join(repoDir, "leases", "prune-*")); len(held) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("prune never took its lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = prune.Process.Signal(syscall.SIGKILL)
	_ = prune.Wait()

	out := e.ok("leases", "list")
	if !strings.Contains(out, fmt.Sprintf("dead: process %d is gone", prune.Process.Pid)) || !strings.Contains(out, "elsewhere") {
		t.Fatalf("leases list:\n%s", out)
	}
	e.fails("add --force", "leases", "break", "shared-remote")
	e.ok("leases", "break", "shared-remote", "--force")
	start := time.Now()
	e.ok("prune") // the dead prune's lease (2 minutes to expire) does not stop it
	if took := time.Since(start); took > time.Minute {
		t.Fatalf("prune waited %s", took)
	}
	if out := e.ok("leases", "list"); !strings.Contains(out, "no leases") {
		t.Fatalf("leases left after prune:\n%s", out)
	}
}
