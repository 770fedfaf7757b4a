package lightrag_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
)

func validateDir(t *testing.T, dir string) *lightrag.Stats {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*lightrag.FileStats{}
	for _, e := range entries {
		kind := lightrag.KindOf(e.Name())
		if kind == "" {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = lightrag.Validate(kind, f)
		f.Close()
	}
	return lightrag.Summarize(files)
}

func TestFixtureValidates(t *testing.T) {
	dir := t.TempDir()
	spec := fixture.Spec{Docs: 12, EmbeddingDim: 64, Seed: 1}
	if err := fixture.Generate(dir, spec); err != nil {
		t.Fatal(err)
	}
	st := validateDir(t, dir)
	if !st.Valid() {
		t.Fatalf("a generated workspace has problems: %v", st.Problems)
	}
	spec.ApplyDefaults()
	if got, want := st.Docs, int64(12); got != want {
		t.Errorf("docs = %d, want %d", got, want)
	}
	if got, want := st.Chunks, int64(12*spec.ChunksPerDoc); got != want {
		t.Errorf("chunks = %d, want %d", got, want)
	}
	if st.Nodes == 0 || st.Edges == 0 {
		t.Errorf("graph is empty: %v", st)
	}
	if got, want := st.VectorRows, st.Chunks+st.Nodes+st.Edges; got != want {
		t.Errorf("vector rows = %d, want chunks+nodes+edges = %d", got, want)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*.tmp.*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestGrowAppendsAndRewrites(t *testing.T) {
	dir := t.TempDir()
	spec := fixture.Spec{Docs: 10, EmbeddingDim: 32, Seed: 5}
	if err := fixture.Generate(dir, spec); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "kv_store_full_docs.json"))
	spec, err := fixture.Grow(dir, spec, 3)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "kv_store_full_docs.json"))
	prefix := strings.TrimSuffix(string(before), "\n}")
	if !strings.HasPrefix(string(after), prefix) {
		t.Fatal("growing changed the existing documents instead of appending")
	}
	if st := validateDir(t, dir); st.Docs != 13 || !st.Valid() {
		t.Fatalf("after growing: %v %v", st, st.Problems)
	}
}

var brokenCases = []struct {
	name, file, content, want string
}{
	{"truncated json", "kv_store_full_docs.json", `{"doc-1": {"content": "x"}, "doc-2": {"con`, "does not parse"},
	{"not an object", "kv_store_text_chunks.json", `[1,2]`, "not a JSON object"},
	{"trailing data", "kv_store_text_chunks.json", `{"a":1} x`, "data after"},
	{"rows mismatch", "vdb_chunks.json", `{"embedding_dim": 2, "data": [{"__id__":"a"},{"__id__":"b"}], "matrix": "AAAAAAAAAA=="}`, "not a whole number"},
	{"rows vs records", "vdb_chunks.json", `{"embedding_dim": 1, "data": [{"__id__":"a"},{"__id__":"b"}], "matrix": "AAAAAA=="}`, "matrix has 1 rows but data has 2 records"},
	{"bad base64", "vdb_entities.json", `{"embedding_dim": 1, "data": [], "matrix": "AA!A"}`, "not base64"},
	{"no matrix", "vdb_entities.json", `{"embedding_dim": 1, "data": []}`, "no matrix"},
	{"edge to nowhere", "graph_chunk_entity_relation.graphml", `<graphml><key id="d0" for="node" attr.name="entity_id"/><graph><node id="A"><data key="d0">A</data></node><edge source="A" target="B"/></graph></graphml>`, "names a node that does not exist"},
	{"edge before a node that never comes", "graph_chunk_entity_relation.graphml", `<graphml><graph><edge source="A" target="B"/><node id="A"/></graph></graphml>`, `edge "A" -> "B" names a node that does not exist`},
	{"undeclared key", "graph_chunk_entity_relation.graphml", `<graphml><graph><node id="A"><data key="d9">A</data></node></graph></graphml>`, "undeclared key"},
	{"torn xml", "graph_chunk_entity_relation.graphml", `<graphml><graph><node id="A">`, "does not parse"},
}

func TestBrokenFilesAreFlagged(t *testing.T) {
	for _, c := range brokenCases {
		t.Run(c.name, func(t *testing.T) {
			st := lightrag.Validate(lightrag.KindOf(c.file), strings.NewReader(c.content))
			if !strings.Contains(st.Problem, c.want) {
				t.Fatalf("problem = %q, want it to contain %q", st.Problem, c.want)
			}
		})
	}
}

