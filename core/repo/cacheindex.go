package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// indexFile keeps, beside the cached manifests, the snapshots last indexed
// and the chunks they name with their sizes, in a compact binary form:
//
//	"GKIDX1\\n" | uint32 snapshots | (uint8 len, graph, uint8 len, id)... |
//	uint32 chunks | (32-byte id, uint32 size)... in id order | SHA-256 of all before
//
// It is a cache: any damage makes Index rebuild it from the manifests.
const indexFile = "index-v1.bin"

var indexMagic = []byte("GKIDX1\n")

// keptIndex is the content of indexFile.
type keptIndex struct {
	covered map[string]bool // SnapshotRef.Key()
	chunks  *ChunkSet
}

func newKeptIndex() *keptIndex {
	return &keptIndex{covered: map[string]bool{}, chunks: &ChunkSet{}}
}

func (k *keptIndex) add(ref SnapshotRef, m *Manifest) {
	k.covered[ref.Key()] = true
	k.chunks.addManifest(m)
}

// index is the Index for refs (the listing; snapshots forgotten since it
// are not in covered and name nothing here).
func (k *keptIndex) index(refs []SnapshotRef) *Index {
	k.chunks.seal()
	return &Index{Snapshots: refs, Chunks: k.chunks}
}

func (c *Cache) indexPath() string { return filepath.Join(c.dir, indexFile) }

func (c *Cache) loadIndex() (*keptIndex, error) {
	data, err := os.ReadFile(c.indexPath())
	if err != nil {
		return nil, err
	}
	return decodeKeptIndex(data)
}

// saveIndex writes the index atomically; a cache that cannot be written
// only costs speed.
func (c *Cache) saveIndex(k *keptIndex) { c.writeAtomically(c.indexPath(), k.encode()) }

// writeAtomically replaces the cache file at path with data, or leaves it
// as it was.
func (c *Cache) writeAtomically(path string, data []byte) {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return
	}
	c.removeStaleTemps()
	tmp, err := os.CreateTemp(c.dir, ".tmp-index-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		_ = os.Remove(tmp.Name())
	}
}

// removeStaleTemps removes the temporary files of index writes that a
// killed process left (an hour old: no live write takes that long).
func (c *Cache) removeStaleTemps() {
	old, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-index-*"))
	for _, p := range old {
		if info, err := os.Stat(p); err == nil && time.Since(info.ModTime()) > time.Hour {
			_ = os.Remove(p)
		}
	}
}

func (k *keptIndex) encode() []byte {
	k.chunks.seal()
	var b bytes.Buffer
	b.Grow(len(indexMagic) + 8 + len(k.covered)*48 + k.chunks.Len()*36 + sha256.Size)
	b.Write(indexMagic)
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(k.covered))))
	for key := range k.covered { // "snapshots/<graph>/<id>": under 255 bytes
		b.WriteByte(byte(len(key)))
		b.WriteString(key)
	}
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(k.chunks.Len())))
	b.Write(k.chunks.records)
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

var errBadIndex = errors.New("damaged index file")

func decodeKeptIndex(data []byte) (*keptIndex, error) {
	if len(data) < len(indexMagic)+sha256.Size || !bytes.HasPrefix(data, indexMagic) {
		return nil, errBadIndex
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errBadIndex
	}
	r := body[len(indexMagic):]
	next := func(n int) ([]byte, error) {
		if n > len(r) {
			return nil, errBadIndex
		}
		out := r[:n]
		r = r[n:]
		return out, nil
	}
	count := func() (int, error) {
		b, err := next(4)
		if err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint32(b)), nil
	}
	k := newKeptIndex()
	refs, err := count()
	if err != nil {
		return nil, err
	}
	for range refs {
		n, err := next(1)
		if err != nil {
			return nil, err
		}
		key, err := next(int(n[0]))
		if err != nil {
			return nil, err
		}
		if _, ok := parseSnapshotKey(string(key)); !ok {
			return nil, fmt.Errorf("%w: snapshot key %q", errBadIndex, key)
		}
		k.covered[string(key)] = true
	}
	chunks, err := count()
	if err != nil {
		return nil, err
	}
	if chunks > len(r)/36 {
		return nil, errBadIndex
	}
	records, err := next(chunks * chunkRecord)
	if err != nil {
		return nil, err
	}
	if err := k.chunks.setRecords(records); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadIndex, err)
	}
	if len(r) != 0 {
		return nil, errBadIndex
	}
	return k, nil
}
