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
// database: a state is, per LightRAG table, how many rows the workspace
// has and the newest transaction id that wrote one of them (xmin). An
// insert or update raises that id, a delete lowers the count. It reads the
// workspace's rows' headers through the primary key's index, not their
// contents (vectors and texts stay in TOAST).
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
	names, err := strings1(ctx, c.conn, `SELECT c.relname::text FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname LIKE 'lightrag\_%'
		  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace' AND a.attnum > 0 AND NOT a.attisdropped)
		ORDER BY 1`)
	if err != nil {
		return "", fmt.Errorf("watch %q: %w", c.workspace, err)
	}
	if len(names) == 0 {
		return "", nil
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("SELECT %s, count(*), coalesce(max(xmin::text::bigint), 0) FROM %s WHERE workspace = $1",
			quoteLiteral(n), quoteIdent(n))
	}
	rows, err := c.conn.Query(ctx, strings.Join(parts, " UNION ALL "), c.workspace)
	if err != nil {
		return "", fmt.Errorf("watch %q: %w", c.workspace, err)
	}
	h := sha256.New()
	for rows.Next() {
		var name string
		var n, xmin int64
		if err := rows.Scan(&name, &n, &xmin); err != nil {
			rows.Close()
			return "", err
		}
		fmt.Fprintf(h, "%s %d %d\n", name, n, xmin)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("watch %q: %w", c.workspace, err)
	}
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}
