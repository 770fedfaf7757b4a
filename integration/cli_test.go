// Package integration holds end-to-end tests: the real graphkeep binary,
// several OS processes, MinIO in a container, injected faults.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/integration/pgtest"
)

// binary is the graphkeep built for this test run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "graphkeep-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "graphkeep")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+gitVersion(), "-o", binary, "./cmd/graphkeep")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build graphkeep: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.StopShared()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// gitVersion is the version make build records: git describe of the
// checkout.
func gitVersion() string {
	out, err := exec.Command("git", "-C", "..", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// env is one user's setup: a repository, a graphs root, a cache.
type env struct {
	t     *testing.T
	dir   string
	repo  string
	root  string
	extra []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, repo: "file://" + filepath.Join(dir, "repo"), root: filepath.Join(dir, "graphs")}
	if err := os.MkdirAll(e.root, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) environ() []string {
	env := append(os.Environ(),
		"GRAPHKEEP_REPO="+e.repo,
		"GRAPHKEEP_GRAPHS_ROOT="+e.root,
		"GRAPHKEEP_CACHE_DIR="+filepath.Join(e.dir, "cache"),
		"GRAPHKEEP_PASSWORD=",
		"GRAPHKEEP_STATE_DIR="+filepath.Join(e.dir, "state"),
	)
	return append(env, e.extra...)
}

// run runs graphkeep and returns stdout, stderr and the exit code.
func (e *env) run(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = e.environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run graphkeep %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// ok runs graphkeep and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("graphkeep %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs graphkeep, wants a non-zero exit and stderr containing want.
func (e *env) fails(want string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code == 0 {
		e.t.Fatalf("graphkeep %s succeeded, want failure %q\nstdout: %s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(errOut+out, want) {
		e.t.Fatalf("graphkeep %s: output does not contain %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), want, out, errOut)
	}
	return errOut
}

func (e *env) jsonOut(v any, args ...string) {
	e.t.Helper()
	out := e.ok(append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("graphkeep %v --json printed something that is not JSON: %v\n%s", args, err, out)
	}
}

// graph generates a LightRAG workspace under the root.
func (e *env) graph(id string, docs int) string {
	e.t.Helper()
	dir := filepath.Join(e.root, id)
	if err := fixture.Generate(dir, fixture.Spec{Docs: docs, EmbeddingDim: 256, Seed: uint64(len(id))}); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// sameTree fails unless a and b hold the same files with the same bytes.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	list := func(root string) map[string][]byte {
		out := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			data, err := os.ReadFile(p)
			out[rel] = data
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ta, tb := list(a), list(b)
	if len(ta) != len(tb) {
		t.Fatalf("%s has %d files, %s has %d", a, len(ta), b, len(tb))
	}
	for name, data := range ta {
		if !bytes.Equal(data, tb[name]) {
			t.Fatalf("%s differs between %s and %s", name, a, b)
		}
	}
}

type backupLine struct {
	Graph       string `json:"graph"`
	ID          string `json:"id"`
	Files       int    `json:"files"`
	SizeBytes   int64  `json:"size_bytes"`
	AddedBytes  int64  `json:"added_bytes"`
	StoredBytes int64  `json:"stored_bytes"`
	DurationMS  int64  `json:"duration_ms"`
}

type snapshotLine struct {
	Graph     string    `json:"graph"`
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	SizeBytes int64     `json:"size_bytes"`
	Flagged   bool      `json:"flagged"`
	LightRAG  struct {
		Nodes, Edges, Docs, Chunks int64
		VectorRows                 int64 `json:"vector_rows"`
	} `json:"lightrag"`
}

func TestCLIBackupRestoreEncrypted(t *testing.T) {
	e := newEnv(t)
	pwFile := filepath.Join(e.dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.extra = append(e.extra, "GRAPHKEEP_PASSWORD_FILE="+pwFile)
	for _, g := range []string{"alpha", "beta", "gamma"} {
		e.graph(g, 8)
	}
	e.ok("init")
	e.fails("already exists", "init")

	var first []backupLine
	e.jsonOut(&first, "backup", "--all")
	if len(first) != 3 || first[0].Graph != "alpha" || first[0].ID == "" || first[0].AddedBytes != first[0].SizeBytes || first[0].StoredBytes == 0 {
		t.Fatalf("first backup: %+v", first)
	}
	var second []backupLine
	e.jsonOut(&second, "backup", "alpha", "beta", "gamma")
	for _, l := range second {
		if l.StoredBytes != 0 || l.AddedBytes != 0 {
			t.Fatalf("unchanged re-backup of %s stored %d bytes", l.Graph, l.StoredBytes)
		}
	}
	var snaps []snapshotLine
	e.jsonOut(&snaps, "snapshots", "beta")
	if len(snaps) != 2 || snaps[0].LightRAG.Docs != 8 || snaps[0].Flagged {
		t.Fatalf("snapshots beta: %+v", snaps)
	}

	to := filepath.Join(e.dir, "restored", "beta")
	e.ok("restore", "beta", "latest", "--to", to)
	sameTree(t, filepath.Join(e.root, "beta"), to)
	all := filepath.Join(e.dir, "restored-all")
	e.ok("restore", "--all", "--to", all)
	for _, g := range []string{"alpha", "beta", "gamma"} {
		sameTree(t, filepath.Join(e.root, g), filepath.Join(all, g))
	}
	e.fails("give GRAPH and SNAPSHOT (or latest), or --all", "restore", "beta")
	e.ok("verify", "--read-data")

	// The repository is encrypted: no graph content is readable in it.
	needle, _ := os.ReadFile(filepath.Join(e.root, "alpha", "kv_store_full_docs.json"))
	_ = filepath.WalkDir(strings.TrimPrefix(e.repo, "file://"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			if bytes.Contains(data, needle[20:80]) {
				t.Fatalf("%s holds plaintext graph data", p)
			}
		}
		return nil
	})

	// Derived keys stay in the kernel keyring between runs unless told
	// not to; a bad setting says what it wants. (The wrong password below
	// fails with the right one's key cached by the runs above.)
	withPassword := e.extra
	e.extra = append(withPassword, "GRAPHKEEP_KEY_CACHE=off")
	e.ok("snapshots")
	e.extra = append(withPassword, "GRAPHKEEP_KEY_CACHE=soon")
	e.fails("GRAPHKEEP_KEY_CACHE=\"soon\": want how long derived keys stay cached", "snapshots")

	// A wrong or missing password fails cleanly.
	wrong := filepath.Join(e.dir, "wrong")
	_ = os.WriteFile(wrong, []byte("nope"), 0o600)
	e.extra = []string{"GRAPHKEEP_PASSWORD_FILE=" + wrong}
	e.fails("wrong password", "snapshots")
	e.extra = []string{"GRAPHKEEP_PASSWORD_FILE="}
	e.fails("encrypted and no password was given", "restore", "beta", "latest", "--to", filepath.Join(e.dir, "x"))
	if _, err := os.Stat(filepath.Join(e.dir, "x")); err == nil {
		t.Fatal("a failed restore created its destination")
	}
}

func TestCLICorruptChunk(t *testing.T) {
	e := newEnv(t)
	live := e.graph("g1", 6)
	e.ok("init")
	e.ok("backup", "g1")

	// Flip a byte in every stored chunk: whatever restore reads first is bad.
	chunks, _ := filepath.Glob(filepath.Join(strings.TrimPrefix(e.repo, "file://"), "chunks", "*", "*"))
	if len(chunks) == 0 {
		t.Fatal("no chunks stored")
	}
	for _, c := range chunks {
		data, _ := os.ReadFile(c)
		data[len(data)/2] ^= 0x55
		if err := os.WriteFile(c, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, _, code := e.run("verify", "--read-data")
	if code == 0 {
		t.Fatal("verify --read-data of damaged chunks succeeded")
	}
	if !regexp.MustCompile(`DAMAGED chunk [0-9a-f]+ \(in pack chunks/[0-9a-f]{2}/[0-9a-f]+, bytes \d+-\d+\)`).MatchString(out) {
		t.Fatalf("verify does not name the pack and bytes of a damaged chunk:\n%s", out)
	}
	e.ok("verify") // quick verify: every chunk is present

	before, _ := os.ReadFile(filepath.Join(live, "vdb_chunks.json"))
	if err := os.WriteFile(filepath.Join(live, "marker"), []byte("live graph"), 0o644); err != nil {
		t.Fatal(err)
	}
	errOut := e.fails("corrupt", "restore", "g1", "latest")
	if !strings.Contains(errOut, "chunk") || !strings.Contains(errOut, "untouched") {
		t.Fatalf("restore error does not name the chunk and say the destination is untouched: %s", errOut)
	}
	after, _ := os.ReadFile(filepath.Join(live, "vdb_chunks.json"))
	marker, _ := os.ReadFile(filepath.Join(live, "marker"))
	if !bytes.Equal(before, after) || string(marker) != "live graph" {
		t.Fatal("a failed restore changed the live graph")
	}
	entries, _ := os.ReadDir(e.root)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), ".graphkeep") {
			t.Fatalf("a failed restore left %s behind", en.Name())
		}
	}
}

func TestCLIBadInput(t *testing.T) {
	e := newEnv(t)
	e.graph("g1", 2)
	e.fails("run 'graphkeep init'", "backup", "g1")
	e.ok("init")
	e.fails(`graph "nope" is unknown: known graphs: g1`, "backup", "nope")
	e.fails("graph id", "backup", "../etc")
	e.fails("name the graphs to back up, or give --all", "backup")
	e.fails("has no snapshots", "restore", "g1", "latest", "--to", filepath.Join(e.dir, "r"))
	e.fails("keeps nothing", "forget")
	e.fails("unknown setting(s) colour", "--repo", e.repo+"?colour=red", "snapshots")
	cfg := filepath.Join(e.dir, "bad.yaml")
	_ = os.WriteFile(cfg, []byte("repo: x\nretension: {}\n"), 0o644)
	e.fails(`line 2: unknown key "retension"; did you mean retention?`, "--config", cfg, "snapshots")
	e.extra = []string{"GRAPHKEEP_REPO="}
	e.fails("no repository", "--repo", "", "snapshots")
}

func TestCLIForgetPruneAndStats(t *testing.T) {
	e := newEnv(t)
	dir := e.graph("g1", 6)
	e.ok("init")
	for i := 0; i < 3; i++ {
		if _, err := fixture.Grow(dir, fixture.Spec{Docs: 6 + i, EmbeddingDim: 256, Seed: 2}, 1); err != nil {
			t.Fatal(err)
		}
		e.ok("backup", "g1")
	}
	var res struct {
		Forget struct{ Removed int } `json:"forget"`
		Prune  struct {
			Deleted int `json:"deleted_chunks"`
		} `json:"prune"`
	}
	e.jsonOut(&res, "forget", "--keep-last", "1", "--prune")
	if res.Forget.Removed != 2 || res.Prune.Deleted == 0 {
		t.Fatalf("forget --prune: %+v", res)
	}
	e.ok("verify", "--read-data")
	to := filepath.Join(e.dir, "r")
	e.ok("restore", "g1", "latest", "--to", to)
	sameTree(t, dir, to)
	var st struct {
		Repository struct {
			Snapshots    int   `json:"snapshots"`
			StoredChunks int   `json:"stored_chunks"`
			Objects      int   `json:"objects"`
			StoredBytes  int64 `json:"stored_bytes"`
		} `json:"repository"`
	}
	e.jsonOut(&st, "stats")
	if st.Repository.Snapshots != 1 || st.Repository.StoredChunks != st.Repository.Objects || st.Repository.StoredBytes <= 0 {
		t.Fatalf("stats after prune: %+v", st.Repository)
	}

	// The month of a schedule, priced: hourly backups, cleanup daily.
	config := filepath.Join(e.dir, "schedule.yaml")
	if err := os.WriteFile(config, []byte("schedule:\n  backup_interval: 1h\n  cleanup_interval: 24h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var priced struct {
		Monthly struct {
			Operations []struct {
				Kind         string  `json:"kind"`
				RunsPerMonth float64 `json:"runs_per_month"`
			} `json:"operations"`
			Bills []struct {
				Provider string  `json:"provider"`
				Total    float64 `json:"total_usd"`
			} `json:"bills"`
		} `json:"monthly_estimate"`
	}
	e.jsonOut(&priced, "--config", config, "stats")
	m := priced.Monthly
	if len(m.Operations) != 2 || m.Operations[0].Kind != "backup" || m.Operations[0].RunsPerMonth != 720 ||
		m.Operations[1].Kind != "cleanup" || m.Operations[1].RunsPerMonth != 30 || len(m.Bills) != 3 || m.Bills[0].Total <= 0 {
		t.Fatalf("monthly estimate: %+v", m)
	}
	if out := e.ok("--config", config, "stats"); !strings.Contains(out, "Estimated monthly cost") || !strings.Contains(out, "S3 Standard") {
		t.Fatalf("stats does not show the estimate:\n%s", out)
	}
}

// TestBackupReplicateWarnsOnOutage: with --replicate, a target that is
// gone is a warning; the backup succeeds and is committed.
func TestBackupReplicateWarnsOnOutage(t *testing.T) {
	e := newEnv(t)
	e.graph("g1", 3)
	e.ok("init")
	target := filepath.Join(e.dir, "replica")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	e.ok("targets", "add", "local", "file://"+target)
	out := e.ok("backup", "g1", "--replicate")
	if !strings.Contains(out, "local: up to date; copied 1 snapshots") {
		t.Fatalf("backup --replicate did not replicate: %s", out)
	}
	if err := os.Rename(target, target+".gone"); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := e.run("backup", "g1", "--replicate")
	if code != 0 || !strings.Contains(errOut, "warning: replication after backup") {
		t.Fatalf("backup with the target gone: exit %d, stderr %s", code, errOut)
	}
	var snaps []snapshotLine
	e.jsonOut(&snaps, "snapshots", "g1")
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}
}

// TestCLIInitRefusesARepositoryThatLostItsConfig: with graphkeep.repo
// deleted, commands say the config is missing and to copy it from a
// replica (not to run init), and init refuses to put a new repository over
// the old snapshots.
func TestCLIInitRefusesARepositoryThatLostItsConfig(t *testing.T) {
	e := newEnv(t)
	e.graph("g1", 2)
	e.ok("init")
	e.ok("backup", "g1")
	repoDir := strings.TrimPrefix(e.repo, "file://")
	if err := os.Remove(filepath.Join(repoDir, "graphkeep.repo")); err != nil {
		t.Fatal(err)
	}
	msg := e.fails("graphkeep.repo is missing", "snapshots")
	if !strings.Contains(msg, "replica") || strings.Contains(msg, "run 'graphkeep init'") {
		t.Fatalf("a repository without its config: %s", msg)
	}
	e.fails("copy graphkeep.repo from a replica", "init")
	if _, err := os.Stat(filepath.Join(repoDir, "graphkeep.repo")); err == nil {
		t.Fatal("init wrote a new config over the old repository")
	}
	// An empty folder is simply no repository: init is the answer there.
	empty := newEnv(t)
	empty.fails("run 'graphkeep init'", "--repo", "file://"+filepath.Join(empty.dir, "fresh")+"?create=true", "snapshots")
}

// TestCLIUnknownGraphIsAnError: a misspelt graph name fails every command
// that takes one, listing the known graphs; a folder whose name is not a
// graph id is named by backup --all with the way to include it.
func TestCLIUnknownGraphIsAnError(t *testing.T) {
	e := newEnv(t)
	e.graph("g1", 2)
	e.ok("init")
	e.ok("backup", "g1")
	for _, args := range [][]string{
		{"verify", "gl"}, {"snapshots", "gl"}, {"forget", "gl", "--keep-last", "1"},
		{"replication", "status", "gl"}, {"restore", "gl", "latest", "--to", filepath.Join(e.dir, "x")},
	} {
		e.fails(`graph "gl": unknown graph`, args...)
		if msg := e.fails("known graphs: g1", args...); msg == "" {
			t.Fatalf("%v", args)
		}
	}
	if err := os.MkdirAll(filepath.Join(e.root, "my graph"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := e.run("backup", "--all")
	if code != 0 || !strings.Contains(errOut, `skipping folder "my graph"`) || !strings.Contains(errOut, "--graph ID=") {
		t.Fatalf("backup --all with an invalid folder name: exit %d, stderr:\n%s", code, errOut)
	}
}

// TestCLIJSONShapes: restore --json uses the snake_case shape with
// duration_ms, and with --json a failure is {"error":{"code","message"}} on
// stdout with the exit code unchanged.
func TestCLIJSONShapes(t *testing.T) {
	e := newEnv(t)
	e.graph("g1", 2)
	e.ok("init")
	e.ok("backup", "g1")
	var res map[string]any
	e.jsonOut(&res, "restore", "g1", "latest", "--to", filepath.Join(e.dir, "r"))
	for _, key := range []string{"snapshot", "dest", "files", "bytes", "lightrag", "duration_ms"} {
		if _, ok := res[key]; !ok {
			t.Errorf("restore --json lacks %q: %v", key, res)
		}
	}
	for _, key := range []string{"Snapshot", "Dest", "Duration"} {
		if _, ok := res[key]; ok {
			t.Errorf("restore --json has the Go field %q", key)
		}
	}
	out, _, code := e.run("--json", "snapshots", "gl")
	var failure struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &failure) != nil || failure.Error.Code != "not_found" || !strings.Contains(failure.Error.Message, "known graphs: g1") {
		t.Fatalf("--json failure: exit %d, stdout %q", code, out)
	}
}

// TestCLIRestoreKilledMidSwap: graphkeep killed with SIGKILL in the middle
// of a restore's swap, on both swap paths. The atomic exchange never leaves
// the graph directory missing; the two-rename path does until the next
// graphkeep run on that directory (here a backup), which finishes the swap
// first: the restored tree in place, the old one kept, nothing left over.
func TestCLIRestoreKilledMidSwap(t *testing.T) {
	for _, point := range []string{"exchanged", "moved-aside"} {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t)
			dir := e.graph("g1", 2)
			e.ok("init")
			e.ok("backup", "g1")
			var snaps []snapshotLine
			e.jsonOut(&snaps, "snapshots", "g1")
			older := snaps[0].ID
			if _, err := fixture.Grow(dir, fixture.Spec{Docs: 2, EmbeddingDim: 256, Seed: uint64(len("g1"))}, 1); err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(e.dir, "want")
			copyDir(t, dir, want)
			e.ok("backup", "g1")
			e.jsonOut(&snaps, "snapshots", "g1")
			newer := snaps[len(snaps)-1].ID
			e.ok("restore", "g1", older) // the graph directory now holds the older state

			killed := *e
			killed.extra = append(append([]string{}, e.extra...), "GRAPHKEEP_TEST_KILL_AT="+point)
			_, _, code := killed.run("restore", "g1", newer)
			if code != -1 {
				t.Fatalf("restore with a kill at %s: exit %d, want killed", point, code)
			}
			_, err := os.Stat(dir)
			if point == "exchanged" && err != nil {
				t.Fatalf("killed after the exchange, the graph directory is missing: %v", err)
			}
			if point == "moved-aside" && !os.IsNotExist(err) {
				t.Fatalf("the kill was not between the two renames: %v", err)
			}
			e.ok("backup", "g1")
			sameTree(t, want, dir)
			out := e.ok("previous", "list", "g1")
			if strings.Count(out, ".graphkeep-previous-g1-") != 2 {
				t.Fatalf("undo copies:\n%s", out)
			}
			entries, _ := os.ReadDir(e.root)
			for _, en := range entries {
				if strings.HasPrefix(en.Name(), ".graphkeep-restore-") || strings.HasPrefix(en.Name(), ".graphkeep-swap-") {
					t.Fatalf("left behind: %s", en.Name())
				}
			}
		})
	}
}

// A command that only groups others refuses a missing or unknown
// subcommand (before: it printed its help and exited 0); monitoring prints
// the rules and the dashboard.
func TestGroupCommandsNeedASubcommand(t *testing.T) {
	e := newEnv(t)
	e.fails("needs a subcommand: one of add, health, list, remove", "targets")
	e.fails(`has no subcommand "bogus": use one of grafana, rules`, "monitoring", "bogus")
	if rules := e.ok("monitoring", "rules"); !strings.Contains(rules, "alert: GraphkeepBackupStale") {
		t.Fatalf("monitoring rules:\n%s", rules)
	}
	var dash struct{ Panels []any }
	e.jsonOut(&dash, "monitoring", "grafana")
	if len(dash.Panels) < 10 {
		t.Fatalf("monitoring grafana: %d panels", len(dash.Panels))
	}
}
