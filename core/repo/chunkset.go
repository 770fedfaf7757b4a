package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"iter"
	"slices"
	"sort"
)

// ChunkSet is a set of chunks with their plaintext sizes and where each is
// stored, kept as one sorted run of 48-byte records (32-byte id, then
// big-endian uint32s: size, pack, offset and length in the pack) and a
// sorted table of the packs they name (a record's pack is its place in the
// table plus one; 0: the chunk is an object of its own). Loaded from the
// kept index as it lies in the file (no copy, no rehashing), and searched in
// O(log n). A repository of 1,000,000 chunks indexes in 46 MiB.
//
// A chunk stored in two places (two backups that stored it at once, each
// in its own pack) has a record for each: both places are referenced, and
// HasObject says so for both.
type ChunkSet struct {
	records []byte    // sorted by id, then pack
	packs   []ChunkID // sorted
	// pending are the records added since the last seal, in the order
	// added, each naming its pack by its place in added plus one (0: none);
	// seal renumbers them into packs.
	pending []byte
	added   []ChunkID
	addedAt map[ChunkID]uint32
}

const (
	chunkRecord = 48
	recSize     = 32
	recPack     = 36
	recOffset   = 40
	recLength   = 44
)

// wideRecord is a record naming its pack by id, as the journal keeps it:
// 32-byte id, uint32 size, 32-byte pack id (zeros: none), uint32 offset
// and length.
const wideRecord = 76

func (s *ChunkSet) record(i int) []byte { return s.records[i*chunkRecord : (i+1)*chunkRecord] }

// add adds ref (seal before searching). Its record is 48 bytes from the
// start: at a million chunks, adding all of them (as a prune does) holds
// 46 MiB of records, not 72 MiB in the journal's wide form.
func (s *ChunkSet) add(ref ChunkRef) {
	var at uint32
	if ref.Pack != (ChunkID{}) {
		// A file's chunks come in runs of one pack.
		if n := len(s.added); n > 0 && s.added[n-1] == ref.Pack {
			at = uint32(n)
		} else if known, ok := s.addedAt[ref.Pack]; ok {
			at = known
		} else {
			if s.addedAt == nil {
				s.addedAt = map[ChunkID]uint32{}
			}
			s.added = append(s.added, ref.Pack)
			at = uint32(len(s.added))
			s.addedAt[ref.Pack] = at
		}
	}
	s.pending = append(s.pending, ref.ID[:]...)
	s.pending = binary.BigEndian.AppendUint32(s.pending, uint32(ref.Size))
	s.pending = binary.BigEndian.AppendUint32(s.pending, at)
	if at == 0 {
		s.pending = append(s.pending, 0, 0, 0, 0, 0, 0, 0, 0)
		return
	}
	s.pending = binary.BigEndian.AppendUint32(s.pending, uint32(ref.Offset))
	s.pending = binary.BigEndian.AppendUint32(s.pending, uint32(ref.Length))
}

// wideRef reads a wide record.
func wideRef(w []byte) ChunkRef {
	return ChunkRef{ID: ChunkID(w[:32]), Size: int(binary.BigEndian.Uint32(w[32:])), Pack: ChunkID(w[36:68]),
		Offset: int64(binary.BigEndian.Uint32(w[68:])), Length: int(binary.BigEndian.Uint32(w[72:]))}
}

