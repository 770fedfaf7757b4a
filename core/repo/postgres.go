package repo

import "strings"

// PostgresSource is where a snapshot's tables came from and what they
// were: enough to load them into the same database, another workspace of
// it, or another database that lacks the tables.
type PostgresSource struct {
	// Database is the connection URL without its password.
	Database  string `json:"database"`
	Workspace string `json:"workspace"`
	Schema    string `json:"schema"`
	// Server is PostgreSQL's version; Vector pgvector's ("" when the
	// database has no vector extension).
	Server string `json:"server_version"`
	Vector string `json:"pgvector,omitempty"`
	// Tables are in the order they are loaded (a table after those its
	// foreign keys reference).
	Tables []TableDef `json:"tables"`
}

// TableDef is one LightRAG table as the snapshot read it.
type TableDef struct {
	Name    string      `json:"name"`
	Columns []ColumnDef `json:"columns"`
	// Key is the primary key, the order the rows are stored in.
	Key []string `json:"key"`
	// DDL creates the table and its indexes where it is missing.
	DDL string `json:"ddl"`
	// Rows is how many rows of the workspace the snapshot holds.
	Rows int64 `json:"rows"`
	// References are the tables its foreign keys name.
	References []string `json:"references,omitempty"`
	// Fingerprint identifies the rows as read (count and row versions): a
	// later backup that finds the same reuses this table's entry unread.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// ColumnDef is one column and its type as PostgreSQL prints it.
type ColumnDef struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Table returns the definition of the table named name.
func (p *PostgresSource) Table(name string) (TableDef, bool) {
	for _, t := range p.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return TableDef{}, false
}

// TablePath is the manifest path of a table's rows.
func TablePath(table string) string { return tablePrefix + table }

// TableName returns the table a TypeTable entry holds.
func TableName(e FileEntry) string { return strings.TrimPrefix(e.Path, tablePrefix) }

const tablePrefix = "postgres:"

// Store is one kind of LightRAG store of a workspace and where it is.
type Store struct {
	// Kind is kv, vector, graph or doc_status.
	Kind string `json:"kind"`
	// In is "postgres" or "files" when the snapshot holds the store, ""
	// when the workspace keeps it elsewhere.
	In string `json:"in,omitempty"`
	// Detail names the tables or files, or, for a missing store, where it
	// seems to be and how to include it.
	Detail string `json:"detail,omitempty"`
}

// The kinds of LightRAG stores.
const (
	StoreKV        = "kv"
	StoreVector    = "vector"
	StoreGraph     = "graph"
	StoreDocStatus = "doc_status"
)

// Missing lists the stores the workspace keeps elsewhere.
func (m *Manifest) Missing() []Store {
	var out []Store
	for _, s := range m.Stores {
		if s.In == "" {
			out = append(out, s)
		}
	}
	return out
}

// SourceKind is "files", "postgres" or "postgres+files".
func (m *Manifest) SourceKind() string {
	if m.Postgres == nil {
		return "files"
	}
	for _, f := range m.Files {
		if f.Type != TypeTable {
			return "postgres+files"
		}
	}
	return "postgres"
}

// Tables returns the manifest's table entries.
func (m *Manifest) Tables() []FileEntry {
	var out []FileEntry
	for _, f := range m.Files {
		if f.Type == TypeTable {
			out = append(out, f)
		}
	}
	return out
}
