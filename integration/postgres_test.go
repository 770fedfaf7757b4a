package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/graphkeep/graphkeep/integration/pgtest"
)

// pgEnv is a user whose graphs are LightRAG workspaces in a PostgreSQL
// database (as PGKVStorage, PGVectorStorage, PGDocStatusStorage and
// PGTableGraphStorage keep them): GRAPHKEEP_POSTGRES names the database
// without its password, which comes from PGPASSWORD as libpq has it.
type pgEnv struct {
	*env
	srv    *pgtest.Server
	url    string // with the password
	schema pgtest.Schema
}

func newPGEnv(t *testing.T) *pgEnv {
	t.Helper()
	srv := pgtest.Shared(t)
	e := &pgEnv{env: newEnv(t), srv: srv, url: srv.CreateDatabase(t)}
	schema, note, err := pgtest.Create(context.Background(), e.url, pgtest.Schema{Model: "bge_m3", Dim: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(note)
	e.schema = schema
	e.extra = append(e.extra, "GRAPHKEEP_POSTGRES="+withoutPassword(e.url), "PGPASSWORD="+srv.Password)
	return e
}

func withoutPassword(raw string) string {
	u, _ := url.Parse(raw)
	u.User = url.User(u.User.Username())
	return u.String()
}

// ingest writes documents from..to into workspace ws as LightRAG does.
func (e *pgEnv) ingest(ws string, from, to int) {
	e.t.Helper()
	w := &pgtest.Writer{URL: e.url, Workspace: ws, Schema: e.schema}
	defer w.Close()
	if err := w.Run(context.Background(), from, to, nil); err != nil {
		e.t.Fatal(err)
	}
}

func (e *pgEnv) count(sql string, args ...any) int64 {
	e.t.Helper()
	return countIn(e.t, e.url, sql, args...)
}

func countIn(t *testing.T, dbURL, sql string, args ...any) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e *pgEnv) docs(ws string) int64 {
	return e.count("SELECT count(*) FROM lightrag_doc_full WHERE workspace = $1", ws)
}

type pgSnapshotLine struct {
	snapshotLine
	State   string `json:"state"`
	Source  string `json:"source"`
	Missing []struct {
		Kind   string `json:"kind"`
		Detail string `json:"detail"`
	} `json:"missing"`
}

// The CLI end to end on PostgreSQL graphs: discovery, backup, listing,
// verify, dry run, restore in place (with its undo snapshot), clone,
// another database, a checkpoint mixing file and PostgreSQL graphs, and
// the refusals a user can trip over.
func TestCLIPostgresGraphs(t *testing.T) {
	e := newPGEnv(t)
	e.ingest("alpha", 1, 4)
	e.ingest("beta", 1, 2)
	e.ingest("not a graph id!", 1, 1)
	e.graph("files1", 2) // a graph of files beside them
	e.ok("init")
	_, stderr, code := e.run("backup", "--all")
	if code != 0 {
		t.Fatalf("backup --all: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, `skipping PostgreSQL workspace "not a graph id!"`) || !strings.Contains(stderr, "workspace=not+a+graph+id%21") || strings.Contains(stderr, e.srv.Password) {
		t.Fatalf("backup --all warnings:\n%s", stderr)
	}
	var snaps []pgSnapshotLine
	e.jsonOut(&snaps, "snapshots")
	byGraph := map[string]pgSnapshotLine{}
	for _, s := range snaps {
		byGraph[s.Graph] = s
	}
	if a := byGraph["alpha"]; a.Source != "postgres" || a.State != "consistent" || a.LightRAG.Docs != 4 || a.LightRAG.Nodes != 12 {
		t.Fatalf("alpha: %+v", a)
	}
	if b := byGraph["beta"]; b.LightRAG.Docs != 2 || byGraph["files1"].Source != "files" {
		t.Fatalf("snapshots: %+v", snaps)
	}
	e.ok("verify", "--read-data")
	if out := e.ok("stats"); !strings.Contains(out, "alpha") {
		t.Fatalf("stats:\n%s", out)
	}

	// Two more documents; the dry run says what a restore would undo.
	e.ingest("alpha", 5, 6)
	out := e.ok("restore", "alpha", "latest", "--dry-run")
	if !strings.Contains(out, "lightrag_doc_full") || !strings.Contains(out, "2 removed") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("dry run:\n%s", out)
	}
	if got := e.docs("alpha"); got != 6 {
		t.Fatalf("the dry run changed the workspace: %d documents", got)
	}
	out = e.ok("restore", "alpha", "latest")
	if !strings.Contains(out, "committed in one transaction") || !strings.Contains(out, "kept as snapshot alpha/") {
		t.Fatalf("restore:\n%s", out)
	}
	if got := e.docs("alpha"); got != 4 {
		t.Fatalf("after the restore: %d documents", got)
	}
	// The undo snapshot holds the six documents.
	e.jsonOut(&snaps, "snapshots", "alpha")
	if last := snaps[len(snaps)-1]; last.LightRAG.Docs != 6 {
		t.Fatalf("undo snapshot: %+v", last)
	}

	// A clone; into a workspace in use only with --force.
	e.ok("restore", "alpha", snaps[0].ID, "--to-workspace", "alpha_copy")
	if got := e.docs("alpha_copy"); got != 4 {
		t.Fatalf("clone: %d documents", got)
	}
	e.fails("--force", "restore", "alpha", snaps[0].ID, "--to-workspace", "beta")
	if got := e.docs("beta"); got != 2 {
		t.Fatalf("a refused clone changed beta: %d documents", got)
	}
	// Another database: LightRAG's tables are created there.
	other := e.srv.CreateDatabase(t)
	out = e.ok("restore", "alpha", snaps[0].ID, "--to", withoutPassword(other))
	if !strings.Contains(out, "created table lightrag_doc_full") || countIn(t, other, "SELECT count(*) FROM lightrag_doc_full WHERE workspace = 'alpha'") != 4 {
		t.Fatalf("restore into another database:\n%s", out)
	}
	e.fails("not a directory", "restore", "alpha", "latest", "--to", e.dir+"/somewhere")

	// A checkpoint spans file and PostgreSQL graphs.
	var cp struct {
		Snapshots []struct{ Graph string } `json:"snapshots"`
	}
	e.jsonOut(&cp, "checkpoint", "create")
	graphs := map[string]bool{}
	for _, s := range cp.Snapshots {
		graphs[s.Graph] = true
	}
	for _, g := range []string{"alpha", "beta", "alpha_copy", "files1"} {
		if !graphs[g] {
			t.Fatalf("checkpoint lacks %s: %+v", g, cp)
		}
	}

	// A wrong password: a clear error, never the password.
	bad := *e.env
	bad.extra = append(append([]string{}, e.extra...), "PGPASSWORD=wrong-password-123")
	stderr = bad.fails("password", "backup", "alpha")
	if strings.Contains(stderr, "wrong-password-123") {
		t.Fatalf("the error shows the password: %s", stderr)
	}
}

// kill -9 in the middle of a restore into PostgreSQL leaves the old state
// or the new, never a mix.
func TestCLIPostgresRestoreKilled(t *testing.T) {
	for _, point := range []string{"pg-table-loaded", "pg-loaded"} {
		t.Run(point, func(t *testing.T) {
			e := newPGEnv(t)
			e.ingest("alpha", 1, 3)
			e.ok("init")
			e.ok("backup", "alpha")
			e.ingest("alpha", 4, 5)
			killed := *e.env
			killed.extra = append(append([]string{}, e.extra...), "GRAPHKEEP_TEST_KILL_AT="+point)
			if _, _, code := killed.run("restore", "alpha", "latest"); code != -1 {
				t.Fatalf("restore with a kill at %s: exit %d, want killed", point, code)
			}
			// The server rolls the killed transaction back.
			deadline := time.Now().Add(10 * time.Second)
			for e.count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'graphkeep' AND state <> 'idle'") > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got, nodes := e.docs("alpha"), e.count("SELECT count(*) FROM lightrag_graph_nodes WHERE workspace = 'alpha'"); got != 5 || nodes != 15 {
				t.Fatalf("after the kill: %d documents, %d nodes; want the state before the restore (5, 15)", got, nodes)
			}
			e.ok("restore", "alpha", "latest")
			if got := e.docs("alpha"); got != 3 {
				t.Fatalf("after the restore: %d documents", got)
			}
		})
	}
}

