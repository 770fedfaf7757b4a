package lightrag

import (
	"sort"
	"strconv"
)

// The statuses of a document LightRAG has not finished. Its pipeline takes
// every such document up again when it starts (1.5 first rolls back a
// resumed document's partial chunk rows), so a state whose only
// disagreement is those documents is one LightRAG recovers from by itself.
const (
	StatusPending    = "pending"
	StatusProcessing = "processing"
	StatusFailed     = "failed"
)

// DocState is one unfinished document and its status.
type DocState struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// MaxUnfinishedListed bounds how many unfinished documents are named (a
// bulk import may queue thousands; they are all counted).
const MaxUnfinishedListed = 100

// unfinishedDocs gathers the unfinished documents as the status store is
// read: every one counted, the first by id named.
type unfinishedDocs struct {
	listed []DocState
	counts map[string]int64
}

func (u *unfinishedDocs) add(id, status string) {
	if u.counts == nil {
		u.counts = map[string]int64{}
	}
	u.counts[status]++
	u.listed = append(u.listed, DocState{ID: id, Status: status})
	if len(u.listed) >= 2*MaxUnfinishedListed { // keep the smallest ids, in bounded memory
		u.trim()
	}
}

// result is the documents named (the first by id) and the counts.
func (u *unfinishedDocs) result() ([]DocState, map[string]int64) {
	u.trim()
	return u.listed, u.counts
}

func (u *unfinishedDocs) trim() {
	sort.Slice(u.listed, func(i, j int) bool { return u.listed[i].ID < u.listed[j].ID })
	if len(u.listed) > MaxUnfinishedListed {
		u.listed = u.listed[:MaxUnfinishedListed]
	}
}

// Resume is what a state LightRAG recovers from holds: the documents it
// will process again, the first of them named, and how many per status.
type Resume struct {
	Docs   []DocState       `json:"docs"`
	Counts map[string]int64 `json:"counts"`
}

// Total is how many documents LightRAG will process again.
func (r *Resume) Total() int64 {
	var n int64
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// Resumable reports whether the stores (files keyed by path, as Check takes
// them) are a state LightRAG resumes from: every invariant but the
// documents one holds, and the stored documents are exactly the processed
// ones and the unfinished ones (pending, processing or failed). It returns
// nil when they are not, or when the status store's unfinished documents
// were not recorded (validated by an older graphkeep).
func Resumable(files map[string]*FileStats, checked []Invariant) *Resume {
	for _, iv := range checked {
		if iv.Name != "documents" && !iv.Holds {
			return nil
		}
	}
	full, status := files[FullDocsFile], files[DocStatusFile]
	if full == nil || status == nil || full.Keys == nil || status.Keys == nil || status.Unfinished == nil || status.Unfinished.Keys == nil {
		return nil
	}
	if !sumOf(full.Keys, status.Keys, status.Unfinished.Keys) {
		return nil
	}
	docs := append([]DocState(nil), status.Unfinished.Docs...)
	sort.Slice(docs, func(i, j int) bool { return docs[i].ID < docs[j].ID })
	counts := map[string]int64{}
	for k, v := range status.Unfinished.Counts {
		counts[k] = v
	}
	return &Resume{Docs: docs, Counts: counts}
}

// sumOf reports whether whole holds exactly the names of a and b (which
// share none: a document has one status), by count and fingerprint.
func sumOf(whole, a, b *KeySet) bool {
	if whole.Count != a.Count+b.Count {
		return false
	}
	ws, err1 := strconv.ParseUint(whole.Sum, 16, 64)
	as, err2 := strconv.ParseUint(a.Sum, 16, 64)
	bs, err3 := strconv.ParseUint(b.Sum, 16, 64)
	return err1 == nil && err2 == nil && err3 == nil && ws == as+bs
}
