package lightrag_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/graphkeep/graphkeep/core/lightrag"
)

// FuzzValidate feeds arbitrary bytes to every validator, whole and split
// at random places, names collected: it must never panic or hang, and
// where the pieces break must never change what it finds.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`{"a": {"status": "processed"}, "b<SEP>c": [1, "x\u00e9"]}`,
		`{"embedding_dim": 1, "data": [{"__id__": "x", "entity_name": "A & B", "src_id": "a", "tgt_id": "b"}], "matrix": "AAAAAA=="}`,
		`<graphml><key id="d0" attr.name="x"/><graph><node id="A &amp; B"/><node id="&#233;"/><edge source="A &amp; B" target="&#233;"><data key="d0">1</data></edge></graph></graphml>`,
		`{"k": "\ud83d\ude00", "e": "\"", "s": {"status": 1}}`,
		`{"data": [1, {"entity_name": 2}], "embedding_dim": -1}`,
		``, `{`, `<`, `{"a":`,
	} {
		f.Add([]byte(seed), uint64(1))
	}
	names := []string{lightrag.DocStatusFile, lightrag.RelationChunksFile, lightrag.FullDocsFile, lightrag.VDBEntitiesFile,
		lightrag.VDBRelationsFile, lightrag.VDBChunksFile, lightrag.GraphFile, "kv_store_other.json"}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		for _, name := range names {
			whole := lightrag.NewFileStream(name)
			whole.Write(bytes.Clone(data), nil)
			a := whole.Close()
			r := rand.New(rand.NewPCG(seed, 7))
			split := lightrag.NewFileStream(name)
			for rest := data; len(rest) > 0; {
				n := 1 + r.IntN(len(rest))
				split.Write(bytes.Clone(rest[:n]), nil)
				rest = rest[n:]
			}
			b := split.Close()
			if a.Problem != b.Problem || a.Records != b.Records || a.Nodes != b.Nodes || a.Edges != b.Edges ||
				!sameSet(a.Keys, b.Keys) || !sameSet(a.Pairs, b.Pairs) {
				t.Fatalf("%s: whole %+v, in pieces %+v", name, a, b)
			}
			_ = lightrag.Check(map[string]*lightrag.FileStats{name: a})
		}
	})
}

func sameSet(a, b *lightrag.KeySet) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}
