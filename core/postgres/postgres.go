// Package postgres reads and writes LightRAG workspaces kept in PostgreSQL
// by LightRAG's PGKVStorage, PGVectorStorage, PGDocStatusStorage and
// PGTableGraphStorage: the lightrag_* tables of a database, each with a
// workspace column. It reads a workspace in one read-only REPEATABLE READ
// transaction (one instant of every table), streams each table's rows with
// COPY in primary-key order, and loads a workspace in one transaction that
// replaces its rows (a reader sees the old state or the new, never a mix).
// Identifiers and workspace names are always quoted, never pasted in.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/graphkeep/graphkeep/core/problem"
)

// Location is one workspace of one database.
type Location struct {
	// URL is the connection URL without the workspace parameter. It may
	// hold a password: print Database, never URL.
	URL       string
	Workspace string
}

// Database is the URL without its password, fit for logs and manifests.
func (l Location) Database() string { return Redact(l.URL) }

// String is the redacted URL with the workspace.
func (l Location) String() string {
	return fmt.Sprintf("workspace %q of %s", l.Workspace, l.Database())
}

// IsURL reports whether s is a PostgreSQL connection URL.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// ParseURL splits a connection URL into the database URL and the
// workspace its workspace parameter names ("" when it names none). The
// rest follows libpq: user, password, host, port, dbname, sslmode and the
// other parameters, with PGPASSWORD, PGPASSFILE and the other PG*
// variables filling what the URL leaves out.
func ParseURL(raw string) (Location, error) {
	if !IsURL(raw) {
		return Location{}, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "%q is not a PostgreSQL URL: write postgres://USER@HOST:PORT/DATABASE (the password from PGPASSWORD or ~/.pgpass)", Redact(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "PostgreSQL URL %s does not parse: %v", Redact(raw), redactErr(err, raw))
	}
	q := u.Query()
	ws := q.Get("workspace")
	q.Del("workspace")
	u.RawQuery = q.Encode()
	if _, err := pgx.ParseConfig(u.String()); err != nil {
		return Location{}, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "PostgreSQL URL %s: %v", Redact(raw), redactErr(err, raw))
	}
	return Location{URL: u.String(), Workspace: ws}, nil
}

// Redact returns a PostgreSQL URL with its password replaced by xxxxx.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.Index(raw, "@"); i > 0 && IsURL(raw) {
			return raw[:strings.Index(raw, "://")+3] + "xxxxx" + raw[i:]
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// ErrConnect: the database could not be reached or refused the login.
var ErrConnect = errors.New("cannot connect to PostgreSQL")

// Connect opens a connection to the database at url (libpq conventions).
// Its errors name the database without the password.
func Connect(ctx context.Context, rawURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "PostgreSQL URL %s: %v", Redact(rawURL), redactErr(err, rawURL))
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "graphkeep"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(rawURL, cfg, err)
	}
	return conn, nil
}

func connectError(rawURL string, cfg *pgx.ConnConfig, err error) error {
	kind, hint := problem.Unreachable, "check that the server runs and the host and port are right"
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			kind, hint = problem.Denied, "check the user and password (the URL, PGPASSWORD or PGPASSFILE)"
		case "3D000":
			kind, hint = problem.NotFound, "check the database name"
		}
	}
	return &problem.Error{Kind: kind, Code: "postgres_unreachable", Object: Redact(rawURL),
		Msg: fmt.Sprintf("%v %s as user %q: %v; %s", ErrConnect, Redact(rawURL), cfg.User, redactErr(err, rawURL), hint), Err: ErrConnect}
}

// redactErr is err's message with any password of rawURL masked.
func redactErr(err error, rawURL string) string {
	msg := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// quoteLiteral quotes s as an SQL string literal (standard conforming
// strings: only the quote is doubled). COPY takes no parameters, so the
// workspace it selects is written as a literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// quoteIdent quotes an identifier.
func quoteIdent(parts ...string) string {
	return pgx.Identifier(parts).Sanitize()
}

// CheckWorkspace refuses a workspace name PostgreSQL cannot store.
func CheckWorkspace(ws string) error {
	if strings.ContainsRune(ws, 0) {
		return problem.Errorf(problem.Invalid, problem.NoRemedy, ws, "workspace name %q holds a NUL byte, which PostgreSQL cannot store", ws)
	}
	return nil
}

// WorkspaceURL is rawURL without its password, naming workspace ws: what
// --graph ID=... takes for one workspace.
func WorkspaceURL(rawURL, ws string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Redact(rawURL)
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	q.Del("password")
	q.Set("workspace", ws)
	u.RawQuery = q.Encode()
	return u.String()
}
