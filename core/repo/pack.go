package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/graphkeep/graphkeep/blob"
)

// A pack is one object under chunks/ holding several chunks, so that a
// backup stores ~8 MiB per request instead of one chunk (~0.3-1 MiB) per
// request: a store's cost is mostly per request (MinIO spent ~1.7 ms of
// CPU on each, a local folder a file create and rename, a cloud bucket a
// round trip and a fee).
//
// Layout: the chunks back to back, each sealed as a chunk of its own (so
// its AEAD tag or id still binds it to its id and a ranged read of it is a
// verification), then the trailer sealed as an object at the pack's key,
// then the trailer's stored length (big-endian uint32). The trailer:
//
//	"GKPACK1\n" | uint32 count | (32-byte id, uint32 size, uint32 offset, uint32 length)...
//
// Manifests name each chunk's pack, offset and length; the trailer makes a
// pack readable without them (undelete and audits). A pack's id is random:
// it names an object, never content, so two backups storing the same chunk
// at once store two packs, both referenced.

// DefaultPackSize is the stored bytes a backup puts in a pack before it
// starts another: big enough that a round trip of 30 ms and a store's
// per-request cost are small beside the transfer, small enough that a few
// packs in flight fit graphkeep's memory budget.
const DefaultPackSize = 8 << 20

// MaxPackSize bounds the configured pack size.
const MaxPackSize = 256 << 20

// PackConfig records how a repository packs chunks (format 2).
type PackConfig struct {
	// Size is the stored bytes a pack is filled to.
	Size int `json:"size"`
}

var packMagic = []byte("GKPACK1\n")

const packEntry = 32 + 4 + 4 + 4

// MaxStoredOverhead is the most a chunk's stored form exceeds its
// plaintext by (a chunk that does not compress: header, nonce and tag).
const MaxStoredOverhead = 64

// PlausibleLength reports whether a packed ref's stored length can be its
// chunk's: a manifest naming more is damaged (and would have a read take
// that much memory).
func (c ChunkRef) PlausibleLength() bool {
	return c.Length > 0 && c.Length <= c.Size+MaxStoredOverhead && c.Offset >= 0
}

// NewPackID returns a fresh random pack id.
func NewPackID() ChunkID {
	var id ChunkID
	_, _ = rand.Read(id[:])
	return id
}

// PackSize is the stored bytes a backup fills a pack to; 0: the repository
// stores each chunk as an object of its own (format 1).
func (r *Repository) PackSize() int {
	if r.cfg.Pack == nil {
		return 0
	}
	return r.cfg.Pack.Size
}

// PackTail returns what follows a pack's chunks: the sealed trailer naming
// refs (each with Pack == id and the offset and length it has in the pack)
// and its length.
func (r *Repository) PackTail(id ChunkID, refs []ChunkRef) []byte {
	plain := make([]byte, 0, len(packMagic)+4+len(refs)*packEntry)
	plain = append(plain, packMagic...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(refs)))
	for _, ref := range refs {
		plain = append(plain, ref.ID[:]...)
		plain = binary.BigEndian.AppendUint32(plain, uint32(ref.Size))
		plain = binary.BigEndian.AppendUint32(plain, uint32(ref.Offset))
		plain = binary.BigEndian.AppendUint32(plain, uint32(ref.Length))
	}
	sealed := r.sealObject(plain, ChunkKey(id))
	return binary.BigEndian.AppendUint32(sealed, uint32(len(sealed)))
}

// PutPackDeferred stores a pack from its parts (the sealed chunks in order,
// then PackTail) without copying them into one buffer; like
// PutChunkDeferred, it is durable once SyncChunks returns for id.
func (r *Repository) PutPackDeferred(ctx context.Context, id ChunkID, parts [][]byte) error {
	return r.store.Put(ctx, ChunkKey(id), newPartsReader(parts), &blob.PutOptions{DeferSync: true, Retain: r.retain()})
}