func TestEdgesMayComeBeforeTheirNodes(t *testing.T) {
	st := lightrag.Validate(lightrag.KindGraphML, strings.NewReader(`<graphml><graph><edge source="A" target="B"/><node id="B"/><edge source="B" target="A"/><node id="A"/><node id="A"/></graph></graphml>`))
	if st.Problem != "" || st.Nodes != 2 || st.Edges != 2 {
		t.Fatalf("got %+v", st)
	}
}

// Checking a big graph's edges must not hold every node id and edge as
// strings: that cost tens of MiB at 10 GB. With nodes first, as networkx
// writes them, validation allocates nothing per node or edge beyond a hash.
func TestGraphMLValidationHoldsNoStringsPerEdge(t *testing.T) {
	var doc strings.Builder
	doc.WriteString(`<graphml><graph>`)
	const n = 20000
	for i := range n {
		fmt.Fprintf(&doc, `<node id="entity number %d"/>`, i)
	}
	for i := range n {
		fmt.Fprintf(&doc, `<edge source="entity number %d" target="entity number %d"/>`, i, (i+1)%n)
	}
	doc.WriteString(`</graph></graphml>`)
	content := doc.String()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := lightrag.Validate(lightrag.KindGraphML, strings.NewReader(content))
	runtime.ReadMemStats(&after)
	if st.Problem != "" || st.Nodes != n || st.Edges != n {
		t.Fatalf("got %+v", st)
	}
	// Strings for 20,000 edges alone were 40,000 allocations.
	if allocs := after.Mallocs - before.Mallocs; allocs > n/2 {
		t.Fatalf("validating %d nodes and %d edges made %d allocations; ids and edges should be held as hashes", n, n, allocs)
	}
}

func TestValidVDBWithEscapedSlashes(t *testing.T) {
	st := lightrag.Validate(lightrag.KindVDB, strings.NewReader(`{"embedding_dim": 1, "data": [{"__id__":"a","content":"x\"}"}], "matrix": "\/\/\/\/AA=="}`))
	if st.Problem != "" || st.Rows != 1 {
		t.Fatalf("got %+v", st)
	}
}

func TestKindOf(t *testing.T) {
	for name, want := range map[string]string{
		"graph_chunk_entity_relation.graphml": lightrag.KindGraphML,
		"kv_store_doc_status.json":            lightrag.KindKV,
		"vdb_relationships.json":              lightrag.KindVDB,
		"sub/vdb_relationships.json":          "",
		"notes.txt":                           "",
	} {
		if got := lightrag.KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"vdb_chunks.json.tmp.123", "kv_store_x.json.tmp", "graph.lock"} {
		if !lightrag.IsTransient(name) {
			t.Errorf("IsTransient(%q) = false", name)
		}
	}
}

// TestKVAgreesWithEncodingJSON mutates a valid store byte by byte and
// checks the streaming validator accepts exactly what encoding/json does.
func TestKVAgreesWithEncodingJSON(t *testing.T) {
	valid := `{"doc-1": {"content": "a \"quoted\" \\ text\nwith \u00e9 and \/", "n": -1.5e3, "ok": true, "x": null,
  "list": [1, 2, {"deep": []}], "empty": {}}, "doc-2": "plain"}`
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 8000; i++ {
		b := []byte(valid)
		for m := 0; m < 1+r.IntN(2); m++ {
			if len(b) == 0 {
				break
			}
			pos := r.IntN(len(b))
			switch r.IntN(3) {
			case 0:
				alphabet := "{}[]\":,\\ 0a-eE.tfn\x01"
				b[pos] = alphabet[r.IntN(len(alphabet))]
			case 1:
				b = append(b[:pos], b[pos+1:]...)
			case 2:
				b = b[:pos]
			}
		}
		want := json.Valid(b) && bytes.HasPrefix(bytes.TrimSpace(b), []byte("{"))
		st := lightrag.Validate(lightrag.KindKV, bytes.NewReader(b))
		if got := st.Problem == ""; got != want {
			t.Fatalf("validator says valid=%v (%q), encoding/json says %v, for:\n%s", got, st.Problem, want, b)
		}
		if pieces := validatePieces(t, lightrag.KindKV, b, r, 5); *pieces != *st {
			t.Fatalf("in pieces: %+v, whole: %+v, for:\n%s", pieces, st, b)
		}
	}
}

