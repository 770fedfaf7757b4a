package repo

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

func TestChunkSetMergesBatches(t *testing.T) {
	id := func(i int) ChunkID { return sha256.Sum256(fmt.Appendf(nil, "%d", i)) }
	var s ChunkSet
	for i := 0; i < 100; i += 2 {
		s.add(ChunkRef{ID: id(i), Size: i})
	}
	s.add(ChunkRef{ID: id(0)}) // a duplicate within a batch
	s.seal()
	for i := 0; i < 100; i += 3 { // overlaps the first batch
		s.add(ChunkRef{ID: id(i), Size: i})
	}
	s.seal()
	want := 0
	for i := 0; i < 100; i++ {
		if i%2 == 0 || i%3 == 0 {
			want++
		}
		size, ok := s.Size(id(i))
		if ok != (i%2 == 0 || i%3 == 0) || (ok && size != i) {
			t.Fatalf("chunk %d: size %d, present %v", i, size, ok)
		}
	}
	if s.Len() != want {
		t.Fatalf("Len = %d, want %d", s.Len(), want)
	}
	var prev *ChunkID
	n := 0
	for id := range s.All() {
		if prev != nil && string(prev[:]) >= string(id[:]) {
			t.Fatal("All is not in id order")
		}
		prev = &id
		n++
	}
	if n != want {
		t.Fatalf("All yields %d, want %d", n, want)
	}
	var none *ChunkSet
	if none.Has(id(1)) || none.Len() != 0 {
		t.Fatal("a nil set holds something")
	}
}
