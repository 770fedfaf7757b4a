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

// Records with room after them (the kept index is read so) take a batch in
// their own memory, back to front, and end as a set built in one batch
// would: the same records, new packs renumbering the old ones, records
// already there (same chunk, same pack) not repeated, a chunk in a second
// pack kept twice.
func TestChunkSetMergesInPlace(t *testing.T) {
	id := func(i int) ChunkID { return sha256.Sum256(fmt.Appendf(nil, "%d", i)) }
	ref := func(i int) ChunkRef {
		r := ChunkRef{ID: id(i), Size: 100 + i}
		if i%4 != 0 { // every fourth chunk an object of its own
			r.Pack, r.Offset, r.Length = id(1000+i%7), int64(i*10), 50+i
		}
		return r
	}
	var first, all ChunkSet
	for i := 0; i < 300; i += 2 {
		first.add(ref(i))
		all.add(ref(i))
	}
	first.seal()
	// As loadIndex leaves them: room after the records.
	roomy := make([]byte, len(first.records), len(first.records)+200*chunkRecord)
	copy(roomy, first.records)
	if err := first.setRecords(roomy, first.packs); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 300; i += 3 { // overlaps the first batch
		r := ref(i)
		r.Pack = id(2000 + i%5) // packs the table lacks, sorting among the old
		first.add(r)
		all.add(r)
	}
	first.add(ref(0)) // already there
	first.add(ref(4))
	again := ref(10)
	again.Pack, again.Offset, again.Length = id(3000), 0, 60 // stored twice
	first.add(again)
	all.add(again)
	first.seal()
	all.seal()
	if &first.records[0] != &roomy[0] {
		t.Fatal("the merge did not run in the records' own memory")
	}
	if string(first.records) != string(all.records) || len(first.packs) != len(all.packs) {
		t.Fatalf("merged in place: %d records, %d packs; built at once: %d records, %d packs",
			len(first.records)/chunkRecord, len(first.packs), len(all.records)/chunkRecord, len(all.packs))
	}
	for i := 0; i < 300; i++ {
		got, ok := first.Lookup(id(i))
		want, wok := all.Lookup(id(i))
		if ok != wok || got != want {
			t.Fatalf("chunk %d: %+v %v, want %+v %v", i, got, ok, want, wok)
		}
	}
	if !first.HasIn(id(10), id(3000)) || !first.HasIn(id(10), ref(10).Pack) {
		t.Fatal("a chunk stored in two packs lost one")
	}
	// Without the room, the merge copies, to the same result.
	var tight ChunkSet
	for i := 0; i < 300; i += 2 {
		tight.add(ref(i))
	}
	tight.seal()
	tight.records = tight.records[:len(tight.records):len(tight.records)]
	for i := 1; i < 300; i += 3 {
		r := ref(i)
		r.Pack = id(2000 + i%5)
		tight.add(r)
	}
	tight.add(again)
	tight.seal()
	if string(tight.records) != string(all.records) {
		t.Fatal("the copying merge differs from a set built at once")
	}
}
