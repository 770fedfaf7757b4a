package repo

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestFormatIsGolden pins the encoding of a manifest and a checkpoint with
// every field set: a change to any type they hold (here or in a package they
// borrow from) that would change what is stored fails here. Change the
// format on purpose, bump FormatVersion, and run with -update.
func TestFormatIsGolden(t *testing.T) {
	for name, v := range map[string]any{
		"manifest.golden.json":   goldenManifest(),
		"checkpoint.golden.json": goldenCheckpoint(),
	} {
		t.Run(name, func(t *testing.T) {
			encoded, err := json.Marshal(v) // as SaveManifest and SaveCheckpoint encode
			if err != nil {
				t.Fatal(err)
			}
			var readable bytes.Buffer
			if err := json.Indent(&readable, encoded, "", "  "); err != nil {
				t.Fatal(err)
			}
			readable.WriteByte('\n')
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, readable.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestFormatIsGolden -update to create it)", err)
			}
			if !bytes.Equal(readable.Bytes(), want) {
				t.Fatalf("the encoded %s changed; if that is meant, bump FormatVersion and run with -update.\ngot:\n%s", name, readable.Bytes())
			}
			// What is stored decodes to what was written.
			back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := json.Unmarshal(want, back); err != nil {
				t.Fatal(err)
			}
			again, _ := json.Marshal(back)
			if !bytes.Equal(again, encoded) {
				t.Fatalf("%s does not round-trip:\n%s\n%s", name, again, encoded)
			}
		})
	}
}

func goldenManifest() *Manifest {
	at := time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.UTC)
	one, two := int64(1), int64(2)
	return &Manifest{
		Version: FormatVersion, ID: "20261127T150405Z-k3f7qa", Graph: "g1", Time: at, Host: "rag-1",
		Source: "/srv/rag/g1", RootMode: 0o755, Parent: "20261127T140405Z-a1b2c3",
		Files: []FileEntry{
			{Path: "kv_store_full_docs.json", Type: TypeFile, Mode: 0o644, Size: 42, MTime: at, Inode: 7,
				SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
				Chunks: []ChunkRef{{ID: ChunkID{1, 2, 3}, Size: 42}},
				LightRAG: &FileCounts{Kind: "kv", Records: 3, Problem: "truncated",
					Keys: &NameSet{Count: 3, Sum: "00000000000000ff"}}},
			{Path: "graph_chunk_entity_relation.graphml", Type: TypeFile, Mode: 0o644, Size: 10, MTime: at,
				BLAKE3: "4878ca0425c739fa427f7eda20fe845f6b2e46ba5fe2a14df5b1e32f50603215",
				Chunks: []ChunkRef{{ID: ChunkID{4, 5, 6}, Size: 10, Pack: ChunkID{7, 8, 9}, Offset: 4096, Length: 30}},
				LightRAG: &FileCounts{Kind: "graphml", Nodes: 5, Edges: 4,
					Keys: &NameSet{Count: 5, Sum: "01"}, Pairs: &NameSet{Count: 4, Sum: "02"}}},
			{Path: "vdb_chunks.json", Type: TypeFile, Mode: 0o600, Size: 9, MTime: at,
				LightRAG: &FileCounts{Kind: "vdb", Records: 2, Dim: 1024, Rows: 2}},
			{Path: "inputs", Type: TypeDir, Mode: 0o755, MTime: at},
			{Path: "latest", Type: TypeSymlink, Mode: 0o777, MTime: at, Target: "inputs"},
		},
		Totals: Totals{Files: 3, Dirs: 1, Symlinks: 1, SizeBytes: 61, Chunks: 1, AddedBytes: 42, StoredBytes: 30},
		LightRAG: &GraphCounts{Nodes: 5, Edges: 4, Docs: 3, Chunks: 2, VectorRows: 2,
			Problems: []string{"kv_store_full_docs.json: truncated"}},
		Consistency: &Consistency{SingleInstant: true, Consistent: false, MidIngestion: true, Reason: "stores disagree",
			Invariants: []Invariant{
				{Name: "entities", Left: "graph nodes", Right: "vdb_entities.json entity_name", LeftCount: 5, RightCount: 4,
					OnlyLeft: &one, OnlyRight: &two, Holds: false},
				{Name: "documents", Left: "kv_store_full_docs.json keys", Right: "kv_store_doc_status.json processed documents",
					Holds: false, Unchecked: "kv_store_full_docs.json does not parse"},
			},
			QuietMS: 1500, WaitedMS: 2000, CutMS: 12, Attempts: 2, LastWrite: at, Pipeline: "busy"},
	}
}

func goldenCheckpoint() *Checkpoint {
	return &Checkpoint{
		Version: FormatVersion, ID: "20261127T150405Z-k3f7qa", Time: time.Date(2026, 11, 27, 15, 4, 5, 0, time.UTC), Note: "before upgrade",
		Snapshots: []CheckpointSnapshot{
			{Graph: "g1", ID: "20261127T150405Z-a1b2c3",
				LightRAG: &GraphCounts{Nodes: 5, Edges: 4, Docs: 3, Chunks: 2, VectorRows: 2, Problems: []string{"x: y"}}},
			{Graph: "g2", ID: "20261127T140405Z-a1b2c3", Note: "the newest snapshot was mid-ingestion"},
		},
	}
}
