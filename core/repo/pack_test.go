package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/local"
)

// testPack is a stored pack of chunks, as a backup writes one.
func testPack(r *Repository, id ChunkID, chunks ...[]byte) []byte {
	var parts [][]byte
	var refs []ChunkRef
	var off int64
	for _, c := range chunks {
		cid := r.HashChunk(c)
		enc := r.EncodeChunk(cid, c)
		refs = append(refs, ChunkRef{ID: cid, Size: len(c), Pack: id, Offset: off, Length: len(enc)})
		parts = append(parts, enc)
		off += int64(len(enc))
	}
	parts = append(parts, r.PackTail(id, refs))
	return bytes.Join(parts, nil)
}

func TestPackRoundTripsAndRefusesDamage(t *testing.T) {
	ctx := context.Background()
	for _, keys := range []*Keys{nil, newKeys(7)} {
		r := newRepoForTest(t, keys)
		a, b := bytes.Repeat([]byte("entity <SEP> "), 400), embeddings(2048, 5)
		id := NewPackID()
		stored := testPack(r, id, a, b)
		refs, err := r.OpenPack(id, stored)
		if err != nil || len(refs) != 2 || refs[1].Size != len(b) || refs[0].Pack != id {
			t.Fatalf("OpenPack = %+v, %v", refs, err)
		}
		if err := blob.PutBytes(ctx, r.store, ChunkKey(id), stored, nil); err != nil {
			t.Fatal(err)
		}
		for i, want := range [][]byte{a, b} {
			got, err := r.ReadRef(ctx, refs[i])
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("chunk %d read back: %v", i, err)
			}
		}

		// A byte flipped in a chunk, in the trailer, a trailer length past
		// the start, a pack read under another id: each refused.
		for name, damaged := range map[string][]byte{
			"chunk":   flip(stored, int(refs[1].Offset)+refs[1].Length/2),
			"trailer": flip(stored, len(stored)-10),
			"length":  append(bytes.Clone(stored[:len(stored)-4]), 0xff, 0xff, 0xff, 0xff),
			"short":   stored[:3],
		} {
			if _, err := r.OpenPack(id, damaged); !errors.Is(err, ErrCorrupt) && err == nil {
				t.Fatalf("%s: OpenPack of a damaged pack: %v", name, err)
			}
		}
		if _, err := r.OpenPack(NewPackID(), stored); err == nil {
			t.Fatal("a pack opened under another id")
		}

		// A manifest naming more stored bytes than the chunk can take
		// (damage) is not read as such (no 1 GiB buffer): the pack's
		// trailer says where the chunk is, and that is read and verified.
		huge := refs[0]
		huge.Length = 1 << 30
		if got, err := r.ReadRef(ctx, huge); err != nil || !bytes.Equal(got, a) {
			t.Fatalf("read of a chunk claiming 1 GiB stored: %v", err)
		}
		// Nor is a chunk the pack does not hold where the ref says.
		other := refs[0]
		other.Offset++
		if _, err := r.ReadRef(ctx, ChunkRef{ID: ChunkID{1}, Size: 10, Pack: id, Offset: 0, Length: 20}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read of a chunk the pack does not hold: %v", err)
		}
		if got, err := r.ReadRef(ctx, other); err != nil || !bytes.Equal(got, a) {
			t.Fatalf("read of a chunk one byte off its place: %v", err)
		}

		// A pack cut short: the chunk past its end is named as corrupt.
		if err := blob.PutBytes(ctx, r.store, ChunkKey(id), stored[:refs[1].Offset+10], nil); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadRef(ctx, refs[1]); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "pack ends before it") {
			t.Fatalf("read past a truncated pack: %v", err)
		}
	}
}

func flip(b []byte, at int) []byte {
	out := bytes.Clone(b)
	out[at] ^= 0x40
	return out
}

// A retrying store rewinds what it sends: the parts read the same after a
// seek back to the start, and from the middle.
func TestPartsReaderSeeks(t *testing.T) {
	parts := [][]byte{[]byte("abc"), {}, []byte("defgh"), []byte("i")}
	p := newPartsReader(parts)
	first, _ := io.ReadAll(p)
	if string(first) != "abcdefghi" || p.Len() != 0 {
		t.Fatalf("read %q", first)
	}
	if _, err := p.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 2)
	var again []byte
	for {
		n, err := p.Read(small)
		again = append(again, small[:n]...)
		if err == io.EOF {
			break
		}
	}
	if string(again) != "abcdefghi" {
		t.Fatalf("after a rewind, read %q", again)
	}
	if at, _ := p.Seek(-4, io.SeekEnd); at != 5 {
		t.Fatalf("seek from the end: %d", at)
	}
	rest, _ := io.ReadAll(p)
	if string(rest) != "fghi" {
		t.Fatalf("from 5: %q", rest)
	}
	if _, err := p.Seek(2, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if n, err := p.WriteTo(&out); err != nil || n != 7 || out.String() != "cdefghi" || p.Len() != 0 {
		t.Fatalf("WriteTo from 2: %d %q %v", n, out.String(), err)
	}
	if _, err := p.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("a negative position was accepted")
	}
}