// watch backs a PostgreSQL graph up when its workspace changes.
func TestCLIPostgresWatch(t *testing.T) {
	e := newPGEnv(t)
	e.ingest("alpha", 1, 2)
	e.ok("init")
	cmd := exec.Command(binary, "watch", "alpha", "--min-interval", "100ms", "--poll", "100ms")
	cmd.Env = e.environ()
	var log strings.Builder
	var logMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return log.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitSnapshots := func(docs int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var snaps []pgSnapshotLine
			out, _, code := e.run("--json", "snapshots", "alpha")
			if code == 0 && json.Unmarshal([]byte(out), &snaps) == nil && len(snaps) > 0 && snaps[len(snaps)-1].LightRAG.Docs == docs {
				if s := snaps[len(snaps)-1]; s.State != "consistent" {
					t.Fatalf("watch snapshot: %+v", s)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("no snapshot with %d documents within 30s\nwatch log:\n%s", docs, log.String())
	}
	waitSnapshots(2)
	e.ingest("alpha", 3, 3)
	waitSnapshots(3)
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch after SIGINT: %v, want exit 0", err)
	}
}

// The server on a PostgreSQL graph: its source in the graph view, a
// backup, a dry run and a clone through the API; another database only
// from the CLI.
func TestServerPostgresGraph(t *testing.T) {
	e := newPGEnv(t)
	e.extra = append(e.extra, "GRAPHKEEP_ADMIN_TOKEN="+testAdminToken)
	e.ingest("alpha", 1, 3)
	e.ok("init")
	s := e.startServer(t, "")
	var g struct {
		Source   string `json:"source"`
		Postgres string `json:"postgres"`
	}
	s.must(200, "GET", "/graphs/alpha", "", &g)
	if g.Source != "postgres" || !strings.Contains(g.Postgres, `workspace "alpha"`) || strings.Contains(g.Postgres, e.srv.Password) {
		t.Fatalf("graph view: %+v", g)
	}
	var j apiJob
	s.must(201, "POST", "/backup/graphs/alpha/snapshots?wait=true", "", &j)
	var snap struct {
		ID     string `json:"id"`
		Source string `json:"source"`
		Tables int    `json:"tables"`
	}
	if err := json.Unmarshal(j.Result, &snap); err != nil || snap.Source != "postgres" || snap.Tables != 13 {
		t.Fatalf("backup result: %s", j.Result)
	}
	var detail struct {
		Stores []struct{ Kind, In string } `json:"stores"`
	}
	s.must(200, "GET", "/backup/graphs/alpha/snapshots/"+snap.ID, "", &detail)
	if len(detail.Stores) != 4 {
		t.Fatalf("snapshot detail: %+v", detail)
	}
	e.ingest("alpha", 4, 4)
	s.must(201, "POST", "/backup/graphs/alpha/snapshots/"+snap.ID+"/restore?wait=true", `{"dry_run": true}`, &j)
	var plan struct {
		Postgres struct {
			DryRun bool `json:"dry_run"`
			Diff   []struct {
				Table   string `json:"table"`
				Removed int64  `json:"removed"`
			} `json:"diff"`
		} `json:"postgres"`
	}
	if err := json.Unmarshal(j.Result, &plan); err != nil || !plan.Postgres.DryRun || len(plan.Postgres.Diff) == 0 {
		t.Fatalf("dry run: %s", j.Result)
	}
	if got := e.docs("alpha"); got != 4 {
		t.Fatalf("the dry run changed the workspace: %d", got)
	}
	s.must(201, "POST", "/backup/graphs/alpha/snapshots/"+snap.ID+"/restore?wait=true", `{"to_workspace": "alpha_api"}`, &j)
	if got := e.docs("alpha_api"); got != 3 {
		t.Fatalf("clone through the API: %d documents (%s)", got, j.Result)
	}
	var apiErr struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code := s.call("POST", "/backup/graphs/alpha/snapshots/"+snap.ID+"/restore", `{"to": "`+withoutPassword(e.srv.CreateDatabase(t))+`"}`, &apiErr); code != 422 || !strings.Contains(apiErr.Error.Message, "never to a database it names") {
		t.Fatalf("restore into a database named over the network: %d %+v", code, apiErr)
	}
}

// A restore in place is refused while LightRAG's pipeline is busy.
func TestCLIPostgresRestoreWaitsForAnIdlePipeline(t *testing.T) {
	e := newPGEnv(t)
	var busy atomic.Bool
	lr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"busy": busy.Load()})
	}))
	defer lr.Close()
	e.extra = append(e.extra, "GRAPHKEEP_LIGHTRAG_URL="+lr.URL)
	e.ingest("alpha", 1, 2)
	e.ok("init")
	e.ok("backup", "alpha")
	e.ingest("alpha", 3, 3)
	busy.Store(true)
	e.fails("pipeline is idle", "restore", "alpha", "latest")
	if got := e.docs("alpha"); got != 3 {
		t.Fatalf("a refused restore changed the workspace: %d documents", got)
	}
	busy.Store(false)
	e.ok("restore", "alpha", "latest")
	if got := e.docs("alpha"); got != 2 {
		t.Fatalf("after the restore: %d documents", got)
	}
}

