package lightrag

import (
	"bytes"
	"fmt"
	"strings"
)

// LightRAG's PostgreSQL storages (PGKVStorage, PGVectorStorage,
// PGDocStatusStorage, PGTableGraphStorage) keep a workspace as rows of
// lightrag_* tables keyed by (workspace, id). Each table that an invariant
// involves stands for one of the file stores above: the same rules are
// checked on the rows a backup streams as on the files.

// Table is what a LightRAG table holds and which of its columns the
// invariants compare.
type Table struct {
	// Store is the file store the table stands for in the invariants
	// ("" for tables no invariant involves, such as the LLM cache).
	Store string
	// Key is the column whose values are the store's names, Pair the two
	// columns of an unordered pair; SepPair: Key holds "A<SEP>B".
	Key     string
	Pair    [2]string
	SepPair bool
	// Status is the document status column: Key's names are then the
	// processed documents', and the unfinished ones are gathered.
	Status string
	// Vector is the embedding column of a vector table.
	Vector string
	// Edges: the table's pairs are a graph's edges (its store also gets a
	// node table's keys).
	Edges bool
}

// Table names.
const (
	TableGraphNodes = "lightrag_graph_nodes"
	TableGraphEdges = "lightrag_graph_edges"
)

// TableOf returns what the LightRAG table named name holds. Vector tables
// carry the embedding model in their name (lightrag_vdb_chunks_<model>_<dim>d);
// any other lightrag_* table is kept without an invariant.
func TableOf(name string) Table {
	switch {
	case name == "lightrag_doc_full":
		return Table{Store: FullDocsFile, Key: "id"}
	case name == "lightrag_doc_chunks":
		return Table{Store: TextChunksFile, Key: "id"}
	case name == "lightrag_doc_status":
		return Table{Store: DocStatusFile, Key: "id", Status: "status"}
	case name == "lightrag_entity_chunks":
		return Table{Store: EntityChunksFile, Key: "id"}
	case name == "lightrag_relation_chunks":
		return Table{Store: RelationChunksFile, Key: "id", SepPair: true}
	case isVectorTable(name, "lightrag_vdb_chunks"):
		return Table{Store: VDBChunksFile, Key: "id", Vector: "content_vector"}
	case isVectorTable(name, "lightrag_vdb_entity"):
		return Table{Store: VDBEntitiesFile, Key: "entity_name", Vector: "content_vector"}
	case isVectorTable(name, "lightrag_vdb_relation"):
		return Table{Store: VDBRelationsFile, Pair: [2]string{"source_id", "target_id"}, Vector: "content_vector"}
	case name == TableGraphNodes:
		return Table{Store: GraphFile, Key: "id"}
	case name == TableGraphEdges:
		return Table{Store: GraphFile, Pair: [2]string{"src_id", "tgt_id"}, Edges: true}
	}
	return Table{}
}

// IsVectorTable reports whether name is a vector table of kind (for
// example lightrag_vdb_entity), legacy or suffixed with a model.
func isVectorTable(name, kind string) bool {
	return name == kind || strings.HasPrefix(name, kind+"_")
}

// VectorModel is the model suffix of a vector table ("" for a legacy
// table without one).
func VectorModel(name string) string {
	for _, kind := range []string{"lightrag_vdb_chunks", "lightrag_vdb_entity", "lightrag_vdb_relation"} {
		if strings.HasPrefix(name, kind+"_") {
			return strings.TrimPrefix(name, kind+"_")
		}
	}
	return ""
}

// NewTableStream starts validating the rows of a LightRAG table as
// PostgreSQL's COPY text format writes them (one row a line, columns
// separated by tabs, \N for NULL) with the given columns, gathering the
// names the invariants compare.
func NewTableStream(t Table, columns []string) *Stream {
	spec := rowSpec{key: -1, pair: [2]int{-1, -1}, status: -1, vector: -1, sepPair: t.SepPair}
	for i, c := range columns {
		switch c {
		case t.Key:
			spec.key = i
		case t.Pair[0]:
			spec.pair[0] = i
		case t.Pair[1]:
			spec.pair[1] = i
		case t.Status:
			spec.status = i
		case t.Vector:
			spec.vector = i
		}
	}
	spec.columns = len(columns)
	for _, need := range []struct {
		name string
		at   int
	}{{t.Key, spec.key}, {t.Pair[0], spec.pair[0]}, {t.Pair[1], spec.pair[1]}, {t.Status, spec.status}} {
		if need.name != "" && need.at < 0 && spec.missing == "" {
			spec.missing = need.name
		}
	}
	spec.collect = t.Store != ""
	return newStream(func(in *input) *FileStats { return validateRows(in, spec) })
}