// OpenPack checks a whole stored pack and returns the chunks it holds,
// each read and verified (undelete uses it to tell a pack from garbage).
func (r *Repository) OpenPack(id ChunkID, stored []byte) ([]ChunkRef, error) {
	if len(stored) < 4 {
		return nil, fmt.Errorf("pack %s: %w: too short", id, ErrCorrupt)
	}
	n := int(binary.BigEndian.Uint32(stored[len(stored)-4:]))
	if n > len(stored)-4 {
		return nil, fmt.Errorf("pack %s: %w: trailer length %d past its start", id, ErrCorrupt, n)
	}
	end := len(stored) - 4 - n
	plain, err := r.openObject(stored[end:len(stored)-4], ChunkKey(id))
	if err != nil {
		return nil, fmt.Errorf("pack %s: trailer: %w", id, err)
	}
	refs, err := parsePackTrailer(id, plain, int64(end))
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		if _, err := r.DecodeChunk(ref.ID, stored[ref.Offset:ref.Offset+int64(ref.Length)]); err != nil {
			return nil, fmt.Errorf("pack %s: %w", id, err)
		}
	}
	return refs, nil
}

func parsePackTrailer(id ChunkID, plain []byte, end int64) ([]ChunkRef, error) {
	bad := func(what string) error { return fmt.Errorf("pack %s: %w: trailer %s", id, ErrCorrupt, what) }
	if !bytes.HasPrefix(plain, packMagic) || len(plain) < len(packMagic)+4 {
		return nil, bad("not a pack trailer")
	}
	rest := plain[len(packMagic):]
	count := int(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if len(rest) != count*packEntry {
		return nil, bad("of the wrong length")
	}
	refs := make([]ChunkRef, count)
	for i := range refs {
		e := rest[i*packEntry:]
		refs[i] = ChunkRef{ID: ChunkID(e[:32]), Size: int(binary.BigEndian.Uint32(e[32:])), Pack: id,
			Offset: int64(binary.BigEndian.Uint32(e[36:])), Length: int(binary.BigEndian.Uint32(e[40:]))}
		if refs[i].Offset+int64(refs[i].Length) > end {
			return nil, bad("names bytes past the chunks")
		}
	}
	return refs, nil
}

// PackIndex reads a pack's trailer: the chunks the pack holds now and
// where. A prune that compacts a pack moves its chunks, so a chunk not at
// the place its manifest names is looked up here.
func (r *Repository) PackIndex(ctx context.Context, id ChunkID) ([]ChunkRef, error) {
	key := ChunkKey(id)
	a, err := r.store.Stat(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id, err)
	}
	if a.Size < 4 {
		return nil, fmt.Errorf("pack %s: %w: too short", id, ErrCorrupt)
	}
	tail, err := readRange(ctx, r.store, key, a.Size-4, 4)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id, err)
	}
	n := int64(binary.BigEndian.Uint32(tail))
	if n > a.Size-4 || n > 64<<20 {
		return nil, fmt.Errorf("pack %s: %w: trailer length %d", id, ErrCorrupt, n)
	}
	sealed, err := readRange(ctx, r.store, key, a.Size-4-n, n)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id, err)
	}
	plain, err := r.openObject(sealed, key)
	if err != nil {
		return nil, fmt.Errorf("pack %s: trailer: %w", id, err)
	}
	return parsePackTrailer(id, plain, a.Size-4-n)
}

func readRange(ctx context.Context, s blob.Store, key string, off, n int64) ([]byte, error) {
	rc, err := s.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("%w: short read", ErrCorrupt)
	}
	return buf, nil
}

// Moved returns where a pack's trailer says ref's chunk is now, when that
// is not where ref says (a prune compacted the pack); ok is false when the
// pack does not hold it elsewhere. A trailer read before is used again.
func (r *Repository) Moved(ctx context.Context, ref ChunkRef) (ChunkRef, bool, error) {
	if at, ok := r.moved.place(ref); ok {
		return at, true, nil
	}
	return r.movedNow(ctx, ref)
}

// movedNow is Moved reading the pack's trailer afresh.
func (r *Repository) movedNow(ctx context.Context, ref ChunkRef) (ChunkRef, bool, error) {
	refs, err := r.PackIndex(ctx, ref.Pack)
	if err != nil {
		return ref, false, err
	}
	r.moved.put(ref.Pack, refs)
	at, ok := placeIn(refs, ref)
	return at, ok, nil
}

