package postgres

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/graphkeep/graphkeep/core/repo"
)

// Catalog is what a database holds of LightRAG, as one transaction saw it.
type Catalog struct {
	Schema string
	Server string
	// Vector is pgvector's version ("" when the extension is not there).
	Vector string
	// AGEGraphs are Apache AGE's graphs (nil without AGE): LightRAG's
	// PGGraphStorage keeps a workspace's graph in one, which graphkeep
	// does not read yet.
	AGEGraphs []string
	// Tables are the lightrag_* tables with a workspace column, in load
	// order (a table after those its foreign keys reference).
	Tables []repo.TableDef
}

// querier is a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// ReadCatalog reads the LightRAG tables of the current schema (the first
// of the search path, where LightRAG creates them), their columns, keys,
// constraints and indexes.
func ReadCatalog(ctx context.Context, q querier) (*Catalog, error) {
	c := &Catalog{}
	if err := q.QueryRow(ctx, `SELECT current_schema(), current_setting('server_version'),
		coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), '')`).Scan(&c.Schema, &c.Server, &c.Vector); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	var hasAGE bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('ag_catalog.ag_graph') IS NOT NULL`).Scan(&hasAGE); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	if hasAGE {
		names, err := strings1(ctx, q, `SELECT name::text FROM ag_catalog.ag_graph ORDER BY 1`)
		if err != nil {
			return nil, fmt.Errorf("read Apache AGE's graphs: %w", err)
		}
		c.AGEGraphs = append([]string{}, names...)
	}
	rows, err := q.Query(ctx, `SELECT c.oid, c.relname::text FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname LIKE 'lightrag\_%'
		  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace' AND a.attnum > 0 AND NOT a.attisdropped)
		ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list LightRAG's tables: %w", err)
	}
	type rel struct {
		oid  uint32
		name string
	}
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.oid, &x.name)
	})
	if err != nil {
		return nil, fmt.Errorf("list LightRAG's tables: %w", err)
	}
	for _, r := range rels {
		t, err := readTable(ctx, q, r.oid, r.name)
		if err != nil {
			return nil, fmt.Errorf("read table %s: %w", r.name, err)
		}
		c.Tables = append(c.Tables, t)
	}
	c.Tables = loadOrder(c.Tables)
	return c, nil
}

// Table returns the table named name.
func (c *Catalog) Table(name string) (repo.TableDef, bool) {
	for _, t := range c.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return repo.TableDef{}, false
}

func readTable(ctx context.Context, q querier, oid uint32, name string) (repo.TableDef, error) {
	t := repo.TableDef{Name: name}
	rows, err := q.Query(ctx, `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
			coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return t, err
	}
	var cols []string
	for rows.Next() {
		var col repo.ColumnDef
		var notNull bool
		var def string
		if err := rows.Scan(&col.Name, &col.Type, &notNull, &def); err != nil {
			rows.Close()
			return t, err
		}
		t.Columns = append(t.Columns, col)
		line := "    " + quoteIdent(col.Name) + " " + col.Type
		if notNull {
			line += " NOT NULL"
		}
		if def != "" {
			line += " DEFAULT " + def
		}
		cols = append(cols, line)
	}
	if err := rows.Err(); err != nil {
		return t, err
	}
	if t.Key, err = strings1(ctx, q, `SELECT a.attname::text FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`, oid); err != nil {
		return t, err
	}
	if len(t.Key) == 0 {
		// No primary key: every column, so the order is still total.
		for _, c := range t.Columns {
			t.Key = append(t.Key, c.Name)
		}
	}
	rows, err = q.Query(ctx, `SELECT conname::text, pg_get_constraintdef(oid),
			CASE WHEN contype = 'f' THEN confrelid::regclass::text ELSE '' END
		FROM pg_constraint WHERE conrelid = $1 ORDER BY contype = 'f', conname`, oid)
	if err != nil {
		return t, err
	}
	for rows.Next() {
		var cname, def, ref string
		if err := rows.Scan(&cname, &def, &ref); err != nil {
			rows.Close()
			return t, err
		}
		cols = append(cols, "    CONSTRAINT "+quoteIdent(cname)+" "+def)
		if ref != "" && ref != name && !slices.Contains(t.References, strings.Trim(ref, `"`)) {
			t.References = append(t.References, strings.Trim(ref, `"`))
		}
	}
	if err := rows.Err(); err != nil {
		return t, err
	}
	indexes, err := strings1(ctx, q, `SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
		WHERE i.indrelid = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
		ORDER BY 1`, oid)
	if err != nil {
		return t, err
	}
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "CREATE TABLE IF NOT EXISTS %s (\n%s\n);\n", quoteIdent(name), strings.Join(cols, ",\n"))
	for _, ix := range indexes {
		ix = strings.Replace(ix, "CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
		ix = strings.Replace(ix, "CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1)
		ddl.WriteString(ix + ";\n")
	}
	t.DDL = ddl.String()
	return t, nil
}

// loadOrder sorts tables so each comes after the tables it references
// (by name otherwise).
func loadOrder(tables []repo.TableDef) []repo.TableDef {
	sort.Slice(tables, func(i, j int) bool { return tables[i].Name < tables[j].Name })
	placed := map[string]bool{}
	var out []repo.TableDef
	for len(out) < len(tables) {
		progress := false
		for _, t := range tables {
			if placed[t.Name] {
				continue
			}
			ready := true
			for _, ref := range t.References {
				if !placed[ref] && slices.ContainsFunc(tables, func(x repo.TableDef) bool { return x.Name == ref }) {
					ready = false
				}
			}
			if ready {
				out = append(out, t)
				placed[t.Name] = true
				progress = true
			}
		}
		if !progress { // a cycle: keep the rest by name
			for _, t := range tables {
				if !placed[t.Name] {
					out = append(out, t)
					placed[t.Name] = true
				}
			}
		}
	}
	return out
}

// strings1 runs a query whose rows are one text column.
func strings1(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Workspaces lists the workspaces that have rows in any of the tables,
// sorted. It walks each table's primary-key index (workspace first), one
// probe per workspace, not its rows.
func Workspaces(ctx context.Context, q querier, tables []repo.TableDef) ([]string, error) {
	seen := map[string]bool{}
	for _, t := range tables {
		tbl := quoteIdent(t.Name)
		names, err := strings1(ctx, q, `WITH RECURSIVE w(ws) AS (
				SELECT min(workspace::text) FROM `+tbl+`
				UNION ALL
				SELECT (SELECT min(workspace::text) FROM `+tbl+` WHERE workspace::text > w.ws) FROM w WHERE w.ws IS NOT NULL)
			SELECT ws FROM w WHERE ws IS NOT NULL`)
		if err != nil {
			return nil, fmt.Errorf("list the workspaces of %s: %w", t.Name, err)
		}
		for _, n := range names {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}
