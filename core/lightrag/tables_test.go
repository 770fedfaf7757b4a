package lightrag_test

import (
	"testing"

	"github.com/graphkeep/graphkeep/core/lightrag"
)

func tableStats(t *testing.T, table string, cols []string, rows string) *lightrag.FileStats {
	t.Helper()
	s := lightrag.NewTableStream(lightrag.TableOf(table), cols)
	s.Write([]byte(rows), nil)
	return s.Close()
}

// The names a table yields are the ones the file store would: COPY's
// escapes decoded, so a node named with a tab matches its vector's
// entity_name.
func TestTableStreamNames(t *testing.T) {
	nodes := tableStats(t, lightrag.TableGraphNodes, []string{"workspace", "namespace", "id", "properties"},
		"w\tchunk_entity_relation\tA\\tB\t{}\nw\tchunk_entity_relation\tC\\\\D\t{}\n")
	ents := tableStats(t, "lightrag_vdb_entity_m_3d", []string{"id", "workspace", "entity_name", "content_vector"},
		"e1\tw\tA\\tB\t{1,2,3}\ne2\tw\tC\\\\D\t\\N\n")
	if nodes.Problem != "" || ents.Problem != "" || !nodes.Keys.Equal(ents.Keys) || ents.Dim != 3 || ents.Rows != 1 || ents.Records != 2 {
		t.Fatalf("nodes %+v\nentities %+v", nodes, ents)
	}
	edges := tableStats(t, lightrag.TableGraphEdges, []string{"workspace", "namespace", "src_id", "tgt_id", "properties"}, "w\tn\tA\\tB\tC\\\\D\t{}\n")
	rels := tableStats(t, "lightrag_relation_chunks", []string{"id", "workspace", "chunk_ids"}, "C\\\\D<SEP>A\\tB\tw\t[]\n")
	if !edges.Pairs.Equal(rels.Pairs) {
		t.Fatalf("edges %+v, relation chunks %+v", edges.Pairs, rels.Pairs)
	}
	graph := lightrag.MergeGraph(nodes, edges)
	if graph.Nodes != 2 || graph.Edges != 1 || graph.Kind != lightrag.KindGraphML {
		t.Fatalf("graph %+v", graph)
	}
	status := tableStats(t, "lightrag_doc_status", []string{"workspace", "id", "status"}, "w\td1\tprocessed\nw\td2\tpending\nw\td3\tfailed\n")
	if status.Keys.Count != 1 || status.Unfinished.Keys.Count != 2 || status.Unfinished.Counts["pending"] != 1 {
		t.Fatalf("status %+v %+v", status, status.Unfinished)
	}
}

func TestTableStreamProblems(t *testing.T) {
	if st := tableStats(t, "lightrag_doc_full", []string{"id", "workspace"}, "d1\tw\textra\n"); st.Problem == "" {
		t.Fatal("a row with a column too many passed")
	}
	if st := tableStats(t, "lightrag_vdb_chunks", []string{"id", "workspace", "content_vector"}, "c1\tw\t{1,2}\nc2\tw\t{1,2,3}\n"); st.Problem == "" {
		t.Fatal("vectors of two dimensions passed")
	}
	if st := tableStats(t, "lightrag_doc_full", []string{"id", "workspace"}, "d1\tw"); st.Problem == "" {
		t.Fatal("a row without its end passed")
	}
	if st := tableStats(t, "lightrag_doc_full", []string{"key", "workspace"}, "d1\tw\n"); st.Problem == "" {
		t.Fatal("a table without its key column passed")
	}
}

// Rows cut across the pieces a backup hands over read as whole rows.
func TestTableStreamRowsAcrossPieces(t *testing.T) {
	rows := "w\td1\tprocessed\nw\td\\t2\tpending\nw\td3\tprocessed\n"
	whole := tableStats(t, "lightrag_doc_status", []string{"workspace", "id", "status"}, rows)
	s := lightrag.NewTableStream(lightrag.TableOf("lightrag_doc_status"), []string{"workspace", "id", "status"})
	for i := 0; i < len(rows); i += 3 {
		s.Write([]byte(rows[i:min(i+3, len(rows))]), nil)
	}
	pieces := s.Close()
	if pieces.Problem != "" || !pieces.Keys.Equal(whole.Keys) || !pieces.Unfinished.Keys.Equal(whole.Unfinished.Keys) || pieces.Records != 3 {
		t.Fatalf("in pieces %+v, whole %+v", pieces, whole)
	}
}