func placeIn(refs []ChunkRef, ref ChunkRef) (ChunkRef, bool) {
	for _, at := range refs {
		if at.ID == ref.ID && at.Size == ref.Size && (at.Offset != ref.Offset || at.Length != ref.Length) {
			return at, true
		}
	}
	return ref, false
}

// packIndexes keeps the trailers of the compacted packs a process read, so
// that a restore reading many chunks of one reads its trailer once. A pack
// compacted again since is read again: a chunk not at the place kept there
// sends the reader back to the pack's trailer.
type packIndexes struct {
	mu    sync.Mutex
	packs map[ChunkID][]ChunkRef
}

const keptPackIndexes = 4096

func (p *packIndexes) put(id ChunkID, refs []ChunkRef) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.packs == nil || len(p.packs) >= keptPackIndexes {
		p.packs = map[ChunkID][]ChunkRef{}
	}
	p.packs[id] = refs
}

// place is where the kept trailer of ref's pack puts its chunk, if kept
// and not where ref says.
func (p *packIndexes) place(ref ChunkRef) (ChunkRef, bool) {
	if p == nil {
		return ref, false
	}
	p.mu.Lock()
	refs, ok := p.packs[ref.Pack]
	p.mu.Unlock()
	if !ok {
		return ref, false
	}
	return placeIn(refs, ref)
}

// ReadRef fetches, decodes and verifies (re-deriving its id) the chunk
// ref names, wherever it is stored.
func (r *Repository) ReadRef(ctx context.Context, ref ChunkRef) ([]byte, error) {
	if !ref.Packed() {
		return r.ReadChunk(ctx, ref.ID)
	}
	plain, _, err := r.ReadRefInto(ctx, ref, nil, nil, CheckID)
	return plain, err
}

// ReadRefInto is ReadChunkInto for a chunk wherever it is stored: a
// packed chunk is read with a ranged read of its bytes.
func (r *Repository) ReadRefInto(ctx context.Context, ref ChunkRef, dst, scratch []byte, check Check) (plain, scratchOut []byte, err error) {
	if !ref.Packed() {
		return r.ReadChunkInto(ctx, ref.ID, dst, scratch, check)
	}
	at, _ := r.moved.place(ref)
	plain, scratch, err = r.readAt(ctx, at, dst, scratch, check)
	if err != nil && !errors.Is(err, blob.ErrNotFound) && ctx.Err() == nil {
		// Not where the manifest says: a compacted pack holds it elsewhere.
		if again, moved, merr := r.movedNow(ctx, ref); merr == nil && moved && again != at {
			return r.readAt(ctx, again, dst, scratch, check)
		}
	}
	return plain, scratch, err
}

// readAt reads a packed chunk at the place ref names.
func (r *Repository) readAt(ctx context.Context, ref ChunkRef, dst, scratch []byte, check Check) (plain, scratchOut []byte, err error) {
	if !ref.PlausibleLength() {
		return nil, scratch, fmt.Errorf("chunk %s: %w: its place in pack %s is %d+%d for %d bytes", ref.ID, ErrCorrupt, ref.Pack, ref.Offset, ref.Length, ref.Size)
	}
	rc, err := r.store.Get(ctx, ChunkKey(ref.Pack), ref.Offset, int64(ref.Length))
	if err != nil {
		return nil, scratch, fmt.Errorf("chunk %s in pack %s: %w", ref.ID, ref.Pack, err)
	}
	defer rc.Close()
	if cap(scratch) < ref.Length {
		scratch = make([]byte, ref.Length)
	}
	scratch = scratch[:ref.Length]
	if _, err := io.ReadFull(rc, scratch); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: the pack ends before it", ErrCorrupt)
		}
		return nil, scratch, fmt.Errorf("chunk %s in pack %s: %w", ref.ID, ref.Pack, err)
	}
	plain, err = r.DecodeStored(ref.ID, scratch, dst, check)
	return plain, scratch, err
}

