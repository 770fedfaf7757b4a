package repo

import (
	"fmt"
	"sort"
	"strings"
)

// The LightRAG facts a snapshot records. They are the repository format's
// own types: the validator (core/lightrag) has its own, and core/backup
// converts at the boundary, so a change to the validator cannot change
// what is stored (testdata/*.golden.json pins the encoding).

// GraphCounts summarise a graph's LightRAG stores.
type GraphCounts struct {
	Nodes      int64 `json:"nodes"`
	Edges      int64 `json:"edges"`
	Docs       int64 `json:"docs"`
	Chunks     int64 `json:"chunks"`
	VectorRows int64 `json:"vector_rows"`
	// Problems lists what is wrong, one line per file; empty when healthy.
	Problems []string `json:"problems,omitempty"`
}

// Valid reports whether no problem was found.
func (c *GraphCounts) Valid() bool { return c == nil || len(c.Problems) == 0 }

// Equal compares the counts (not the problems).
func (c *GraphCounts) Equal(o *GraphCounts) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.Nodes == o.Nodes && c.Edges == o.Edges && c.Docs == o.Docs && c.Chunks == o.Chunks && c.VectorRows == o.VectorRows
}

func (c *GraphCounts) String() string {
	if c == nil {
		return "no LightRAG files"
	}
	return fmt.Sprintf("%d nodes, %d edges, %d docs, %d chunks, %d vector rows", c.Nodes, c.Edges, c.Docs, c.Chunks, c.VectorRows)
}

// FileCounts is what validation found in one LightRAG file.
type FileCounts struct {
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
	// Keys and Pairs fingerprint the names the cross-file invariants
	// compare, so an unchanged file reused by the next backup is compared
	// without being read; nil for files no invariant involves.
	Keys  *NameSet `json:"keys,omitempty"`
	Pairs *NameSet `json:"pairs,omitempty"`
	// Unfinished is, for the document status store, its documents that are
	// pending, processing or failed (nil for other files).
	Unfinished *UnfinishedDocs `json:"unfinished,omitempty"`
}

// UnfinishedDocs are a status store's documents LightRAG takes up again
// when it starts: fingerprinted, the first of them named, counted per
// status.
type UnfinishedDocs struct {
	Keys   *NameSet         `json:"keys"`
	Docs   []DocState       `json:"docs,omitempty"`
	Counts map[string]int64 `json:"counts,omitempty"`
}

// DocState is a document and its status.
type DocState struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Resume is what LightRAG does again when it starts on a resumable
// snapshot: the documents it processes again (the first of them named,
// all counted per status).
type Resume struct {
	Docs   []DocState       `json:"docs"`
	Counts map[string]int64 `json:"counts"`
}

// Total is how many documents LightRAG processes again.
func (r *Resume) Total() int64 {
	if r == nil {
		return 0
	}
	var n int64
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// String says it in a line: "3 documents (2 pending, 1 failed): doc-a, ...".
func (r *Resume) String() string {
	if r == nil {
		return ""
	}
	statuses := make([]string, 0, len(r.Counts))
	for s := range r.Counts {
		statuses = append(statuses, s)
	}
	sort.Strings(statuses)
	var per []string
	for _, s := range statuses {
		per = append(per, fmt.Sprintf("%d %s", r.Counts[s], s))
	}
	ids := make([]string, 0, min(len(r.Docs), 5))
	for _, d := range r.Docs[:min(len(r.Docs), 5)] {
		ids = append(ids, d.ID)
	}
	more := ""
	if n := r.Total() - int64(len(ids)); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	noun := "documents"
	if r.Total() == 1 {
		noun = "document"
	}
	return fmt.Sprintf("%d %s (%s): %s%s", r.Total(), noun, strings.Join(per, ", "), strings.Join(ids, ", "), more)
}

// NameSet fingerprints a set of names.
type NameSet struct {
	Count int64 `json:"count"`
	// Sum is the sum (mod 2^64, hex) of the hashes of the distinct names.
	Sum string `json:"sum"`
}

// Invariant is one cross-file rule of a LightRAG workspace as checked at
// the cut.
type Invariant struct {
	Name string `json:"name"`
	// Left and Right name the two sides (file and what is compared).
	Left       string `json:"left"`
	Right      string `json:"right"`
	LeftCount  int64  `json:"left_count"`
	RightCount int64  `json:"right_count"`
	// OnlyLeft and OnlyRight count the names one side has and the other
	// lacks; nil when unknown.
	OnlyLeft  *int64 `json:"only_left,omitempty"`
	OnlyRight *int64 `json:"only_right,omitempty"`
	Holds     bool   `json:"holds"`
	// Unchecked says why the rule could not be checked; such a rule does
	// not hold.
	Unchecked string `json:"unchecked,omitempty"`
}

// String describes the rule's outcome in one line.
func (iv Invariant) String() string {
	if iv.Unchecked != "" {
		return fmt.Sprintf("%s: not checked: %s", iv.Name, iv.Unchecked)
	}
	s := fmt.Sprintf("%s: %s has %d, %s has %d", iv.Name, iv.Left, iv.LeftCount, iv.Right, iv.RightCount)
	if iv.OnlyLeft != nil && iv.OnlyRight != nil {
		s += fmt.Sprintf(" (%d only in %s, %d only in %s)", *iv.OnlyLeft, sideFile(iv.Left), *iv.OnlyRight, sideFile(iv.Right))
	}
	return s
}

func sideFile(side string) string {
	name, _, _ := strings.Cut(side, " ")
	return name
}

// Broken describes, one line each, the invariants that did not hold at the
// cut; nil for a consistent cut or a manifest that recorded none.
func (c *Consistency) Broken() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, iv := range c.Invariants {
		if !iv.Holds {
			out = append(out, iv.String())
		}
	}
	return out
}
