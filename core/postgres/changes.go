package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Changes detects writes to a workspace, which inotify cannot see in a
// database: a state is every LightRAG table's fingerprint of the
// workspace's rows (see fingerprints).
type Changes struct {
	conn      *pgx.Conn
	workspace string
}

// WatchChanges opens a connection to url for polling workspace.
func WatchChanges(ctx context.Context, url, workspace string) (*Changes, error) {
	conn, err := Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	return &Changes{conn: conn, workspace: workspace}, nil
}

// Close closes the connection.
func (c *Changes) Close() { c.conn.Close(context.Background()) }

// State returns the workspace's current state; it differs from an earlier
// one exactly when a row of the workspace was written or deleted since
// (or a LightRAG table appeared or went).
func (c *Changes) State(ctx context.Context) (string, error) {
	names, err := tableNames(ctx, c.conn)
	if err != nil {
		return "", fmt.Errorf("watch %q: %w", c.workspace, err)
	}
	if len(names) == 0 {
		return "", nil
	}
	prints, err := fingerprints(ctx, c.conn, names, c.workspace)
	if err != nil {
		return "", fmt.Errorf("watch %q: %w", c.workspace, err)
	}
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s %s\n", n, prints[n])
	}
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// fingerprints returns, per table, a fingerprint of the workspace's rows:
// how many there are and the sum of a 64-bit hash of each row version's
// location and the transaction that wrote it (ctid, xmin). Every insert,
// update or delete changes it (a new row version always has a new
// location or a new transaction id; freezing keeps xmin as it reads);
// VACUUM FULL or CLUSTER changes it too, which only costs a needless
// read. It reads row headers, never the contents (vectors and texts stay
// in TOAST): one query for all the tables.
func fingerprints(ctx context.Context, q querier, tables []string, workspace string) (map[string]string, error) {
	if len(tables) == 0 {
		return map[string]string{}, nil
	}
	parts := make([]string, len(tables))
	for i, n := range tables {
		parts[i] = fmt.Sprintf("SELECT %s, count(*), coalesce(sum(hashtextextended(ctid::text || ':' || xmin::text, 0)), 0)::text FROM %s WHERE workspace = $1",
			quoteLiteral(n), quoteIdent(n))
	}
	rows, err := q.Query(ctx, strings.Join(parts, " UNION ALL "), workspace)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(tables))
	for rows.Next() {
		var name, sum string
		var n int64
		if err := rows.Scan(&name, &n, &sum); err != nil {
			rows.Close()
			return nil, err
		}
		out[name] = fmt.Sprintf("%d:%s", n, sum)
	}
	return out, rows.Err()
}

// tableNames lists LightRAG's tables: lightrag_* tables of the current
// schema with a workspace column.
func tableNames(ctx context.Context, q querier) ([]string, error) {
	return strings1(ctx, q, `SELECT c.relname::text FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname LIKE 'lightrag\_%'
		  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace' AND a.attnum > 0 AND NOT a.attisdropped)
		ORDER BY 1`)
}
