package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/integration/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// pgWorkspace makes a database with LightRAG's tables and a writer for
// workspace ws in it.
func pgWorkspace(t *testing.T, srv *pgtest.Server, ws string) *pgtest.Writer {
	t.Helper()
	url := srv.CreateDatabase(t)
	schema, note, err := pgtest.Create(context.Background(), url, pgtest.Schema{Model: "bge_m3", Dim: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(note)
	w := &pgtest.Writer{URL: url, Workspace: ws, Schema: schema}
	t.Cleanup(w.Close)
	return w
}

func pgSource(graph, url, ws string) backup.Source {
	return backup.Source{Graph: graph, Postgres: &postgres.Location{URL: url, Workspace: ws}}
}

// pgQuery runs a query returning one int64.
func pgQuery(t *testing.T, url, sql string, args ...any) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
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

func docs(t *testing.T, url, ws string) int64 {
	return pgQuery(t, url, "SELECT count(*) FROM lightrag_doc_full WHERE workspace = $1", ws)
}

func TestPostgresBackupRestoreCloneAndOtherDatabase(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	w := pgWorkspace(t, srv, "alpha")
	if err := w.Run(ctx, 1, 5, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := newRepo(t, "")
	res, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if got, want := m.State(), repo.StateConsistent; got != want {
		t.Fatalf("state: got %s, want %s (%+v)", got, want, m.Consistency)
	}
	if got := m.LightRAG; got.Docs != 5 || got.Nodes != 15 || got.Edges != 14 || got.Chunks != 10 {
		t.Fatalf("counts: %+v", got)
	}
	if got := len(m.Tables()); got != 13 || m.Totals.Tables != 13 {
		t.Fatalf("tables: %d (totals %d)", got, m.Totals.Tables)
	}
	for _, st := range m.Stores {
		if st.In != "postgres" {
			t.Fatalf("store %+v not in postgres", st)
		}
	}
	if strings.Contains(m.Postgres.Database, srv.Password) {
		t.Fatalf("the manifest holds the password: %s", m.Postgres.Database)
	}
	// A second backup of the same state stores nothing new.
	again, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Manifest.Totals.AddedBytes != 0 || again.ReusedFiles != 13 || !again.Manifest.LightRAG.Equal(m.LightRAG) || again.Manifest.State() != repo.StateConsistent {
		t.Fatalf("no-change backup added %d bytes, reused %d tables unread, %+v %s", again.Manifest.Totals.AddedBytes, again.ReusedFiles, again.Manifest.LightRAG, again.Manifest.State())
	}
	// One row of one table changes: only that table is read again.
	if got := pgQuery(t, w.URL, "WITH u AS (UPDATE lightrag_llm_cache SET return_value = 'changed' WHERE workspace = 'alpha' AND id IN (SELECT id FROM lightrag_llm_cache WHERE workspace = 'alpha' LIMIT 1) RETURNING 1) SELECT count(*) FROM u"); got != 1 {
		t.Fatalf("updated %d rows", got)
	}
	one, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if one.ReusedFiles != 12 || one.Manifest.Totals.AddedBytes == 0 {
		t.Fatalf("after one row changed: %d tables reused, %d bytes added", one.ReusedFiles, one.Manifest.Totals.AddedBytes)
	}

	// Two more documents, then back to the snapshot in place.
	if err := w.Run(ctx, 6, 7, nil); err != nil {
		t.Fatal(err)
	}
	plan, err := backup.PlanPostgres(ctx, r, m.Ref(), postgres.Location{URL: w.URL, Workspace: "alpha"}, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var removed, changed int64
	for _, d := range plan.Diff {
		removed += d.Removed
		changed += d.Changed
		if d.Table == "lightrag_doc_full" && (d.Removed != 2 || d.Added != 0 || d.Changed != 0 || d.Same != 5) {
			t.Fatalf("dry run of lightrag_doc_full: %+v", d)
		}
	}
	if removed == 0 || changed == 0 {
		t.Fatalf("dry run: %+v", plan.Diff)
	}
	if got := docs(t, w.URL, "alpha"); got != 7 {
		t.Fatalf("the dry run changed the workspace: %d documents", got)
	}
	out, err := backup.RestorePostgres(ctx, r, m.Ref(), postgres.Location{URL: w.URL, Workspace: "alpha"}, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := docs(t, w.URL, "alpha"); got != 5 || out.Rows == 0 {
		t.Fatalf("after the restore: %d documents, %d rows loaded", got, out.Rows)
	}
	// Two documents of seven to undo: the rows that did not change stay.
	for _, tl := range out.Tables {
		if tl.Table == "lightrag_doc_full" && (tl.Kept != 5 || tl.Loaded != 0 || tl.Replaced != 2) {
			t.Fatalf("lightrag_doc_full: %+v, want 5 kept, 2 deleted", tl)
		}
	}
	back, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !back.Manifest.LightRAG.Equal(m.LightRAG) || back.Manifest.State() != repo.StateConsistent {
		t.Fatalf("restored state: %+v %s", back.Manifest.LightRAG, back.Manifest.State())
	}

	// A clone in another workspace leaves the first alone.
	if _, err := backup.RestorePostgres(ctx, r, m.Ref(), postgres.Location{URL: w.URL, Workspace: "alpha_copy"}, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := docs(t, w.URL, "alpha_copy"); got != 5 {
		t.Fatalf("clone: %d documents", got)
	}
	clone, err := backup.Create(ctx, r, pgSource("alpha_copy", w.URL, "alpha_copy"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !clone.Manifest.LightRAG.Equal(m.LightRAG) || clone.Manifest.State() != repo.StateConsistent {
		t.Fatalf("clone: %+v %s", clone.Manifest.LightRAG, clone.Manifest.State())
	}

	// Another database, without LightRAG's tables: they are created.
	other := srv.CreateDatabase(t)
	res2, err := backup.RestorePostgres(ctx, r, m.Ref(), postgres.Location{URL: other, Workspace: "alpha"}, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Created) != 13 {
		t.Fatalf("created %v", res2.Created)
	}
	if got := docs(t, other, "alpha"); got != 5 {
		t.Fatalf("other database: %d documents", got)
	}
	if got := pgQuery(t, other, "SELECT count(*) FROM lightrag_graph_edges e JOIN lightrag_graph_nodes n ON n.workspace = e.workspace AND n.id = e.src_id"); got != 14 {
		t.Fatalf("other database: %d edges with their nodes", got)
	}
}

func TestPostgresHostileWorkspaceNames(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	for _, ws := range []string{`x'); DROP TABLE lightrag_doc_full; --`, "tab\there\nnew\\line \"q\" $$ %s é"} {
		w := pgWorkspace(t, srv, ws)
		if err := w.Run(ctx, 1, 2, nil); err != nil {
			t.Fatal(err)
		}
		r, _ := newRepo(t, "")
		res, err := backup.Create(ctx, r, pgSource("hostile", w.URL, ws), backup.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Manifest.State() != repo.StateConsistent || res.Manifest.LightRAG.Docs != 2 {
			t.Fatalf("%q: %s %+v", ws, res.Manifest.State(), res.Manifest.LightRAG)
		}
		clone := ws + "'copy"
		if _, err := backup.RestorePostgres(ctx, r, res.Manifest.Ref(), postgres.Location{URL: w.URL, Workspace: clone}, backup.RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := docs(t, w.URL, clone); got != 2 {
			t.Fatalf("clone %q: %d documents", clone, got)
		}
		if got := docs(t, w.URL, ws); got != 2 {
			t.Fatalf("%q: %d documents", ws, got)
		}
	}
}

func TestPostgresErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	w := pgWorkspace(t, srv, "alpha")
	if err := w.Run(ctx, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := newRepo(t, "")
	wrong := strings.Replace(w.URL, srv.Password, "not-the-password", 1)
	_, err := backup.Create(ctx, r, pgSource("alpha", wrong, "alpha"), backup.Options{})
	if err == nil || problem.KindOf(err) != problem.Denied || strings.Contains(err.Error(), "not-the-password") || !strings.Contains(err.Error(), "password") {
		t.Fatalf("wrong password: %v (kind %s)", err, problem.KindOf(err))
	}
	_, err = backup.Create(ctx, r, pgSource("beta", w.URL, "beta"), backup.Options{})
	if !errors.Is(err, backup.ErrNoWorkspace) || !strings.Contains(err.Error(), "alpha") {
		t.Fatalf("unknown workspace: %v", err)
	}
	empty := srv.CreateDatabase(t)
	_, err = backup.Create(ctx, r, pgSource("alpha", empty, "alpha"), backup.Options{})
	if !errors.Is(err, backup.ErrNoWorkspace) || !strings.Contains(err.Error(), "no LightRAG tables") {
		t.Fatalf("no tables: %v", err)
	}
}

func TestPostgresGraphElsewhereIsPartial(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	w := pgWorkspace(t, srv, "alpha")
	if err := w.Run(ctx, 1, 3, nil); err != nil {
		t.Fatal(err)
	}
	// The graph moves to Apache AGE (as PGGraphStorage keeps it).
	conn, err := pgx.Connect(ctx, w.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		"DELETE FROM lightrag_graph_nodes",
		"CREATE SCHEMA ag_catalog",
		"CREATE TABLE ag_catalog.ag_graph (name name, namespace regnamespace)",
		"INSERT INTO ag_catalog.ag_graph VALUES ('alpha_chunk_entity_relation', 'public')",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := newRepo(t, "")
	res, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{MaxWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if m.State() != repo.StatePartial || m.Consistency.Consistent {
		t.Fatalf("state %s, consistency %+v", m.State(), m.Consistency)
	}
	missing := m.Missing()
	if len(missing) != 1 || missing[0].Kind != repo.StoreGraph || !strings.Contains(missing[0].Detail, "Apache AGE") || !strings.Contains(missing[0].Detail, "alpha_chunk_entity_relation") {
		t.Fatalf("missing: %+v", missing)
	}
	for _, iv := range m.Consistency.Invariants {
		if !iv.Holds {
			t.Fatalf("an invariant of the stores held does not hold: %+v", iv)
		}
	}
}

// A reader never sees a mix of the old and the new state while a restore
// replaces the workspace.
func TestPostgresRestoreIsAtomicForReaders(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	w := pgWorkspace(t, srv, "alpha")
	w.ContentBytes = 20000
	if err := w.Run(ctx, 1, 20, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := newRepo(t, "")
	res, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(ctx, 21, 30, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, w.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	type state struct{ docs, chunks, nodes int64 }
	old, snap := state{30, 60, 90}, state{20, 40, 60}
	var seen sync.Map
	var reads atomic.Int64
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				readerDone <- nil
				return
			default:
			}
			var s state
			// One statement: one snapshot of every table, as LightRAG's
			// queries see them.
			if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM lightrag_doc_full WHERE workspace = 'alpha'),
				(SELECT count(*) FROM lightrag_doc_chunks WHERE workspace = 'alpha'),
				(SELECT count(*) FROM lightrag_graph_nodes WHERE workspace = 'alpha')`).Scan(&s.docs, &s.chunks, &s.nodes); err != nil {
				readerDone <- err
				return
			}
			seen.Store(s, true)
			reads.Add(1)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for reads.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := backup.RestorePostgres(ctx, r, res.Manifest.Ref(), postgres.Location{URL: w.URL, Workspace: "alpha"}, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	after := reads.Load()
	for reads.Load() < after+5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	seen.Range(func(k, _ any) bool {
		if s := k.(state); s != old && s != snap {
			t.Errorf("a reader saw a mix: %+v (old %+v, snapshot %+v)", s, old, snap)
		}
		return true
	})
	if _, ok := seen.Load(snap); !ok {
		t.Fatalf("the reader never saw the restored state (%d reads)", reads.Load())
	}
}

// generations returns, per stamped table, the newest generation among the
// workspace's rows.
func generations(t *testing.T, url, ws string, schema pgtest.Schema) map[string]int64 {
	t.Helper()
	chunks, entities, relations := schema.VectorTables()
	stamped := map[string]string{
		"lightrag_doc_full":    "content",
		"lightrag_doc_chunks":  "content",
		"lightrag_doc_status":  "content_summary",
		"lightrag_llm_cache":   "return_value",
		chunks:                 "content",
		entities:               "content",
		relations:              "content",
		"lightrag_graph_nodes": "properties->>'description'",
		"lightrag_graph_edges": "properties->>'description'",
	}
	out := map[string]int64{}
	for table, col := range stamped {
		out[table] = pgQuery(t, url, "SELECT coalesce(max(substring("+col+" from '^g([0-9]+) ')::bigint), 0) FROM "+table+" WHERE workspace = $1", ws)
	}
	return out
}

// Backups taken while LightRAG's statement runs go on: each snapshot is
// one instant, consistent exactly when it holds whole documents only.
func TestPostgresBackupsWhileWriting(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	w := pgWorkspace(t, srv, "live")
	w.Pace = time.Millisecond
	if err := w.Run(ctx, 1, 2, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := newRepo(t, "")
	writeCtx, stopWriting := context.WithCancel(ctx)
	written := make(chan error, 1)
	var rests atomic.Bool
	rests.Store(true)
	go func() {
		// Documents back to back, with a rest now and then (first), then
		// without (a bulk import).
		written <- w.Run(writeCtx, 3, 100000, func(g int) {
			if g%3 == 0 && rests.Load() {
				select {
				case <-writeCtx.Done():
				case <-time.After(300 * time.Millisecond): // the writer's pace
				}
			}
		})
	}()
	states := map[string]int{}
	for i := 0; i < 16; i++ {
		opts := backup.Options{MaxWait: 2 * time.Second}
		if i >= 8 {
			rests.Store(false)
			opts.MaxWait = 300 * time.Millisecond
		}
		res, err := backup.Create(ctx, r, pgSource("live", w.URL, "live"), opts)
		if err != nil {
			t.Fatal(err)
		}
		m := res.Manifest
		states[m.State()]++
		clone := "check" + m.ID
		if _, err := backup.RestorePostgres(ctx, r, m.Ref(), postgres.Location{URL: w.URL, Workspace: clone}, backup.RestoreOptions{AllowNotGood: true}); err != nil {
			t.Fatal(err)
		}
		gens := generations(t, w.URL, clone, w.Schema)
		same := true
		for _, g := range gens {
			if g != gens["lightrag_doc_full"] {
				same = false
			}
		}
		docsIn := docs(t, w.URL, clone)
		processed := pgQuery(t, w.URL, "SELECT count(*) FROM lightrag_doc_status WHERE workspace = $1 AND status = 'processed'", clone)
		// At rest: every document written is processed, and every row is
		// of the newest document or older.
		atRest := same && docsIn == gens["lightrag_doc_full"] && processed == docsIn
		switch m.State() {
		case repo.StateConsistent:
			if !atRest {
				t.Fatalf("snapshot %s is consistent but holds a torn state: %d documents (%d processed), generations %v", m.ID, docsIn, processed, gens)
			}
		case repo.StateMidIngestion, repo.StateResumable:
			if atRest {
				t.Fatalf("snapshot %s holds whole documents (%d) but is %s: %+v", m.ID, docsIn, m.State(), m.Consistency)
			}
		default:
			t.Fatalf("snapshot %s: state %s", m.ID, m.State())
		}
	}
	stopWriting()
	if err := <-written; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	t.Logf("states: %v; %d statements written", states, w.Statements())
	if states[repo.StateConsistent] == 0 || states[repo.StateConsistent] == 16 {
		t.Fatalf("states %v: want consistent ones while the writer rested, others while it did not", states)
	}
}

// The server going away in the middle of a backup fails it, clearly, and
// commits nothing; the next backup after it is back succeeds.
func TestPostgresServerStoppedMidBackup(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts its own server")
	}
	srv, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNoPostgres) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Remove()
	ctx := context.Background()
	w := pgWorkspace(t, srv, "alpha")
	w.ContentBytes = 50000
	if err := w.Run(ctx, 1, 30, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, _ := newRepo(t, "")
	var once sync.Once
	_, err = backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{Progress: func(p backup.Progress) {
		if p.Bytes > 0 {
			once.Do(srv.Stop)
		}
	}})
	if err == nil {
		t.Fatal("a backup whose server stopped succeeded")
	}
	if strings.Contains(err.Error(), srv.Password) {
		t.Fatalf("the error holds the password: %v", err)
	}
	t.Logf("error: %v", err)
	if refs, _ := r.ListSnapshots(ctx, "alpha"); len(refs) != 0 {
		t.Fatalf("a snapshot was committed: %v", refs)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	res, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.LightRAG.Docs != 30 || res.Manifest.State() != repo.StateConsistent {
		t.Fatalf("after the restart: %+v %s", res.Manifest.LightRAG, res.Manifest.State())
	}
}

// A graph split between PostgreSQL (kv, vectors, document status) and its
// directory (the graph as NetworkX's GraphML, as LightRAG keeps it with
// NetworkXStorage): one snapshot holds both, the invariants span them,
// and a restore puts each part back where it goes.
func TestPostgresSplitGraph(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	w := pgWorkspace(t, srv, "split")
	if err := w.Run(ctx, 1, 3, nil); err != nil {
		t.Fatal(err)
	}
	// Move the graph into a GraphML file, as NetworkXStorage keeps it.
	conn, err := pgx.Connect(ctx, w.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var graphml strings.Builder
	graphml.WriteString(`<?xml version='1.0' encoding='utf-8'?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="d0" for="node" attr.name="entity_id" attr.type="string"/><graph edgedefault="undirected">
`)
	rows, err := conn.Query(ctx, "SELECT id FROM lightrag_graph_nodes WHERE workspace = 'split' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		graphml.WriteString(`<node id="` + id + `"><data key="d0">` + id + "</data></node>\n")
	}
	rows, err = conn.Query(ctx, "SELECT src_id || '|' || tgt_id FROM lightrag_graph_edges WHERE workspace = 'split'")
	if err != nil {
		t.Fatal(err)
	}
	edges, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edges {
		a, b, _ := strings.Cut(e, "|")
		graphml.WriteString(`<edge source="` + a + `" target="` + b + `"/>` + "\n")
	}
	graphml.WriteString("</graph></graphml>\n")
	if _, err := conn.Exec(ctx, "DELETE FROM lightrag_graph_nodes WHERE workspace = 'split'"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "split")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "graph_chunk_entity_relation.graphml"), []byte(graphml.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	r, _ := newRepo(t, "")
	src := pgSource("split", w.URL, "split")
	src.Dir = dir
	res, err := backup.Create(ctx, r, src, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if m.State() != repo.StateConsistent || m.SourceKind() != "postgres+files" || m.LightRAG.Nodes != 9 || m.LightRAG.Docs != 3 {
		t.Fatalf("split snapshot: %s %s %+v %+v", m.State(), m.SourceKind(), m.LightRAG, m.Consistency)
	}
	for _, st := range m.Stores {
		if want := map[string]string{repo.StoreGraph: "files"}[st.Kind]; want != "" && st.In != want || want == "" && st.In != "postgres" {
			t.Fatalf("store %+v", st)
		}
	}
	// Without the directory the same workspace is partial.
	alone, err := backup.Create(ctx, r, pgSource("split", w.URL, "split"), backup.Options{MaxWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if alone.Manifest.State() != repo.StatePartial || !strings.Contains(alone.Manifest.Missing()[0].Detail, "directory") {
		t.Fatalf("without its directory: %s %+v", alone.Manifest.State(), alone.Manifest.Missing())
	}
	// Restore both parts elsewhere.
	to := filepath.Join(t.TempDir(), "copy")
	out, err := backup.RestoreGraph(ctx, r, m.Ref(), to, &postgres.Location{URL: w.URL, Workspace: "split_copy"}, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Files != 1 || docs(t, w.URL, "split_copy") != 3 {
		t.Fatalf("restored %d files, %d documents", out.Files, docs(t, w.URL, "split_copy"))
	}
	got, err := os.ReadFile(filepath.Join(to, "graph_chunk_entity_relation.graphml"))
	if err != nil || string(got) != graphml.String() {
		t.Fatalf("restored GraphML differs: %v", err)
	}
}

// A checkpoint reads the workspaces of one database at one instant: a
// transaction that writes to both is in both snapshots or in neither.
func TestPostgresWorkspacesOfACheckpointShareAnInstant(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	w := pgWorkspace(t, srv, "a")
	if err := w.Run(ctx, 1, 2, nil); err != nil {
		t.Fatal(err)
	}
	b := &pgtest.Writer{URL: w.URL, Workspace: "b", Schema: w.Schema}
	defer b.Close()
	if err := b.Run(ctx, 1, 2, nil); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"INSERT INTO lightrag_llm_cache (workspace, id, return_value) VALUES ('a', 'counter', '0'), ('b', 'counter', '0')",
	} {
		pgQuery(t, w.URL, "WITH x AS ("+sql+" RETURNING 1) SELECT count(*) FROM x")
	}
	// Both counters move together, in one transaction each time.
	stop := make(chan struct{})
	done := make(chan error, 1)
	var bumps atomic.Int64
	go func() {
		conn, err := pgx.Connect(ctx, w.URL)
		if err != nil {
			done <- err
			return
		}
		defer conn.Close(ctx)
		for n := 1; ; n++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := conn.Exec(ctx, "UPDATE lightrag_llm_cache SET return_value = $1 WHERE id = 'counter'", fmt.Sprint(n)); err != nil {
				done <- err
				return
			}
			bumps.Add(1)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for bumps.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	r, _ := newRepo(t, "")
	outs := backup.CreateAll(ctx, r, []backup.Source{pgSource("a", w.URL, "a"), pgSource("b", w.URL, "b")}, backup.Options{OneInstant: true})
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	counters := map[string]int64{}
	for _, o := range outs {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		clone := o.Graph + "_check"
		if _, err := backup.RestorePostgres(ctx, r, o.Result.Manifest.Ref(), postgres.Location{URL: w.URL, Workspace: clone}, backup.RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		counters[o.Graph] = pgQuery(t, w.URL, "SELECT return_value::bigint FROM lightrag_llm_cache WHERE workspace = $1 AND id = 'counter'", clone)
	}
	if counters["a"] != counters["b"] || counters["a"] == 0 {
		t.Fatalf("the checkpoint's snapshots saw the counters at %v: not one instant", counters)
	}
	t.Logf("both snapshots at counter %d of %d", counters["a"], bumps.Load())
}

// A restore in place that changes most rows replaces the tables whole;
// one that changes few writes only those rows. Both end as the snapshot.
func TestPostgresRestoreInPlaceWritesTheDifferenceOrReplaces(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t)
	ctx := context.Background()
	w := pgWorkspace(t, srv, "alpha")
	if err := w.Run(ctx, 1, 2, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := newRepo(t, "")
	small, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(ctx, 3, 12, nil); err != nil {
		t.Fatal(err)
	}
	big, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	loc := postgres.Location{URL: w.URL, Workspace: "alpha"}
	table := func(res *backup.PostgresResult, name string) backup.TableLoad {
		for _, tl := range res.Tables {
			if tl.Table == name {
				return tl
			}
		}
		t.Fatalf("no table %s in %+v", name, res.Tables)
		return backup.TableLoad{}
	}
	// 12 documents back to 2: most rows go, so the tables are replaced.
	res, err := backup.RestorePostgres(ctx, r, small.Manifest.Ref(), loc, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tl := table(res, "lightrag_doc_full"); tl.Kept != 0 || tl.Loaded != 2 || tl.Replaced != 12 || docs(t, w.URL, "alpha") != 2 {
		t.Fatalf("back to 2 documents: %+v", tl)
	}
	// 2 back to 12: most rows are new, loaded; then one document changes
	// and the restore writes only it back.
	if _, err := backup.RestorePostgres(ctx, r, big.Manifest.Ref(), loc, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	pgQuery(t, w.URL, "WITH u AS (UPDATE lightrag_doc_full SET content = 'changed' WHERE workspace = 'alpha' AND id IN (SELECT id FROM lightrag_doc_full WHERE workspace = 'alpha' ORDER BY id LIMIT 1) RETURNING 1) SELECT count(*) FROM u")
	res, err = backup.RestorePostgres(ctx, r, big.Manifest.Ref(), loc, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tl := table(res, "lightrag_doc_full"); tl.Kept != 11 || tl.Loaded != 1 || tl.Replaced != 1 {
		t.Fatalf("one changed document: %+v", tl)
	}
	if got := pgQuery(t, w.URL, "SELECT count(*) FROM lightrag_doc_full WHERE workspace = 'alpha' AND content = 'changed'"); got != 0 || docs(t, w.URL, "alpha") != 12 {
		t.Fatalf("after the restore: %d changed rows left, %d documents", got, docs(t, w.URL, "alpha"))
	}
	again, err := backup.Create(ctx, r, pgSource("alpha", w.URL, "alpha"), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Manifest.LightRAG.Equal(big.Manifest.LightRAG) || again.Manifest.State() != repo.StateConsistent {
		t.Fatalf("restored state: %+v %s", again.Manifest.LightRAG, again.Manifest.State())
	}
	// Back to a snapshot of these very rows: the tables untouched since
	// are not even read.
	pgQuery(t, w.URL, "WITH u AS (UPDATE lightrag_llm_cache SET return_value = 'changed' WHERE workspace = 'alpha' AND id IN (SELECT id FROM lightrag_llm_cache WHERE workspace = 'alpha' ORDER BY id LIMIT 1) RETURNING 1) SELECT count(*) FROM u")
	res, err = backup.RestorePostgres(ctx, r, again.Manifest.Ref(), loc, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range res.Tables {
		def, _ := again.Manifest.Postgres.Table(tl.Table)
		switch {
		case tl.Table == "lightrag_llm_cache":
			if tl.Loaded != 1 || tl.Replaced != 1 {
				t.Fatalf("the changed table: %+v", tl)
			}
		case tl.Table == "lightrag_graph_nodes" || tl.Table == "lightrag_graph_edges":
			// tied by foreign keys: replaced whole
		case tl.Kept != def.Rows || tl.Loaded != 0 || tl.Replaced != 0:
			t.Fatalf("an untouched table was written: %+v (%d rows)", tl, def.Rows)
		}
	}
}
