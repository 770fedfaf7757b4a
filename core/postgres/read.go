package postgres

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/graphkeep/graphkeep/core/repo"
)

// Reader is one read-only REPEATABLE READ transaction: the catalog and
// every table it streams are one instant of the database, whatever
// LightRAG commits meanwhile.
type Reader struct {
	conn    *pgx.Conn
	tx      pgx.Tx
	Catalog *Catalog
}

// Read opens a Reader on a new connection to url.
func Read(ctx context.Context, url string) (*Reader, error) { return ReadAt(ctx, url, "") }

// ReadAt opens a Reader that sees the instant an Instant exported (its
// ID; "" for a new instant of its own).
func ReadAt(ctx context.Context, url, instant string) (*Reader, error) {
	conn, err := Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err == nil && instant != "" {
		if _, err = tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(instant)); err != nil {
			_ = tx.Rollback(context.Background())
		}
	}
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("begin a read of %s: %w", Redact(url), err)
	}
	// The transaction's instant is taken by its first statement.
	cat, err := ReadCatalog(ctx, tx)
	if err != nil {
		_ = tx.Rollback(context.Background())
		conn.Close(context.Background())
		return nil, fmt.Errorf("%s: %w", Redact(url), err)
	}
	return &Reader{conn: conn, tx: tx, Catalog: cat}, nil
}

// Close ends the transaction and the connection.
func (r *Reader) Close() {
	ctx := context.Background()
	_ = r.tx.Rollback(ctx)
	r.conn.Close(ctx)
}

// Workspaces lists the workspaces that have rows.
func (r *Reader) Workspaces(ctx context.Context) ([]string, error) {
	return Workspaces(ctx, r.tx, r.Catalog.Tables)
}

// Copy writes the rows of workspace in t to w, in primary-key order, as
// COPY's text format writes them (a row a line), and returns how many.
func (r *Reader) Copy(ctx context.Context, t repo.TableDef, workspace string, w io.Writer) (int64, error) {
	tag, err := r.conn.PgConn().CopyTo(ctx, w, copyOutSQL(t, workspace))
	if err != nil {
		return 0, fmt.Errorf("read table %s: %w", t.Name, err)
	}
	return tag.RowsAffected(), nil
}

// Fingerprints returns each table's fingerprint of the workspace's rows,
// as this transaction sees them: equal fingerprints, unchanged rows.
func (r *Reader) Fingerprints(ctx context.Context, workspace string) (map[string]string, error) {
	names := make([]string, len(r.Catalog.Tables))
	for i, t := range r.Catalog.Tables {
		names[i] = t.Name
	}
	return fingerprints(ctx, r.tx, names, workspace)
}

// Counts returns how many rows workspace has in each table.
func (r *Reader) Counts(ctx context.Context, workspace string) (map[string]int64, error) {
	return counts(ctx, r.tx, r.Catalog.Tables, workspace)
}

func counts(ctx context.Context, q querier, tables []repo.TableDef, workspace string) (map[string]int64, error) {
	out := make(map[string]int64, len(tables))
	for _, t := range tables {
		var n int64
		if err := q.QueryRow(ctx, `SELECT count(*) FROM `+quoteIdent(t.Name)+` WHERE workspace = $1`, workspace).Scan(&n); err != nil {
			return nil, fmt.Errorf("count the rows of %s: %w", t.Name, err)
		}
		out[t.Name] = n
	}
	return out, nil
}

// copyOutSQL selects a workspace's rows in key order. COPY takes no
// parameters: the workspace is a quoted literal.
func copyOutSQL(t repo.TableDef, workspace string) string {
	return fmt.Sprintf("COPY (SELECT %s FROM %s WHERE workspace = %s ORDER BY %s) TO STDOUT",
		columnList(t.Columns), quoteIdent(t.Name), quoteLiteral(workspace), identList(t.Key))
}

func columnList(cols []repo.ColumnDef) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return identList(names)
}

func identList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return strings.Join(q, ", ")
}

// ColumnNames are a table's column names in order.
func ColumnNames(t repo.TableDef) []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// Empty reports whether workspace loc has no rows in any LightRAG table
// (or the database has none).
func Empty(ctx context.Context, loc Location) (bool, error) {
	rd, err := Read(ctx, loc.URL)
	if err != nil {
		return false, err
	}
	defer rd.Close()
	counts, err := rd.Counts(ctx, loc.Workspace)
	if err != nil {
		return false, err
	}
	for _, n := range counts {
		if n > 0 {
			return false, nil
		}
	}
	return true, nil
}

// ListWorkspaces lists the LightRAG workspaces of the database at url
// without reading the whole catalog: the tables' names, then their
// primary-key indexes.
func ListWorkspaces(ctx context.Context, url string) ([]string, error) {
	conn, err := Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	names, err := tableNames(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("list LightRAG's tables in %s: %w", Redact(url), err)
	}
	tables := make([]repo.TableDef, len(names))
	for i, n := range names {
		tables[i] = repo.TableDef{Name: n}
	}
	return Workspaces(ctx, conn, tables)
}

// Instant is one moment of a database that several transactions read
// together: a read-only REPEATABLE READ transaction that exported its
// snapshot (pg_export_snapshot). It must stay open until every Reader
// that imports it (ReadAt with its ID) has begun.
type Instant struct {
	ID   string
	conn *pgx.Conn
	tx   pgx.Tx
}

// ExportInstant takes an instant of the database at url.
func ExportInstant(ctx context.Context, url string) (*Instant, error) {
	conn, err := Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	var id string
	if err == nil {
		err = tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id)
	}
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("take an instant of %s: %w", Redact(url), err)
	}
	return &Instant{ID: id, conn: conn, tx: tx}, nil
}

// Close ends the exporting transaction.
func (i *Instant) Close() {
	_ = i.tx.Rollback(context.Background())
	i.conn.Close(context.Background())
}
