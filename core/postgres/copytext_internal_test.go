package postgres

import (
	"io"
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/core/repo"
)

func TestQuoting(t *testing.T) {
	for _, tc := range []struct{ in, lit, ident string }{
		{"alpha", `'alpha'`, `"alpha"`},
		{`x'); DROP TABLE t; --`, `'x''); DROP TABLE t; --'`, `"x'); DROP TABLE t; --"`},
		{`a"b\c`, `'a"b\c'`, `"a""b\c"`},
	} {
		if got := quoteLiteral(tc.in); got != tc.lit {
			t.Errorf("quoteLiteral(%q) = %s, want %s", tc.in, got, tc.lit)
		}
		if got := quoteIdent(tc.in); got != tc.ident {
			t.Errorf("quoteIdent(%q) = %s, want %s", tc.in, got, tc.ident)
		}
	}
	if err := CheckWorkspace("a\x00b"); err == nil {
		t.Fatal("a workspace name with a NUL byte was accepted")
	}
}

var docs = repo.TableDef{Name: "lightrag_doc_full", Key: []string{"workspace", "id"},
	Columns: []repo.ColumnDef{{Name: "id", Type: "text"}, {Name: "workspace", Type: "text"}, {Name: "content", Type: "text"}}}

func TestRewriteWorkspace(t *testing.T) {
	in := "d1\told\thello\\tworld\nd2\told\t\\N\nd3\told\tlast"
	r, err := RewriteWorkspace(strings.NewReader(in), docs, "new\tws\\x")
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "d1\tnew\\tws\\\\x\thello\\tworld\nd2\tnew\\tws\\\\x\t\\N\nd3\tnew\\tws\\\\x\tlast"
	if string(out) != want {
		t.Fatalf("rewritten:\n%q\nwant\n%q", out, want)
	}
	if _, err := RewriteWorkspace(strings.NewReader(""), repo.TableDef{Name: "x", Columns: []repo.ColumnDef{{Name: "id"}}}, "w"); err == nil {
		t.Fatal("a table without a workspace column was rewritten")
	}
}

func TestRowKey(t *testing.T) {
	key := RowKey(docs)
	if got := string(key([]byte("doc-1\tws\tcontent\n"))); got != "doc-1\x00" {
		t.Fatalf("key %q", got)
	}
	edges := repo.TableDef{Key: []string{"workspace", "namespace", "src_id", "tgt_id"},
		Columns: []repo.ColumnDef{{Name: "workspace"}, {Name: "namespace"}, {Name: "src_id"}, {Name: "tgt_id"}, {Name: "properties"}}}
	if got := string(RowKey(edges)([]byte("ws\tns\tA\tB\t{}\n"))); got != "ns\x00A\x00B\x00" {
		t.Fatalf("edge key %q", got)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:s3cret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db?password=s3cret":             "postgres://u@h/db?password=xxxxx",
		"postgresql://h/db":                             "postgresql://h/db",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := WorkspaceURL("postgres://u:s3cret@h/db?sslmode=disable", "a b!"); strings.Contains(got, "s3cret") || !strings.Contains(got, "workspace=a+b%21") {
		t.Fatalf("WorkspaceURL: %s", got)
	}
	loc, err := ParseURL("postgres://u:s3cret@h/db?workspace=w1&sslmode=disable")
	if err != nil || loc.Workspace != "w1" || strings.Contains(loc.URL, "workspace") || strings.Contains(loc.String(), "s3cret") {
		t.Fatalf("ParseURL: %+v %v", loc, err)
	}
	if _, err := ParseURL("mysql://h/db"); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("a non-PostgreSQL URL: %v", err)
	}
}