// validatePieces feeds content to a Stream in pieces of random sizes (1 to
// max bytes) and checks every piece is released exactly once.
func validatePieces(t *testing.T, kind string, content []byte, r *rand.Rand, max int) *lightrag.FileStats {
	t.Helper()
	released := map[*byte]int{}
	var mu sync.Mutex
	s := lightrag.NewStream(kind)
	var given []*byte
	for rest := content; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(max))
		piece := append([]byte(nil), rest[:n]...) // each piece its own memory
		given = append(given, &piece[0])
		s.Write(piece, func() {
			mu.Lock()
			released[&piece[0]]++
			mu.Unlock()
		})
		rest = rest[n:]
	}
	st := s.Close()
	for i, p := range given {
		if released[p] != 1 {
			t.Fatalf("piece %d of %d released %d times, want once", i, len(given), released[p])
		}
	}
	return st
}

// TestPiecesGiveTheSameResult: where the pieces of a file break (inside a
// string, an escape, a tag, the base64 matrix) never changes what
// validation finds, healthy or broken.
func TestPiecesGiveTheSameResult(t *testing.T) {
	dir := t.TempDir()
	if err := fixture.Generate(dir, fixture.Spec{Docs: 3, EmbeddingDim: 8, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	type input struct{ kind, content string }
	var inputs []input
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if kind := lightrag.KindOf(e.Name()); kind != "" {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, input{kind, string(b)})
			inputs = append(inputs, input{kind, string(b[:len(b)*2/3])}) // torn
		}
	}
	for _, c := range brokenCases {
		inputs = append(inputs, input{lightrag.KindOf(c.file), c.content})
	}
	inputs = append(inputs,
		input{lightrag.KindVDB, `{"embedding_dim": 1, "data": [{"__id__":"a","content":"x\"}"}], "matrix": "\/\/\/\/AA=="}`},
		input{lightrag.KindGraphML, `<?xml version="1.0"?><!-- a <comment> --><!DOCTYPE x><graphml><![CDATA[<node id="Z"/>]]><graph/></graphml>`},
		input{lightrag.KindKV, `{"a": "\u00e9\n", "b": [1e5, -0.5, true, null]}`})
	r := rand.New(rand.NewPCG(3, 4))
	for i, in := range inputs {
		whole := lightrag.Validate(in.kind, strings.NewReader(in.content))
		for _, max := range []int{1, 3, 17, 1000} {
			got := validatePieces(t, in.kind, []byte(in.content), r, max)
			if *got != *whole {
				t.Fatalf("input %d (%s) in pieces of up to %d bytes: %+v, whole: %+v", i, in.kind, max, got, whole)
			}
		}
	}
}

// TestStreamReleasesAfterAnEarlyProblem: a validator that stops at the
// first problem still takes and releases every piece, so the writer never
// blocks and no buffer is lost.
func TestStreamReleasesAfterAnEarlyProblem(t *testing.T) {
	content := append([]byte(`[not an object`), bytes.Repeat([]byte(" "), 4096)...)
	st := validatePieces(t, lightrag.KindKV, content, rand.New(rand.NewPCG(1, 1)), 8)
	if st.Problem == "" {
		t.Fatal("a broken store passed")
	}
	s := lightrag.NewStream("")
	if s != nil {
		t.Fatal("a stream for a file that is not validated")
	}
	called := false
	s.Write([]byte("x"), func() { called = true })
	if called || s.Close() != nil {
		t.Fatal("a nil stream released a piece it never took, or returned stats")
	}
}

func TestStreamSkipsEmptyPieces(t *testing.T) {
	s := lightrag.NewStream(lightrag.KindKV)
	done := 0
	s.Write([]byte(`{"a":`), func() { done++ })
	s.Write(nil, func() { done++ })
	s.Write([]byte{}, func() { done++ })
	s.Write([]byte(` 1}`), func() { done++ })
	if st := s.Close(); st.Problem != "" || st.Records != 1 {
		t.Fatalf("got %+v", st)
	}
	if done != 4 {
		t.Fatalf("%d of 4 pieces released", done)
	}
}
