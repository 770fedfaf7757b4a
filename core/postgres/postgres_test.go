package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/integration/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// newWorkspace makes a database with LightRAG's tables and returns a
// writer for workspace ws in it.
func newWorkspace(t *testing.T, ws string) *pgtest.Writer {
	t.Helper()
	srv := pgtest.Shared(t)
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

func TestReadCatalogAndRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorkspace(t, "alpha")
	if err := w.Run(ctx, 1, 3, nil); err != nil {
		t.Fatal(err)
	}
	r, err := postgres.Read(ctx, w.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := len(r.Catalog.Tables); got != 13 {
		t.Fatalf("tables: got %d, want 13", got)
	}
	wss, err := r.Workspaces(ctx)
	if err != nil || len(wss) != 1 || wss[0] != "alpha" {
		t.Fatalf("workspaces: %v %v", wss, err)
	}
	// Nodes before edges (edges reference nodes).
	var order []string
	for _, tb := range r.Catalog.Tables {
		order = append(order, tb.Name)
	}
	if strings.Index(strings.Join(order, " "), "lightrag_graph_nodes") > strings.Index(strings.Join(order, " "), "lightrag_graph_edges") {
		t.Fatalf("load order: %v", order)
	}
	tb, _ := r.Catalog.Table("lightrag_vdb_entity_bge_m3_8d")
	var buf bytes.Buffer
	n, err := r.Copy(ctx, tb, "alpha", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3*3 {
		t.Fatalf("entity vectors: %d", n)
	}
	s := lightrag.NewTableStream(lightrag.TableOf(tb.Name), postgres.ColumnNames(tb))
	s.Write(buf.Bytes(), nil)
	st := s.Close()
	if st.Problem != "" || st.Records != n || st.Keys.Count != n || st.Dim != 8 {
		t.Fatalf("validation: %+v", st)
	}
	t.Log(tb.DDL)
}

// Loading into a database that cannot take the snapshot's tables is
// refused with what is missing, before anything is written.
func TestBeginLoadRefusesWhatDoesNotFit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := pgtest.Shared(t)
	url := srv.CreateDatabase(t)
	vectors := repo.TableDef{Name: "lightrag_vdb_chunks", Key: []string{"workspace", "id"},
		Columns: []repo.ColumnDef{{Name: "id", Type: "text"}, {Name: "workspace", Type: "text"}, {Name: "content_vector", Type: "vector(8)"}},
		DDL:     `CREATE TABLE "lightrag_vdb_chunks" (id text, workspace text, content_vector vector(8), PRIMARY KEY (workspace, id));`}
	if _, err := postgres.BeginLoad(ctx, url, "w", []repo.TableDef{vectors}, postgres.LoadOptions{}); !errors.Is(err, postgres.ErrNoVector) || !strings.Contains(err.Error(), "CREATE EXTENSION vector") {
		t.Fatalf("a vector table into a database without pgvector: %v", err)
	}
	// An older table that lacks a column the snapshot holds.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE lightrag_doc_full (id text, workspace text, PRIMARY KEY (workspace, id)); INSERT INTO lightrag_doc_full VALUES ('d1', 'w')`); err != nil {
		t.Fatal(err)
	}
	docs := repo.TableDef{Name: "lightrag_doc_full", Key: []string{"workspace", "id"},
		Columns: []repo.ColumnDef{{Name: "id", Type: "text"}, {Name: "workspace", Type: "text"}, {Name: "content_hash", Type: "text"}}}
	if _, err := postgres.BeginLoad(ctx, url, "w", []repo.TableDef{docs}, postgres.LoadOptions{}); !errors.Is(err, postgres.ErrSchema) || !strings.Contains(err.Error(), "content_hash") {
		t.Fatalf("a table lacking a column: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM lightrag_doc_full").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the refused load changed the table: %d rows, %v", n, err)
	}
}