// A chunk two backups stored at once, each in its own pack, keeps both
// places: both packs are referenced, the chunk counts once.
func TestChunkSetKeepsEveryPlace(t *testing.T) {
	var s ChunkSet
	id, other := ChunkID{1}, ChunkID{2}
	p1, p2 := ChunkID{9, 1}, ChunkID{9, 2}
	s.add(ChunkRef{ID: id, Size: 10, Pack: p1, Offset: 0, Length: 8})
	s.seal()
	s.add(ChunkRef{ID: id, Size: 10, Pack: p2, Offset: 100, Length: 8})
	s.add(ChunkRef{ID: other, Size: 5}) // stored on its own (format 1)
	s.seal()
	if !s.HasObject(p1) || !s.HasObject(p2) || !s.HasObject(other) || s.HasObject(id) || s.HasObject(ChunkID{3}) {
		t.Fatal("HasObject does not name exactly the two packs and the lone chunk")
	}
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2 chunks", s.Len())
	}
	ref, ok := s.Lookup(id)
	if !ok || (ref.Pack != p1 && ref.Pack != p2) || ref.Size != 10 || ref.Length != 8 {
		t.Fatalf("Lookup = %+v, %v", ref, ok)
	}
	objects := map[ChunkID]int64{}
	for o, n := range s.Objects() {
		objects[o] = n
	}
	if len(objects) != 3 || objects[p2] != 8 || objects[other] != 5 {
		t.Fatalf("Objects = %v", objects)
	}
}

// newRepoForTest is a packing repository over a fresh memory store.
func newRepoForTest(t *testing.T, keys *Keys) *Repository {
	t.Helper()
	fuzzStores++
	store, err := local.Open(context.Background(), fmt.Sprintf("mem://repo-pack-%d", fuzzStores), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Version: FormatVersion, ID: "0123456789abcdef0123456789abcdef", Pack: &PackConfig{Size: DefaultPackSize},
		Chunker:     ChunkerConfig{Algorithm: "fastcdc", MinSize: 1 << 12, AvgSize: 1 << 14, MaxSize: 1 << 16},
		Compression: CompressionConfig{Algorithm: "s2", Level: "fastest"}}
	r, err := newRepository(store, cfg, keys, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Packs added in later batches sort anywhere in the table: the records
// already sealed are renumbered, and every chunk still finds its own pack
// and place, also after the kept index is written and read back.
func TestChunkSetRenumbersPacks(t *testing.T) {
	k := newKeptIndex()
	want := map[ChunkID]ChunkRef{}
	for batch := range 4 {
		for i := range 50 {
			id := ChunkID{byte(batch), byte(i), 1}
			ref := ChunkRef{ID: id, Size: 1000 + i, Pack: ChunkID{byte(200 - batch*40 - i%3), byte(batch)}, Offset: int64(i * 10), Length: 7 + i}
			if i%10 == 0 {
				ref = ChunkRef{ID: id, Size: 5} // on its own
			}
			k.chunks.add(ref)
			want[id] = ref
		}
		k.chunks.seal()
	}
	check := func(what string, s *ChunkSet) {
		for id, ref := range want {
			got, ok := s.Lookup(id)
			if !ok || got != ref {
				t.Fatalf("%s: Lookup(%x) = %+v, %v; want %+v", what, id[:3], got, ok, ref)
			}
			if !s.HasObject(ref.Object()) {
				t.Fatalf("%s: %x not an object", what, ref.Object())
			}
		}
		if s.Len() != len(want) {
			t.Fatalf("%s: Len %d, want %d", what, s.Len(), len(want))
		}
	}
	check("sealed", k.chunks)
	var encoded bytes.Buffer
	if err := k.writeTo(&encoded); err != nil {
		t.Fatal(err)
	}
	back, err := decodeKeptIndex(encoded.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	check("read back", back.chunks)
}