// MergeGraph folds the validation of a graph's nodes and edges tables
// into the graph store's result; a missing table counts as empty.
func MergeGraph(nodes, edges *FileStats) *FileStats {
	empty := func() *FileStats { return &FileStats{Keys: (&keyCollector{}).set(), Pairs: (&keyCollector{}).set()} }
	if nodes == nil {
		nodes = empty()
	}
	if edges == nil {
		edges = empty()
	}
	out := &FileStats{Kind: KindGraphML, Nodes: nodes.Records, Edges: edges.Records, Keys: nodes.Keys, Pairs: edges.Pairs, Problem: nodes.Problem}
	if out.Problem == "" {
		out.Problem = edges.Problem
	}
	return out
}

type rowSpec struct {
	columns             int
	key, status, vector int
	pair                [2]int
	sepPair, collect    bool
	missing             string // a column the table should have and lacks
}

// validateRows reads COPY text rows: every row must have the table's
// column count, and a vector column the same dimension in every row.
func validateRows(in *input, spec rowSpec) *FileStats {
	st := &FileStats{Kind: KindKV}
	if spec.vector >= 0 {
		st.Kind = KindVDB
	}
	if spec.missing != "" {
		st.Problem = fmt.Sprintf("the table has no %s column", spec.missing)
		return st
	}
	var keys, unfinished keyCollector
	var docs unfinishedDocs
	var line []byte
	fields := make([][]byte, 0, spec.columns)
	for {
		// A row within one piece is read where it is; one spanning pieces
		// is gathered into line.
		var row []byte
		line = line[:0]
		end := false
		for {
			p := in.rest()
			if p == nil {
				end = true
				break
			}
			if i := bytes.IndexByte(p, '\n'); i >= 0 {
				if row = p[:i]; len(line) > 0 {
					line = append(line, row...)
					row = line
				}
				in.pos += i + 1
				break
			}
			line = append(line, p...)
			in.pos += len(p)
		}
		if end && len(line) == 0 {
			break
		}
		if end {
			st.Problem = fmt.Sprintf("row %d is not terminated", st.Records+1)
			return st
		}
		fields = fields[:0]
		for f := range bytes.SplitSeq(row, []byte{'\t'}) {
			fields = append(fields, f)
		}
		if len(fields) != spec.columns {
			st.Problem = fmt.Sprintf("row %d has %d columns, the table %d", st.Records+1, len(fields), spec.columns)
			return st
		}
		st.Records++
		if spec.vector >= 0 && !isNull(fields[spec.vector]) {
			dim := int64(bytes.Count(fields[spec.vector], []byte{','}) + 1)
			if st.Dim == 0 {
				st.Dim = dim
			} else if st.Dim != dim {
				st.Problem = fmt.Sprintf("row %d has a vector of %d dimensions, earlier rows %d", st.Records, dim, st.Dim)
				return st
			}
			st.Rows++
		}
		if !spec.collect {
			continue
		}
		switch {
		case spec.status >= 0:
			id := unescapeCopy(fields[spec.key])
			switch status := string(unescapeCopy(fields[spec.status])); status {
			case "processed":
				keys.add(id)
			case StatusPending, StatusProcessing, StatusFailed:
				unfinished.add(id)
				docs.add(string(id), status)
			}
		case spec.pair[0] >= 0:
			keys.addPair(unescapeCopy(fields[spec.pair[0]]), unescapeCopy(fields[spec.pair[1]]))
		case spec.sepPair:
			keys.addSepPair(unescapeCopy(fields[spec.key]))
		case spec.key >= 0:
			keys.add(unescapeCopy(fields[spec.key]))
		}
	}
	if !spec.collect {
		return st
	}
	switch {
	case spec.status >= 0:
		st.Keys = keys.set()
		u := &Unfinished{Keys: unfinished.set()}
		u.Docs, u.Counts = docs.result()
		st.Unfinished = u
	case spec.pair[0] >= 0 || spec.sepPair:
		st.Pairs = keys.set()
	default:
		st.Keys = keys.set()
	}
	return st
}

func isNull(f []byte) bool { return len(f) == 2 && f[0] == '\\' && f[1] == 'N' }

// unescapeCopy decodes one field of COPY's text format.
func unescapeCopy(f []byte) []byte {
	if bytes.IndexByte(f, '\\') < 0 {
		return f
	}
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			out = append(out, c)
			continue
		}
		i++
		switch d := f[i]; d {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			n, j := 0, i+1
			for ; j < len(f) && j < i+3 && isHex(f[j]); j++ {
				n = n*16 + hexVal(f[j])
			}
			out = append(out, byte(n))
			i = j - 1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n, j := 0, i
			for ; j < len(f) && j < i+3 && f[j] >= '0' && f[j] <= '7'; j++ {
				n = n*8 + int(f[j]-'0')
			}
			out = append(out, byte(n))
			i = j - 1
		default:
			out = append(out, d)
		}
	}
	return out
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}