// Disaster recovery with a PostgreSQL graph beside a graph of files: a
// checkpoint of both, replicated; the primary repository lost and the
// workspace gone wrong; failover --restore brings both back, the workspace
// in one transaction; forget and prune work on its snapshots.
func TestCLIPostgresFailoverRestore(t *testing.T) {
	e := newPGEnv(t)
	e.ingest("alpha", 1, 3)
	filesDir := e.graph("files1", 2)
	e.ok("init")
	target := e.dir + "/replica"
	e.ok("targets", "add", "dr", "file://"+target+"?create=true")
	var cp struct {
		ID        string                   `json:"id"`
		Snapshots []struct{ Graph string } `json:"snapshots"`
	}
	e.jsonOut(&cp, "checkpoint", "create")
	if len(cp.Snapshots) != 2 {
		t.Fatalf("checkpoint: %+v", cp)
	}
	e.ok("replicate")
	e.ok("checkpoint", "validate", cp.ID, "--read-data")

	// The primary is lost, and a bad ingestion lands in the workspace.
	if err := os.RemoveAll(strings.TrimPrefix(e.repo, "file://")); err != nil {
		t.Fatal(err)
	}
	e.ingest("alpha", 4, 6)
	out := e.ok("failover", "--target", "dr", "--restore")
	if !strings.Contains(out, "alpha") || !strings.Contains(out, "files1") {
		t.Fatalf("failover:\n%s", out)
	}
	if got := e.docs("alpha"); got != 3 {
		t.Fatalf("after failover --restore: %d documents, want the checkpoint's 3", got)
	}
	if _, err := os.Stat(filesDir); err != nil {
		t.Fatalf("the graph of files was not restored: %v", err)
	}
	// Life goes on at the new primary: backups, forget and prune.
	e.ingest("alpha", 4, 4)
	e.ok("backup", "alpha")
	e.ok("backup", "alpha")
	e.ok("forget", "alpha", "--keep-last", "1", "--prune")
	e.ok("verify", "--read-data")
	e.ok("restore", "alpha", "latest", "--to-workspace", "alpha_after")
	if got := e.docs("alpha_after"); got != 4 {
		t.Fatalf("after forget and prune: %d documents", got)
	}
}
