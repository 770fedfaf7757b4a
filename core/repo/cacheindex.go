package repo

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// indexFile keeps, beside the cached manifests, the snapshots last indexed
// and the chunks they name with their sizes, and when it was last checked
// against the listing, in a compact binary form:
//
//	"GKIDX3\\n" | int64 checked (Unix ns, 0: never) | uint32 sweeps | (uint8 len, sweep id)... |
//	uint32 snapshots | (uint8 len, snapshot key)... |
//	uint32 packs | 32-byte pack ids... in order |
//	uint32 records | ChunkSet records... in order | SHA-256 of all before
//
// It is a cache: any damage makes Index rebuild it from the manifests.
const indexFile = "index-v3.bin"

var indexMagic = []byte("GKIDX3\n")

// keptIndex is the content of indexFile.
type keptIndex struct {
	// The snapshots covered, by SnapshotRef.Key(): those read from the
	// file in order, those added since in no order, and the set of both,
	// made only when asked (a backup that trusts the index needs none).
	sorted  []string
	added   []string
	covered map[string]bool
	chunks  *ChunkSet
	// checked is when the sweep log was read before the last listing this
	// index was checked against; ended, the sweeps that log named ended.
	// Every chunk those sweeps deleted is out of the index.
	checked time.Time
	ended   map[string]bool
}

func newKeptIndex() *keptIndex {
	return &keptIndex{covered: map[string]bool{}, chunks: &ChunkSet{}, ended: map[string]bool{}}
}

// has reports whether the index covers the snapshot at key.
func (k *keptIndex) has(key string) bool {
	if k.covered == nil {
		k.covered = make(map[string]bool, len(k.sorted)+len(k.added))
		for _, key := range k.sorted {
			k.covered[key] = true
		}
		for _, key := range k.added {
			k.covered[key] = true
		}
	}
	return k.covered[key]
}

// indexTrusted is how long an index checked against the listing is
// trusted without another listing, while the sweep log shows no new
// sweep. Far below SweepLogKept, so no ended record a check needs has gone,
// whatever the clocks of the hosts say; and a bound on what a prune that
// leaves no record (a release from before records) can do unseen.
const indexTrusted = time.Hour

// trusted reports whether the index, as kept, names only chunks that are
// stored: no sweep is open, none has ended that it does not account for,
// and its last check is recent.
func (k *keptIndex) trusted(log SweepLog, now time.Time) bool {
	if log.Open || k.checked.IsZero() {
		return false
	}
	if age := now.Sub(k.checked); age < 0 || age > indexTrusted {
		return false
	}
	for _, id := range log.Ended {
		if !k.ended[id] {
			return false
		}
	}
	return true
}

// sortedKeys are the keys of the snapshots the index covers, in order.
func (k *keptIndex) sortedKeys() []string {
	if len(k.added) > 0 {
		slices.Sort(k.added)
		merged := make([]string, 0, len(k.sorted)+len(k.added))
		i, j := 0, 0
		for i < len(k.sorted) || j < len(k.added) {
			var key string
			if j == len(k.added) || i < len(k.sorted) && k.sorted[i] < k.added[j] {
				key = k.sorted[i]
				i++
			} else {
				key = k.added[j]
				j++
			}
			if len(merged) == 0 || merged[len(merged)-1] != key { // the journal may repeat one
				merged = append(merged, key)
			}
		}
		k.sorted, k.added = merged, nil
	}
	return k.sorted
}

// refs are the snapshots the index covers, in listing order.
func (k *keptIndex) refs() []SnapshotRef {
	keys := k.sortedKeys()
	refs := make([]SnapshotRef, 0, len(keys))
	for _, key := range keys {
		if ref, ok := parseSnapshotKey(key); ok {
			refs = append(refs, ref)
		}
	}
	return refs
}

func (k *keptIndex) add(ref SnapshotRef, m *Manifest) {
	k.cover(ref.Key())
	k.chunks.addManifest(m)
}

func (k *keptIndex) cover(key string) {
	if !k.has(key) {
		k.covered[key] = true
		k.added = append(k.added, key)
	}
}

// index is the Index for refs (the listing; snapshots forgotten since it
// are not in covered and name nothing here).
func (k *keptIndex) index(refs []SnapshotRef) *Index {
	k.chunks.seal()
	return &Index{Snapshots: refs, Chunks: k.chunks}
}

func (c *Cache) indexPath() string { return filepath.Join(c.dir, indexFile) }

// loadIndex reads indexFile and what journalFile adds to it.
func (c *Cache) loadIndex() (*keptIndex, error) {
	data, err := readWithRoom(c.indexPath(), c.journalRoom())
	if err != nil {
		return nil, err
	}
	k, err := decodeKeptIndex(data)
	if err != nil {
		return nil, err
	}
	c.readJournal(k)
	return k, nil
}

// journalRoom is what merging the journal's records (and a backup's new
// chunks, up to a few thousand) adds to the records read from indexFile.
// The records are the file's last bytes but its checksum, so the room
// after them lets the merge run in their own memory (mergeRecords): a
// backup of a repository of a million chunks then holds one copy of its
// 46 MiB index, not two.
func (c *Cache) journalRoom() int {
	room := 4096 * chunkRecord
	if info, err := os.Stat(c.journalPath()); err == nil {
		room += int(info.Size()/wideRecord+1) * chunkRecord
	}
	return room
}

