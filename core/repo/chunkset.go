package repo

import (
	"bytes"
	"iter"
	"slices"
)

// ChunkSet is a set of chunks with their plaintext sizes, kept as one
// sorted array: 36 bytes a chunk (a Go map takes about 80), loaded from the
// kept index without rehashing, and searched in O(log n). A repository of
// 1,000,000 chunks indexes in 34 MiB.
type ChunkSet struct {
	sorted  []sizedChunk
	pending []sizedChunk // added since the last seal, unsorted
}

type sizedChunk struct {
	id   ChunkID
	size uint32
}

func compareSized(a, b sizedChunk) int { return bytes.Compare(a.id[:], b.id[:]) }

// add adds id (seal before searching).
func (s *ChunkSet) add(id ChunkID, size int) {
	s.pending = append(s.pending, sizedChunk{id, uint32(size)})
}

// addManifest adds every chunk m names.
func (s *ChunkSet) addManifest(m *Manifest) {
	for _, f := range m.Files {
		for _, c := range f.Chunks {
			s.add(c.ID, c.Size)
		}
	}
}

// seal merges what was added into the sorted array, once per batch.
func (s *ChunkSet) seal() {
	if len(s.pending) == 0 {
		return
	}
	slices.SortFunc(s.pending, compareSized)
	s.pending = slices.CompactFunc(s.pending, func(a, b sizedChunk) bool { return a.id == b.id })
	if len(s.sorted) == 0 {
		s.sorted, s.pending = s.pending, nil
		return
	}
	merged := make([]sizedChunk, 0, len(s.sorted)+len(s.pending))
	i, j := 0, 0
	for i < len(s.sorted) && j < len(s.pending) {
		switch c := compareSized(s.sorted[i], s.pending[j]); {
		case c < 0:
			merged = append(merged, s.sorted[i])
			i++
		case c > 0:
			merged = append(merged, s.pending[j])
			j++
		default:
			merged = append(merged, s.sorted[i])
			i++
			j++
		}
	}
	merged = append(merged, s.sorted[i:]...)
	merged = append(merged, s.pending[j:]...)
	s.sorted, s.pending = merged, nil
}

// Size returns id's plaintext size, and whether the set holds it.
func (s *ChunkSet) Size(id ChunkID) (int, bool) {
	if s == nil {
		return 0, false
	}
	i, ok := slices.BinarySearchFunc(s.sorted, id, func(e sizedChunk, id ChunkID) int { return bytes.Compare(e.id[:], id[:]) })
	if !ok {
		return 0, false
	}
	return int(s.sorted[i].size), true
}

// Has reports whether the set holds id.
func (s *ChunkSet) Has(id ChunkID) bool {
	_, ok := s.Size(id)
	return ok
}

// Len is how many chunks the set holds.
func (s *ChunkSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.sorted)
}

// All yields every chunk and its size, in id order.
func (s *ChunkSet) All() iter.Seq2[ChunkID, int] {
	return func(yield func(ChunkID, int) bool) {
		if s == nil {
			return
		}
		for _, c := range s.sorted {
			if !yield(c.id, int(c.size)) {
				return
			}
		}
	}
}