// DecodeStored decodes a chunk's stored bytes into dst (grown when too
// small) and verifies it as check says.
func (r *Repository) DecodeStored(id ChunkID, stored, dst []byte, check Check) ([]byte, error) {
	if dst == nil {
		dst = []byte{}
	}
	plain, err := r.codec.decodeTo(dst, stored, ChunkKey(id), true)
	if err == nil && (check == CheckID || r.codec.aead == nil) {
		err = r.checkChunk(id, plain)
	}
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", id, err)
	}
	return plain, nil
}

// CompactPack rewrites pack id with only the chunks keep names (by id),
// under the same key, and returns the stored bytes it freed. Each chunk's
// stored bytes are copied as they are (each is sealed on its own), and the
// new trailer says where each now is: readers holding the old places find
// a chunk's new one there (ReadRefInto). The object is replaced whole or
// not at all. It fails when the pack does not hold every chunk keep names,
// and does nothing when keep names them all. The caller (prune) has made
// sure no writer relies on a chunk it drops.
func (r *Repository) CompactPack(ctx context.Context, id ChunkID, keep func(ChunkID) bool) (freed int64, err error) {
	stored, err := blob.ReadAll(ctx, r.store, ChunkKey(id))
	if err != nil {
		return 0, fmt.Errorf("pack %s: %w", id, err)
	}
	refs, err := r.OpenPack(id, stored)
	if err != nil {
		return 0, err
	}
	var kept []ChunkRef
	var parts [][]byte
	var off int64
	for _, ref := range refs {
		if !keep(ref.ID) {
			continue
		}
		data := stored[ref.Offset : ref.Offset+int64(ref.Length)]
		kept = append(kept, ChunkRef{ID: ref.ID, Size: ref.Size, Pack: id, Offset: off, Length: ref.Length})
		parts = append(parts, data)
		off += int64(ref.Length)
	}
	if len(kept) == len(refs) || len(kept) == 0 {
		return 0, nil // nothing to drop, or nothing to keep (prune deletes it)
	}
	parts = append(parts, r.PackTail(id, kept))
	body := newPartsReader(parts)
	size := body.size
	crashAt("compacting")
	if err := r.store.Put(ctx, ChunkKey(id), body, &blob.PutOptions{Retain: r.retain()}); err != nil {
		return 0, fmt.Errorf("compact pack %s: %w", id, err)
	}
	crashAt("compacted")
	return int64(len(stored)) - size, nil
}

// partsReader reads byte slices back to back; it seeks, so a retrying
// store can send them again.
type partsReader struct {
	parts [][]byte
	size  int64
	at    int64
}

func newPartsReader(parts [][]byte) *partsReader {
	var size int64
	for _, p := range parts {
		size += int64(len(p))
	}
	return &partsReader{parts: parts, size: size}
}

func (p *partsReader) Read(b []byte) (int, error) {
	if p.at >= p.size {
		return 0, io.EOF
	}
	n := 0
	off := p.at
	for _, part := range p.parts {
		if off >= int64(len(part)) {
			off -= int64(len(part))
			continue
		}
		c := copy(b[n:], part[off:])
		n += c
		off = 0
		if n == len(b) {
			break
		}
	}
	p.at += int64(n)
	return n, nil
}

func (p *partsReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.at
	case io.SeekEnd:
		offset += p.size
	default:
		return 0, errors.New("partsReader: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("partsReader: negative position")
	}
	p.at = offset
	return offset, nil
}

// WriteTo writes what is left part by part (a copy through a small buffer
// would cut each chunk into many writes).
func (p *partsReader) WriteTo(w io.Writer) (int64, error) {
	var written int64
	off := p.at
	for _, part := range p.parts {
		if off >= int64(len(part)) {
			off -= int64(len(part))
			continue
		}
		n, err := w.Write(part[off:])
		written += int64(n)
		p.at += int64(n)
		if err != nil {
			return written, err
		}
		off = 0
	}
	return written, nil
}

// Len is what is left to read (lets stores that want a length have it).
func (p *partsReader) Len() int { return int(max(0, p.size-p.at)) }
