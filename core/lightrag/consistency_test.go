package lightrag_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
)

// streamDir validates every LightRAG file of dir as a backup does, names
// collected, in pieces of 4 KiB.
func streamDir(t *testing.T, dir string) map[string]*lightrag.FileStats {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*lightrag.FileStats{}
	for _, e := range entries {
		s := lightrag.NewFileStream(e.Name())
		if s == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 {
			n := min(len(data), 4096)
			s.Write(data[:n], nil)
			data = data[n:]
		}
		files[e.Name()] = s.Close()
	}
	return files
}

func TestFixtureAtRestKeepsEveryInvariant(t *testing.T) {
	dir := t.TempDir()
	if err := fixture.Generate(dir, fixture.Spec{Docs: 9, EmbeddingDim: 16, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	files := streamDir(t, dir)
	ivs := lightrag.Check(files)
	if got, want := len(ivs), 6; got != want {
		t.Fatalf("checked %d invariants, want %d: %+v", got, want, ivs)
	}
	for _, iv := range ivs {
		if !iv.Holds || iv.LeftCount == 0 {
			t.Errorf("at rest: %+v", iv)
		}
	}
	if got := files[lightrag.GraphFile].Keys.Count; got != files[lightrag.GraphFile].Nodes {
		t.Errorf("graph names %d, nodes %d", got, files[lightrag.GraphFile].Nodes)
	}
}

// TestTornGraphBreaksInvariants: a GraphML one document older than the
// vector stores (what a file-by-file backup stored) is caught, and the
// report says by how much.
func TestTornGraphBreaksInvariants(t *testing.T) {
	older, newer := t.TempDir(), t.TempDir()
	if err := fixture.Generate(older, fixture.Spec{Docs: 8, EmbeddingDim: 16, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	if err := fixture.Generate(newer, fixture.Spec{Docs: 9, EmbeddingDim: 16, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	files := streamDir(t, newer)
	files[lightrag.GraphFile] = streamDir(t, older)[lightrag.GraphFile]
	failed := broken(lightrag.Check(files))
	if len(failed) != 4 {
		t.Fatalf("broken invariants = %v, want the 4 the graph takes part in", failed)
	}
	for _, iv := range failed {
		if iv.OnlyLeft == nil || *iv.OnlyLeft != 0 || *iv.OnlyRight <= 0 {
			t.Errorf("%+v: want names only in the newer store", iv)
		}
		if iv.RightCount-iv.LeftCount != *iv.OnlyRight {
			t.Errorf("%+v: counts and difference disagree", iv)
		}
	}
	// A side known only by its fingerprint still tells equal from not.
	fp := *files[lightrag.VDBEntitiesFile].Keys
	files[lightrag.VDBEntitiesFile].Keys = &lightrag.KeySet{Count: fp.Count, Sum: fp.Sum}
	for _, iv := range broken(lightrag.Check(files)) {
		if strings.Contains(iv.Right, lightrag.VDBEntitiesFile) && iv.OnlyLeft != nil {
			t.Errorf("%+v: a difference from a fingerprint", iv)
		}
	}
}

func TestDocumentsMustBeProcessed(t *testing.T) {
	files := map[string]*lightrag.FileStats{}
	for name, content := range map[string]string{
		lightrag.FullDocsFile:  `{"doc-1": {"content": "a"}, "doc-2": {"content": "b"}}`,
		lightrag.DocStatusFile: `{"doc-1": {"status": "processed", "x": [1, {"status": "no"}]}, "doc-2": {"chunks": 1, "status": "processing"}}`,
	} {
		s := lightrag.NewFileStream(name)
		s.Write([]byte(content), nil)
		files[name] = s.Close()
		if files[name].Problem != "" {
			t.Fatalf("%s: %s", name, files[name].Problem)
		}
	}
	ivs := lightrag.Check(files)
	if len(ivs) != 1 || ivs[0].Holds || *ivs[0].OnlyLeft != 1 || *ivs[0].OnlyRight != 0 {
		t.Fatalf("got %+v, want one unprocessed document", ivs)
	}
}

func TestNamesAreComparedDecoded(t *testing.T) {
	graph := `<graphml><graph><node id="A &amp; B"/><node id="&quot;C&quot;"/><edge source="&quot;C&quot;" target="A &amp; B"/></graph></graphml>`
	vdb := `{"embedding_dim": 1, "data": [{"entity_name": "A & B"}, {"entity_name": "\"C\""}], "matrix": "AAAAAAAAAAA="}`
	rels := `{"A & B<SEP>\"C\"": {"count": 1}}`
	files := map[string]*lightrag.FileStats{}
	for name, content := range map[string]string{lightrag.GraphFile: graph, lightrag.VDBEntitiesFile: vdb, lightrag.RelationChunksFile: rels} {
		s := lightrag.NewFileStream(name)
		s.Write([]byte(content), nil)
		files[name] = s.Close()
		if files[name].Problem != "" {
			t.Fatalf("%s: %s", name, files[name].Problem)
		}
	}
	for _, iv := range lightrag.Check(files) {
		if strings.Contains(iv.Right, "vdb_entities") || strings.Contains(iv.Right, "relation_chunks") {
			if !iv.Holds {
				t.Errorf("%+v", iv)
			}
		}
	}
}

// broken returns the invariants that do not hold.
func broken(ivs []lightrag.Invariant) []lightrag.Invariant {
	var out []lightrag.Invariant
	for _, iv := range ivs {
		if !iv.Holds {
			out = append(out, iv)
		}
	}
	return out
}

// TestResumable: stored documents that are processed or unfinished
// (pending, processing, failed) make a state LightRAG resumes, naming the
// unfinished ones; a stored document with no status, a status of another
// kind, or a broken graph invariant does not.
func TestResumable(t *testing.T) {
	kv := func(full, status string) map[string]*lightrag.FileStats {
		files := map[string]*lightrag.FileStats{}
		for name, content := range map[string]string{lightrag.FullDocsFile: full, lightrag.DocStatusFile: status} {
			s := lightrag.NewFileStream(name)
			s.Write([]byte(content), nil)
			files[name] = s.Close()
			if files[name].Problem != "" {
				t.Fatalf("%s: %s", name, files[name].Problem)
			}
		}
		return files
	}
	full := `{"doc-1": {}, "doc-2": {}, "doc-3": {}, "doc-4": {}}`
	files := kv(full, `{"doc-1": {"status": "processed"}, "doc-4": {"status": "pending"}, "doc-2": {"status": "processing", "chunks": 3}, "doc-3": {"status": "failed"}}`)
	r := lightrag.Resumable(files, lightrag.Check(files))
	if r == nil {
		t.Fatal("processed, pending, processing and failed documents: not resumable")
	}
	if got, want := fmt.Sprint(r.Docs), "[{doc-2 processing} {doc-3 failed} {doc-4 pending}]"; got != want || r.Total() != 3 {
		t.Fatalf("resume %v (total %d), want %s", r.Docs, r.Total(), want)
	}
	// Fingerprints alone (an unchanged file's, from the parent) decide the same.
	for _, f := range files {
		ks := []**lightrag.KeySet{&f.Keys}
		if f.Unfinished != nil {
			ks = append(ks, &f.Unfinished.Keys)
		}
		for _, ks := range ks {
			if *ks != nil {
				*ks = &lightrag.KeySet{Count: (*ks).Count, Sum: (*ks).Sum}
			}
		}
	}
	if lightrag.Resumable(files, lightrag.Check(files)) == nil {
		t.Fatal("not resumable by fingerprints")
	}
	for name, status := range map[string]string{
		"a stored document without a status": `{"doc-1": {"status": "processed"}, "doc-2": {"status": "pending"}, "doc-3": {"status": "pending"}}`,
		"a status of another kind":           `{"doc-1": {"status": "processed"}, "doc-2": {"status": "pending"}, "doc-3": {"status": "pending"}, "doc-4": {"status": "deleting"}}`,
		"a status without its document":      `{"doc-1": {"status": "processed"}, "doc-2": {"status": "pending"}, "doc-3": {"status": "pending"}, "doc-4": {"status": "pending"}, "doc-5": {"status": "pending"}}`,
	} {
		files := kv(full, status)
		if lightrag.Resumable(files, lightrag.Check(files)) != nil {
			t.Errorf("%s: resumable", name)
		}
	}
	// A broken graph invariant is never resumable.
	dir := t.TempDir()
	if err := fixture.Generate(dir, fixture.Spec{Docs: 3, EmbeddingDim: 16, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	torn := streamDir(t, dir)
	older := t.TempDir()
	if err := fixture.Generate(older, fixture.Spec{Docs: 2, EmbeddingDim: 16, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	torn[lightrag.GraphFile] = streamDir(t, older)[lightrag.GraphFile]
	if lightrag.Resumable(torn, lightrag.Check(torn)) != nil {
		t.Fatal("a torn graph is resumable")
	}
}

// TestUnfinishedListIsBounded: a bulk import's thousands of pending
// documents are all counted, the first by id named.
func TestUnfinishedListIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"doc-%05d": {"status": "pending"}`, 4999-i)
	}
	b.WriteString("}")
	s := lightrag.NewFileStream(lightrag.DocStatusFile)
	s.Write([]byte(b.String()), nil)
	st := s.Close()
	u := st.Unfinished
	if got := u.Counts["pending"]; got != 5000 || u.Keys.Count != 5000 {
		t.Fatalf("counted %d pending (%d in the set), want 5000", got, u.Keys.Count)
	}
	if len(u.Docs) != lightrag.MaxUnfinishedListed || u.Docs[0].ID != "doc-00000" || u.Docs[99].ID != "doc-00099" {
		t.Fatalf("named %d, first %v", len(u.Docs), u.Docs[:2])
	}
}
