package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Load replaces a workspace's rows in one transaction: BeginLoad deletes
// them from every LightRAG table, Copy loads a snapshot's tables, Commit
// makes the new state visible at once. Until then readers see the old
// state; a crash or Rollback leaves it as it was.
type Load struct {
	conn      *pgx.Conn
	tx        pgx.Tx
	workspace string
	dest      *Catalog
	// Created lists the tables the destination lacked, made from the
	// snapshot's definitions.
	Created []string
	// Removed is how many rows of the workspace each table held (tables
	// replaced whole).
	Removed map[string]int64
	// incremental are the tables a Sync may bring to the snapshot's rows
	// by their difference: the others were emptied of the workspace's
	// rows when the load began.
	incremental map[string]bool
	temps       int
}

// LoadOptions tune BeginLoad.
type LoadOptions struct {
	// Incremental leaves the workspace's rows of the snapshot's tables in
	// place, for Syncs to write only their difference, except in tables
	// tied to others by foreign keys (a graph's nodes and edges: deleting
	// a node cascades to its edges), which are replaced whole.
	Incremental bool
}

// ErrNoVector: the destination lacks the pgvector extension a table of the
// snapshot needs.
var ErrNoVector = &problem.Error{Kind: problem.Invalid, Code: "pgvector_missing",
	Msg: "the destination database lacks the pgvector extension"}

// ErrSchema: a destination table lacks a column the snapshot holds.
var ErrSchema = &problem.Error{Kind: problem.Invalid, Code: "schema_mismatch",
	Msg: "a destination table does not fit the snapshot"}

// BeginLoad starts replacing workspace's rows in the database at url with
// those of tables (a snapshot's). Tables the destination lacks are created
// from their definitions. Writers of the LightRAG tables wait until the
// load ends; readers do not.
func BeginLoad(ctx context.Context, url, workspace string, tables []repo.TableDef, opts LoadOptions) (*Load, error) {
	if err := CheckWorkspace(workspace); err != nil {
		return nil, err
	}
	conn, err := Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	l := &Load{conn: conn, workspace: workspace, Removed: map[string]int64{}, incremental: map[string]bool{}}
	if err := l.begin(ctx, url, tables, opts); err != nil {
		l.Rollback()
		return nil, err
	}
	return l, nil
}

func (l *Load) begin(ctx context.Context, url string, tables []repo.TableDef, opts LoadOptions) error {
	var err error
	if l.tx, err = l.conn.Begin(ctx); err != nil {
		return fmt.Errorf("begin loading into %s: %w", Redact(url), err)
	}
	// Wait a while for LightRAG's writes to finish, never forever.
	if _, err := l.tx.Exec(ctx, "SET LOCAL lock_timeout = '30s'"); err != nil {
		return err
	}
	cat, err := ReadCatalog(ctx, l.tx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, ok := cat.Table(t.Name); ok {
			continue
		}
		if cat.Vector == "" && usesVector(t) {
			return fmt.Errorf("table %s has vector columns and %s lacks pgvector: run CREATE EXTENSION vector there (as a superuser) and restore again: %w",
				t.Name, Redact(url), ErrNoVector)
		}
		if _, err := l.tx.Exec(ctx, t.DDL); err != nil {
			return fmt.Errorf("create table %s in %s: %w", t.Name, Redact(url), err)
		}
		l.Created = append(l.Created, t.Name)
	}
	if len(l.Created) > 0 {
		if cat, err = ReadCatalog(ctx, l.tx); err != nil {
			return err
		}
	}
	l.dest = cat
	for _, t := range tables {
		have, _ := cat.Table(t.Name)
		for _, c := range t.Columns {
			if !slices.ContainsFunc(have.Columns, func(h repo.ColumnDef) bool { return h.Name == c.Name }) {
				return fmt.Errorf("table %s of %s has no column %s, which the snapshot holds (it was taken with another LightRAG version): start that LightRAG version on the database once so it migrates the table, or restore into another database: %w",
					t.Name, Redact(url), c.Name, ErrSchema)
			}
		}
	}
	names := make([]string, len(cat.Tables))
	for i, t := range cat.Tables {
		names[i] = t.Name
	}
	if len(names) == 0 {
		return nil
	}
	if _, err := l.tx.Exec(ctx, "LOCK TABLE "+identList(names)+" IN EXCLUSIVE MODE"); err != nil {
		return fmt.Errorf("lock LightRAG's tables in %s (is LightRAG writing? stop it or wait): %w", Redact(url), err)
	}
	if opts.Incremental {
		tied := map[string]bool{}
		for _, t := range cat.Tables {
			for _, ref := range t.References {
				tied[t.Name], tied[ref] = true, true
			}
		}
		for _, t := range tables {
			l.incremental[t.Name] = !tied[t.Name]
		}
	}
	// Referencing tables first, though foreign keys cascade.
	for i := len(cat.Tables) - 1; i >= 0; i-- {
		t := cat.Tables[i]
		if l.incremental[t.Name] {
			continue
		}
		tag, err := l.tx.Exec(ctx, "DELETE FROM "+quoteIdent(t.Name)+" WHERE workspace = $1", l.workspace)
		if err != nil {
			return fmt.Errorf("remove workspace %q from %s: %w", l.workspace, t.Name, err)
		}
		l.Removed[t.Name] += tag.RowsAffected()
	}
	return nil
}

