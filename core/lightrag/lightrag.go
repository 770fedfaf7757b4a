// Package lightrag understands LightRAG working directories well enough to
// tell a healthy graph from a torn one: the GraphML graph parses (keys mapped
// by attr.name), every JSON key-value store parses, and every vector store's
// matrix has exactly one embedding row per record. Validation streams: a
// vector store of hundreds of megabytes is checked in constant memory.
package lightrag

import (
	"path"
	"sort"
	"strings"
)

// File kinds.
const (
	KindGraphML = "graphml"
	KindKV      = "kv"
	KindVDB     = "vdb"
)

// The files whose counts a snapshot records and whose names the
// cross-file invariants compare.
const (
	GraphFile          = "graph_chunk_entity_relation.graphml"
	FullDocsFile       = "kv_store_full_docs.json"
	TextChunksFile     = "kv_store_text_chunks.json"
	DocStatusFile      = "kv_store_doc_status.json"
	EntityChunksFile   = "kv_store_entity_chunks.json"
	RelationChunksFile = "kv_store_relation_chunks.json"
	VDBEntitiesFile    = "vdb_entities.json"
	VDBRelationsFile   = "vdb_relationships.json"
	VDBChunksFile      = "vdb_chunks.json"
)

// collect says which names validation gathers from a file.
type collect int

const (
	collectNone        collect = iota
	collectKeys                // KV: top-level keys
	collectPairKeys            // KV: top-level keys "A<SEP>B"
	collectProcessed           // KV: keys whose record has status "processed"
	collectEntityNames         // VDB: entity_name of each record
	collectRelations           // VDB: (src_id, tgt_id) of each record
	collectIDs                 // VDB: __id__ of each record
	collectGraph               // GraphML: node ids and edges
)

// collectFor returns what to gather from the file at rel.
func collectFor(rel string) collect {
	switch rel {
	case GraphFile:
		return collectGraph
	case FullDocsFile, TextChunksFile, EntityChunksFile:
		return collectKeys
	case RelationChunksFile:
		return collectPairKeys
	case DocStatusFile:
		return collectProcessed
	case VDBEntitiesFile:
		return collectEntityNames
	case VDBRelationsFile:
		return collectRelations
	case VDBChunksFile:
		return collectIDs
	}
	return collectNone
}

// FileStats is what validation found in one file.
type FileStats struct {
	Kind string `json:"kind"`
	// GraphML: nodes and edges.
	Nodes int64 `json:"nodes,omitempty"`
	Edges int64 `json:"edges,omitempty"`
	// KV: top-level keys. VDB: entries of "data".
	Records int64 `json:"records,omitempty"`
	// VDB: embedding_dim and rows of the decoded matrix.
	Dim  int64 `json:"dim,omitempty"`
	Rows int64 `json:"rows,omitempty"`
	// Problem is empty for a healthy file.
	Problem string `json:"problem,omitempty"`
	// Keys and Pairs are the names the cross-file invariants compare (see
	// Check); nil for files no invariant involves.
	Keys  *KeySet `json:"keys,omitempty"`
	Pairs *KeySet `json:"pairs,omitempty"`
	// Unfinished is, for the document status store, the documents LightRAG
	// takes up again when it starts (nil for other files, and for a status
	// store validated by a graphkeep that did not record them).
	Unfinished *Unfinished `json:"unfinished,omitempty"`
}

// Unfinished are the documents of a status store that are pending,
// processing or failed: as a KeySet, the first MaxUnfinishedListed of them
// by id, and how many there are per status.
type Unfinished struct {
	Keys   *KeySet          `json:"keys"`
	Docs   []DocState       `json:"docs,omitempty"`
	Counts map[string]int64 `json:"counts,omitempty"`
}

// Stats summarise a graph.
type Stats struct {
	Nodes      int64 `json:"nodes"`
	Edges      int64 `json:"edges"`
	Docs       int64 `json:"docs"`
	Chunks     int64 `json:"chunks"`
	VectorRows int64 `json:"vector_rows"`
	// Problems lists what is wrong, one line per file; empty when healthy.
	Problems []string `json:"problems,omitempty"`
}

// Valid reports whether no problem was found.
func (s *Stats) Valid() bool { return s == nil || len(s.Problems) == 0 }

// KindOf returns the kind of a LightRAG file by its path relative to the
// graph directory, or "" when validation does not apply. LightRAG keeps its
// stores at the top of the workspace.
func KindOf(rel string) string {
	if strings.Contains(rel, "/") {
		return ""
	}
	name := path.Base(rel)
	switch {
	case name == GraphFile:
		return KindGraphML
	case strings.HasPrefix(name, "kv_store_") && strings.HasSuffix(name, ".json"):
		return KindKV
	case strings.HasPrefix(name, "vdb_") && strings.HasSuffix(name, ".json"):
		return KindVDB
	}
	return ""
}

// IsTransient reports whether a file is one LightRAG writes and renames
// away (name.tmp.*) or a lock file; backups skip them.
func IsTransient(name string) bool {
	base := path.Base(name)
	return strings.Contains(base, ".tmp.") || strings.HasSuffix(base, ".tmp") ||
		strings.HasSuffix(base, ".lock") || strings.HasSuffix(base, ".lck")
}

// Summarize adds up per-file results (keyed by relative path).
func Summarize(files map[string]*FileStats) *Stats {
	if len(files) == 0 {
		return nil
	}
	s := &Stats{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := files[name]
		if f == nil {
			continue
		}
		if f.Problem != "" {
			s.Problems = append(s.Problems, name+": "+f.Problem)
		}
		switch {
		case f.Kind == KindGraphML:
			s.Nodes, s.Edges = f.Nodes, f.Edges
		case name == FullDocsFile:
			s.Docs = f.Records
		case name == TextChunksFile:
			s.Chunks = f.Records
		case f.Kind == KindVDB:
			s.VectorRows += f.Rows
		}
	}
	return s
}
