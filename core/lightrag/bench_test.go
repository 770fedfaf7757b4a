package lightrag_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
)

// BenchmarkValidate measures validation speed per file kind on a generated
// workspace, fed as a backup feeds it: 1 MiB pieces through a Stream.
func BenchmarkValidate(b *testing.B) {
	dir := b.TempDir()
	if err := fixture.Generate(dir, fixture.Spec{Docs: 40, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"kv_store_text_chunks.json", "vdb_chunks.json", "graph_chunk_entity_relation.graphml"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		kind := lightrag.KindOf(name)
		for _, variant := range []struct {
			name string
			open func() *lightrag.Stream
		}{
			{kind, func() *lightrag.Stream { return lightrag.NewStream(kind) }},
			// As a backup validates: the names the invariants compare kept too.
			{kind + "-names", func() *lightrag.Stream { return lightrag.NewFileStream(name) }},
		} {
			b.Run(variant.name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					s := variant.open()
					for rest := data; len(rest) > 0; {
						n := min(len(rest), 1<<20)
						s.Write(rest[:n], nil)
						rest = rest[n:]
					}
					if st := s.Close(); st.Problem != "" {
						b.Fatal(st.Problem)
					}
				}
			})
		}
		b.Run(kind+"-reader", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if st := lightrag.Validate(kind, bytes.NewReader(data)); st.Problem != "" {
					b.Fatal(st.Problem)
				}
			}
		})
	}
}