func usesVector(t repo.TableDef) bool {
	for _, c := range t.Columns {
		if strings.HasPrefix(c.Type, "vector") || strings.HasPrefix(c.Type, "halfvec") {
			return true
		}
	}
	return false
}

// Copy loads the rows r holds (COPY text, as Reader.Copy wrote them) into
// t and returns how many. Rows of another workspace are rewritten with
// WorkspaceRewriter first.
func (l *Load) Copy(ctx context.Context, t repo.TableDef, r io.Reader) (int64, error) {
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN", quoteIdent(t.Name), columnList(t.Columns))
	tag, err := l.conn.PgConn().CopyFrom(ctx, r, sql)
	if err != nil {
		return 0, fmt.Errorf("load table %s: %w", t.Name, err)
	}
	return tag.RowsAffected(), nil
}

// Fingerprints returns the fingerprint of the workspace's rows of each of
// the load's tables, as the load sees them (see Reader.Fingerprints).
func (l *Load) Fingerprints(ctx context.Context) (map[string]string, error) {
	names := make([]string, len(l.dest.Tables))
	for i, t := range l.dest.Tables {
		names[i] = t.Name
	}
	return fingerprints(ctx, l.tx, names, l.workspace)
}

// Clear deletes the workspace's rows of t (a Sync found rewriting it
// whole cheaper).
func (l *Load) Clear(ctx context.Context, t repo.TableDef) error {
	tag, err := l.tx.Exec(ctx, "DELETE FROM "+quoteIdent(t.Name)+" WHERE workspace = $1", l.workspace)
	if err != nil {
		return fmt.Errorf("remove workspace %q from %s: %w", l.workspace, t.Name, err)
	}
	l.Removed[t.Name] += tag.RowsAffected()
	return nil
}

// Incremental reports whether table name is brought to the snapshot's
// rows by a Sync (else: Copy them all, it was emptied).
func (l *Load) Incremental(name string) bool { return l.incremental[name] }

// copyOut runs a COPY ... TO STDOUT in the load's transaction and calls fn
// with each row's fields.
func (l *Load) copyOut(ctx context.Context, sql string, fn func([][]byte)) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- eachRow(pr, fn)
		pr.Close()
	}()
	_, err := l.conn.PgConn().CopyTo(ctx, pw, sql)
	pw.CloseWithError(err)
	if derr := <-done; err == nil {
		err = derr
	}
	return err
}

// deleteKeys deletes the workspace's rows of t whose key columns (named
// by cols, the workspace aside) are the rows of keys (COPY text).
func (l *Load) deleteKeys(ctx context.Context, t repo.TableDef, cols []string, keys io.Reader) error {
	l.temps++
	tmp := quoteIdent(fmt.Sprintf("graphkeep_keys_%d", l.temps))
	if _, err := l.tx.Exec(ctx, fmt.Sprintf("CREATE TEMP TABLE %s ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA",
		tmp, identList(cols), quoteIdent(t.Name))); err != nil {
		return fmt.Errorf("delete rows of %s: %w", t.Name, err)
	}
	if _, err := l.conn.PgConn().CopyFrom(ctx, keys, fmt.Sprintf("COPY %s (%s) FROM STDIN", tmp, identList(cols))); err != nil {
		return fmt.Errorf("delete rows of %s: %w", t.Name, err)
	}
	match := make([]string, len(cols))
	for i, c := range cols {
		match[i] = fmt.Sprintf("t.%s = k.%s", quoteIdent(c), quoteIdent(c))
	}
	tag, err := l.tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s t USING %s k WHERE t.workspace = $1 AND %s",
		quoteIdent(t.Name), tmp, strings.Join(match, " AND ")), l.workspace)
	if err != nil {
		return fmt.Errorf("delete rows of %s: %w", t.Name, err)
	}
	l.Removed[t.Name] += tag.RowsAffected()
	return nil
}

// Counts returns how many rows the workspace has now in each of the
// tables named, as the load sees them.
func (l *Load) Counts(ctx context.Context, names []string) (map[string]int64, error) {
	var tables []repo.TableDef
	for _, n := range names {
		if t, ok := l.dest.Table(n); ok {
			tables = append(tables, t)
		}
	}
	return counts(ctx, l.tx, tables, l.workspace)
}

// Tables are the destination's LightRAG tables.
func (l *Load) Tables() []repo.TableDef { return l.dest.Tables }

// Commit makes the loaded state visible.
func (l *Load) Commit(ctx context.Context) error {
	defer l.conn.Close(context.Background())
	if err := l.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the restore of workspace %q: %w", l.workspace, err)
	}
	return nil
}

// Rollback abandons the load; the workspace stays as it was.
func (l *Load) Rollback() {
	ctx := context.Background()
	if l.tx != nil {
		if err := l.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			_ = err // the connection is closed next; the server rolls back
		}
	}
	l.conn.Close(ctx)
}
