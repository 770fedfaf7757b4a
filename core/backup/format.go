package backup

import (
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/repo"
)

// The boundary between the validator's types and the repository format's:
// what lightrag finds is copied field by field into what repo stores, so a
// change to the validator cannot change the format unnoticed.

func graphCounts(s *lightrag.Stats) *repo.GraphCounts {
	if s == nil {
		return nil
	}
	return &repo.GraphCounts{Nodes: s.Nodes, Edges: s.Edges, Docs: s.Docs, Chunks: s.Chunks, VectorRows: s.VectorRows, Problems: s.Problems}
}

func fileCounts(f *lightrag.FileStats) *repo.FileCounts {
	if f == nil {
		return nil
	}
	fc := &repo.FileCounts{Kind: f.Kind, Nodes: f.Nodes, Edges: f.Edges, Records: f.Records, Dim: f.Dim, Rows: f.Rows,
		Problem: f.Problem, Keys: nameSet(f.Keys), Pairs: nameSet(f.Pairs)}
	if u := f.Unfinished; u != nil {
		fc.Unfinished = &repo.UnfinishedDocs{Keys: nameSet(u.Keys), Docs: docStates(u.Docs), Counts: u.Counts}
	}
	return fc
}

// fileStats is the validator's view of a file validated by an earlier
// backup: its names are known by fingerprint only.
func fileStats(f *repo.FileCounts) *lightrag.FileStats {
	if f == nil {
		return nil
	}
	st := &lightrag.FileStats{Kind: f.Kind, Nodes: f.Nodes, Edges: f.Edges, Records: f.Records, Dim: f.Dim, Rows: f.Rows,
		Problem: f.Problem, Keys: keySet(f.Keys), Pairs: keySet(f.Pairs)}
	if u := f.Unfinished; u != nil {
		st.Unfinished = &lightrag.Unfinished{Keys: keySet(u.Keys), Docs: lightragDocStates(u.Docs), Counts: u.Counts}
	}
	return st
}

func docStates(in []lightrag.DocState) []repo.DocState {
	if in == nil {
		return nil
	}
	out := make([]repo.DocState, len(in))
	for i, d := range in {
		out[i] = repo.DocState{ID: d.ID, Status: d.Status}
	}
	return out
}

func lightragDocStates(in []repo.DocState) []lightrag.DocState {
	if in == nil {
		return nil
	}
	out := make([]lightrag.DocState, len(in))
	for i, d := range in {
		out[i] = lightrag.DocState{ID: d.ID, Status: d.Status}
	}
	return out
}

// resume is what lightrag.Resumable found, in the manifest's terms.
func resume(r *lightrag.Resume) *repo.Resume {
	if r == nil {
		return nil
	}
	return &repo.Resume{Docs: docStates(r.Docs), Counts: r.Counts}
}

func nameSet(k *lightrag.KeySet) *repo.NameSet {
	if k == nil {
		return nil
	}
	return &repo.NameSet{Count: k.Count, Sum: k.Sum}
}

func keySet(n *repo.NameSet) *lightrag.KeySet {
	if n == nil {
		return nil
	}
	return &lightrag.KeySet{Count: n.Count, Sum: n.Sum}
}

func invariants(ivs []lightrag.Invariant) []repo.Invariant {
	if ivs == nil {
		return nil
	}
	out := make([]repo.Invariant, len(ivs))
	for i, iv := range ivs {
		out[i] = repo.Invariant{Name: iv.Name, Left: iv.Left, Right: iv.Right, LeftCount: iv.LeftCount, RightCount: iv.RightCount,
			OnlyLeft: iv.OnlyLeft, OnlyRight: iv.OnlyRight, Holds: iv.Holds, Unchecked: iv.Unchecked}
	}
	return out
}