// readWithRoom reads the file at path into a buffer with room more bytes
// of capacity.
func readWithRoom(path string, room int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data := make([]byte, info.Size(), info.Size()+int64(room))
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

// saveIndex writes the index atomically, and empties the journal it
// includes; a cache that cannot be written only costs speed.
func (c *Cache) saveIndex(k *keptIndex) {
	unlock := c.lockIndex()
	defer unlock()
	c.writeIndex(k)
}

// writeIndex is saveIndex for a caller holding lockIndex.
func (c *Cache) writeIndex(k *keptIndex) {
	if c.writeFileAtomically(c.indexPath(), k.writeTo) {
		_ = os.Remove(c.journalPath())
	}
}

// writeAtomically replaces the cache file at path with data and reports
// true, or leaves it as it was.
func (c *Cache) writeAtomically(path string, data []byte) bool {
	return c.writeFileAtomically(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeFileAtomically is writeAtomically with the content written by
// write (through a buffer), so a large file is never held whole in memory.
func (c *Cache) writeFileAtomically(path string, write func(io.Writer) error) bool {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return false
	}
	c.removeStaleTemps()
	tmp, err := os.CreateTemp(c.dir, ".tmp-index-*")
	if err != nil {
		return false
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	werr := write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		_ = os.Remove(tmp.Name())
		return false
	}
	return true
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

// writeTo writes the kept index to w, its SHA-256 last. The records go
// from the set's own memory: at a million chunks a copy would be 46 MiB
// more at the peak of a prune or a backup that saves the index.
func (k *keptIndex) writeTo(w io.Writer) error {
	k.chunks.seal()
	sum := sha256.New()
	out := io.MultiWriter(w, sum)
	var head bytes.Buffer
	keys := k.sortedKeys()
	head.Write(indexMagic)
	var checked int64
	if !k.checked.IsZero() {
		checked = k.checked.UnixNano()
	}
	head.Write(binary.BigEndian.AppendUint64(nil, uint64(checked)))
	writeKeys := func(keys []string) {
		head.Write(binary.BigEndian.AppendUint32(nil, uint32(len(keys))))
		for _, key := range keys { // snapshot keys and sweep ids: under 255 bytes
			head.WriteByte(byte(len(key)))
			head.WriteString(key)
		}
	}
	writeKeys(slices.Sorted(maps.Keys(k.ended)))
	writeKeys(keys)
	head.Write(binary.BigEndian.AppendUint32(nil, uint32(len(k.chunks.packs))))
	for _, p := range k.chunks.packs {
		head.Write(p[:])
	}
	head.Write(binary.BigEndian.AppendUint32(nil, uint32(len(k.chunks.records)/chunkRecord)))
	if _, err := out.Write(head.Bytes()); err != nil {
		return err
	}
	if _, err := out.Write(k.chunks.records); err != nil {
		return err
	}
	_, err := w.Write(sum.Sum(nil))
	return err
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
	// readKeys reads n (uint8 len, key) in increasing order: one string
	// for all of them, each key a part of it.
	readKeys := func(valid func(string) bool) ([]string, error) {
		n, err := count()
		if err != nil {
			return nil, err
		}
		if n > len(r) {
			return nil, errBadIndex
		}
		end := 0
		for range n {
			if end >= len(r) || end+1+int(r[end]) > len(r) {
				return nil, errBadIndex
			}
			end += 1 + int(r[end])
		}
		region, _ := next(end)
		text := string(region)
		keys := make([]string, 0, n)
		for at := 0; at < len(text); {
			key := text[at+1 : at+1+int(text[at])]
			at += 1 + len(key)
			if !valid(key) || len(keys) > 0 && key <= keys[len(keys)-1] {
				return nil, fmt.Errorf("%w: key %q", errBadIndex, key)
			}
			keys = append(keys, key)
		}
		return keys, nil
	}
	set := func(keys []string) map[string]bool {
		m := make(map[string]bool, len(keys))
		for _, key := range keys {
			m[key] = true
		}
		return m
	}
	k := newKeptIndex()
	checked, err := next(8)
	if err != nil {
		return nil, err
	}
	if ns := int64(binary.BigEndian.Uint64(checked)); ns != 0 {
		k.checked = time.Unix(0, ns)
	}
	ended, err := readKeys(func(id string) bool { return id != "" && !strings.Contains(id, "/") })
	if err != nil {
		return nil, err
	}
	k.ended = set(ended)
	if k.sorted, err = readKeys(validSnapshotKey); err != nil {
		return nil, err
	}
	k.covered = nil // made when asked
	npacks, err := count()
	if err != nil {
		return nil, err
	}
	if npacks > len(r)/32 {
		return nil, errBadIndex
	}
	table, err := next(npacks * 32)
	if err != nil {
		return nil, err
	}
	packs := make([]ChunkID, npacks)
	for i := range packs {
		packs[i] = ChunkID(table[i*32 : (i+1)*32])
	}
	chunks, err := count()
	if err != nil {
		return nil, err
	}
	if chunks > len(r)/chunkRecord {
		return nil, errBadIndex
	}
	records, err := next(chunks * chunkRecord)
	if err != nil {
		return nil, err
	}
	if err := k.chunks.setRecords(records, packs); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadIndex, err)
	}
	if len(r) != 0 {
		return nil, errBadIndex
	}
	return k, nil
}