func appendWide(b []byte, ref ChunkRef) []byte {
	b = append(b, ref.ID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(ref.Size))
	b = append(b, ref.Pack[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(ref.Offset))
	return binary.BigEndian.AppendUint32(b, uint32(ref.Length))
}

func (s *ChunkSet) refOf(rec []byte) ChunkRef {
	ref := ChunkRef{ID: ChunkID(rec[:32]), Size: int(binary.BigEndian.Uint32(rec[recSize:]))}
	if p := binary.BigEndian.Uint32(rec[recPack:]); p > 0 {
		ref.Pack = s.packs[p-1]
		ref.Offset = int64(binary.BigEndian.Uint32(rec[recOffset:]))
		ref.Length = int(binary.BigEndian.Uint32(rec[recLength:]))
	}
	return ref
}

// records sorts records by id and pack.
type records []byte

func (r records) Len() int { return len(r) / chunkRecord }
func (r records) Less(i, j int) bool {
	return compareRecords(r[i*chunkRecord:], r[j*chunkRecord:]) < 0
}
func (r records) Swap(i, j int) {
	var tmp [chunkRecord]byte
	a, b := r[i*chunkRecord:(i+1)*chunkRecord], r[j*chunkRecord:(j+1)*chunkRecord]
	copy(tmp[:], a)
	copy(a, b)
	copy(b, tmp[:])
}

// compareRecords orders records by id, then pack.
func compareRecords(a, b []byte) int {
	if c := bytes.Compare(a[:32], b[:32]); c != 0 {
		return c
	}
	return bytes.Compare(a[recPack:recPack+4], b[recPack:recPack+4])
}

func compareIDs(a, b ChunkID) int { return bytes.Compare(a[:], b[:]) }

// sortedUnique sorts r and drops repeated (id, pack) records, in place.
func sortedUnique(r []byte) []byte {
	sort.Sort(records(r))
	out := 0
	for i := 0; i < len(r); i += chunkRecord {
		if out > 0 && compareRecords(r[out-chunkRecord:], r[i:]) == 0 {
			continue
		}
		copy(r[out:out+chunkRecord], r[i:i+chunkRecord])
		out += chunkRecord
	}
	return r[:out]
}

// AddManifest adds every chunk m names, each with its place; Seal makes
// them searchable. A set being added to is not safe for concurrent use.
func (s *ChunkSet) AddManifest(m *Manifest) { s.addManifest(m) }

// Seal makes what was added searchable.
func (s *ChunkSet) Seal() { s.seal() }

// Places is how many (chunk, place) pairs the set holds: a chunk stored in
// two packs counts twice.
func (s *ChunkSet) Places() int {
	if s == nil {
		return 0
	}
	return len(s.records) / chunkRecord
}

// Refs yields every chunk with each place it is stored, in id order.
func (s *ChunkSet) Refs() iter.Seq[ChunkRef] {
	return func(yield func(ChunkRef) bool) {
		if s == nil {
			return
		}
		for i := range len(s.records) / chunkRecord {
			if !yield(s.refOf(s.record(i))) {
				return
			}
		}
	}
}

// addManifest adds every chunk m names.
func (s *ChunkSet) addManifest(m *Manifest) {
	for _, f := range m.Files {
		for _, c := range f.Chunks {
			s.add(c)
		}
	}
}

// seal merges what was added into the sorted records, once per batch: the
// packs it names join the table (renumbering the records' packs when the
// table grows), then its records are merged in.
func (s *ChunkSet) seal() {
	if len(s.pending) == 0 {
		return
	}
	pending, added := s.pending, s.added
	s.pending, s.added, s.addedAt = nil, nil, nil
	// The packs named join the table; each pending record's pack then
	// becomes its place there.
	sorted := slices.SortedFunc(slices.Values(added), compareIDs)
	s.addPacks(sorted)
	place := make([]uint32, len(added)+1)
	for i, p := range added {
		j, _ := slices.BinarySearchFunc(s.packs, p, compareIDs)
		place[i+1] = uint32(j + 1)
	}
	for k := 0; k < len(pending); k += chunkRecord {
		at := pending[k+recPack : k+recPack+4]
		binary.BigEndian.PutUint32(at, place[binary.BigEndian.Uint32(at)])
	}
	pending = sortedUnique(pending)
	if len(s.records) == 0 {
		s.records = pending
		return
	}
	s.records = mergeRecords(s.records, pending)
}

// mergeRecords merges sorted, unique records into sorted, unique records,
// dropping those already there, back to front in have's own memory. When
// have has the room (the kept index is read with room for its journal),
// that is no second copy of the index; else have is first copied into a
// larger array.
func mergeRecords(have, add []byte) []byte {
	fresh := add[:0]
	for i := 0; i < len(add); i += chunkRecord {
		rec := add[i : i+chunkRecord]
		if k := searchRecord(have, rec); k == len(have) || compareRecords(have[k:], rec) != 0 {
			fresh = append(fresh, rec...) // over what was read: never ahead of it
		}
	}
	add = fresh
	total := len(have) + len(add)
	if cap(have) < total {
		grown := make([]byte, len(have), total)
		copy(grown, have)
		have = grown
	}
	// Back to front: w - i is the room still free before have's unmerged
	// records, so they are never overwritten before they are moved.
	out := have[:total]
	i, j := len(have)-chunkRecord, len(add)-chunkRecord
	for w := total - chunkRecord; j >= 0; w -= chunkRecord {
		if i >= 0 && compareRecords(have[i:], add[j:]) > 0 {
			copy(out[w:w+chunkRecord], have[i:i+chunkRecord])
			i -= chunkRecord
		} else {
			copy(out[w:w+chunkRecord], add[j:j+chunkRecord])
			j -= chunkRecord
		}
	}
	return out
}

// searchRecord is the offset of the first record of r not ordered before
// rec (len(r) when none).
func searchRecord(r, rec []byte) int {
	return chunkRecord * sort.Search(len(r)/chunkRecord, func(i int) bool {
		return compareRecords(r[i*chunkRecord:], rec) >= 0
	})
}

// addPacks merges sorted pack ids into the table and renumbers the
// records' packs in place (the order of the table, and so of the records,
// is kept).
func (s *ChunkSet) addPacks(added []ChunkID) {
	if len(added) == 0 {
		return
	}
	merged := make([]ChunkID, 0, len(s.packs)+len(added))
	moved := make([]uint32, len(s.packs)+1) // old number -> new
	i, j := 0, 0
	for i < len(s.packs) || j < len(added) {
		switch {
		case j == len(added) || i < len(s.packs) && compareIDs(s.packs[i], added[j]) < 0:
			merged = append(merged, s.packs[i])
			moved[i+1] = uint32(len(merged))
			i++
		case i < len(s.packs) && s.packs[i] == added[j]:
			merged = append(merged, s.packs[i])
			moved[i+1] = uint32(len(merged))
			i++
			j++
		default:
			merged = append(merged, added[j])
			j++
		}
	}
	if len(merged) != len(s.packs) {
		for k := 0; k < len(s.records); k += chunkRecord {
			at := s.records[k+recPack : k+recPack+4]
			if p := binary.BigEndian.Uint32(at); p > 0 {
				binary.BigEndian.PutUint32(at, moved[p])
			}
		}
	}
	s.packs = merged
}

// setRecords adopts sorted records and their pack table (from the kept
// index) without copying; it refuses them out of order or naming a pack
// the table lacks.
func (s *ChunkSet) setRecords(records []byte, packs []ChunkID) error {
	if len(records)%chunkRecord != 0 {
		return errors.New("chunk records of the wrong length")
	}
	for i := 1; i < len(packs); i++ {
		if compareIDs(packs[i-1], packs[i]) >= 0 {
			return errors.New("packs out of order")
		}
	}
	for i := 0; i < len(records); i += chunkRecord {
		if binary.BigEndian.Uint32(records[i+recPack:]) > uint32(len(packs)) {
			return errors.New("a chunk names a pack the index lacks")
		}
		if i > 0 && compareRecords(records[i-chunkRecord:], records[i:]) >= 0 {
			return errors.New("chunks out of order")
		}
	}
	s.records, s.packs = records, packs
	s.pending, s.added, s.addedAt = nil, nil, nil
	return nil
}

// first is the index of the first record of id, or -1.
func (s *ChunkSet) first(id ChunkID) int {
	n := len(s.records) / chunkRecord
	i := sort.Search(n, func(i int) bool { return bytes.Compare(s.record(i)[:32], id[:]) >= 0 })
	if i < n && bytes.Equal(s.record(i)[:32], id[:]) {
		return i
	}
	return -1
}

// Lookup returns a reference to id as stored (its size, and its pack and
// place in it), and whether the set holds it.
func (s *ChunkSet) Lookup(id ChunkID) (ChunkRef, bool) {
	if s == nil {
		return ChunkRef{}, false
	}
	i := s.first(id)
	if i < 0 {
		return ChunkRef{}, false
	}
	return s.refOf(s.record(i)), true
}

// Size returns id's plaintext size, and whether the set holds it.
func (s *ChunkSet) Size(id ChunkID) (int, bool) {
	ref, ok := s.Lookup(id)
	return ref.Size, ok
}

// Has reports whether the set holds id.
func (s *ChunkSet) Has(id ChunkID) bool {
	_, ok := s.Lookup(id)
	return ok
}

// HasObject reports whether a chunk of the set is stored in the object
// ChunkKey(id): a pack holding one, or the chunk id stored on its own.
func (s *ChunkSet) HasObject(id ChunkID) bool {
	if s == nil {
		return false
	}
	// A chunk of its own sorts first among its id's records.
	if i := s.first(id); i >= 0 && binary.BigEndian.Uint32(s.record(i)[recPack:]) == 0 {
		return true
	}
	_, found := slices.BinarySearchFunc(s.packs, id, compareIDs)
	return found
}

// HasIn reports whether the set holds chunk id stored in pack.
func (s *ChunkSet) HasIn(id, pack ChunkID) bool {
	if s == nil {
		return false
	}
	j, found := slices.BinarySearchFunc(s.packs, pack, compareIDs)
	if !found {
		return false
	}
	for i := s.first(id); i >= 0 && i < len(s.records)/chunkRecord && bytes.Equal(s.record(i)[:32], id[:]); i++ {
		if binary.BigEndian.Uint32(s.record(i)[recPack:]) == uint32(j+1) {
			return true
		}
	}
	return false
}

// Len is how many distinct chunks the set holds.
func (s *ChunkSet) Len() int {
	n := 0
	for range s.All() {
		n++
	}
	return n
}

// All yields every chunk and its size, in id order, once each.
func (s *ChunkSet) All() iter.Seq2[ChunkID, int] {
	return func(yield func(ChunkID, int) bool) {
		if s == nil {
			return
		}
		for i := range len(s.records) / chunkRecord {
			rec := s.record(i)
			if i > 0 && bytes.Equal(s.record(i - 1)[:32], rec[:32]) {
				continue
			}
			if !yield(ChunkID(rec[:32]), int(binary.BigEndian.Uint32(rec[recSize:]))) {
				return
			}
		}
	}
}

// Objects yields every object under chunks/ the set's chunks are stored
// in (chunks stored on their own, then packs), once each, with the stored
// bytes of the set's chunks in it (a lone chunk's plaintext size).
func (s *ChunkSet) Objects() iter.Seq2[ChunkID, int64] {
	return func(yield func(ChunkID, int64) bool) {
		if s == nil {
			return
		}
		for i := range len(s.records) / chunkRecord {
			rec := s.record(i)
			if binary.BigEndian.Uint32(rec[recPack:]) == 0 {
				if !yield(ChunkID(rec[:32]), int64(binary.BigEndian.Uint32(rec[recSize:]))) {
					return
				}
			}
		}
		for id, n := range s.Packs() {
			if !yield(id, n) {
				return
			}
		}
	}
}

// Packs yields every pack the set's chunks are stored in, once each, with
// the stored bytes of the set's chunks in it.
func (s *ChunkSet) Packs() iter.Seq2[ChunkID, int64] {
	return func(yield func(ChunkID, int64) bool) {
		if s == nil || len(s.packs) == 0 {
			return
		}
		inPack := make([]int64, len(s.packs))
		for i := range len(s.records) / chunkRecord {
			rec := s.record(i)
			if p := binary.BigEndian.Uint32(rec[recPack:]); p > 0 {
				inPack[p-1] += int64(binary.BigEndian.Uint32(rec[recLength:]))
			}
		}
		for i, id := range s.packs {
			if !yield(id, inPack[i]) {
				return
			}
		}
	}
}
