package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
)

// journalFile holds the snapshots added to the kept index since indexFile
// was last written (Cache.Add), so that adding one costs an append of its
// own size instead of a rewrite of the whole index (46 MiB at a million
// chunks). Each entry:
//
//	uint32 payload length | payload | SHA-256 of payload
//	payload: uint8 len, snapshot key | ChunkSet wide records (76 bytes)...
//
// A torn or damaged entry ends the journal: what follows is not read. A
// snapshot missing from the index costs speed (its manifest is read
// again, its chunks stored again), never correctness.
const journalFile = "index-v3.add"

// Add folds the journal into the index once it passes a quarter of the
// index's size (so rewriting the index costs at most four times what was
// appended) and journalMinCompact.
const journalMinCompact = 256 << 10

func (c *Cache) journalPath() string { return filepath.Join(c.dir, journalFile) }

// appendJournal appends ms to the journal and returns its new size. The
// caller holds lockIndex.
func (c *Cache) appendJournal(ms []*Manifest) (int64, error) {
	var b bytes.Buffer
	for _, m := range ms {
		key := m.Ref().Key()
		payload := []byte{byte(len(key))}
		payload = append(payload, key...)
		for _, f := range m.Files {
			for _, c := range f.Chunks {
				payload = appendWide(payload, c)
			}
		}
		sum := sha256.Sum256(payload)
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(payload))))
		b.Write(payload)
		b.Write(sum[:])
	}
	f, err := os.OpenFile(c.journalPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	end, err := journalEnd(f)
	if err != nil {
		return 0, err
	}
	if _, err := f.WriteAt(b.Bytes(), end); err != nil {
		return 0, err
	}
	size := end + int64(b.Len())
	return size, f.Truncate(size)
}

// journalEnd is the end of the journal's last whole entry, found from the
// entries' lengths: appends go there, over what a killed append tore.
func journalEnd(f *os.File) (int64, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var end int64
	var header [4]byte
	for end+4 <= info.Size() {
		if _, err := f.ReadAt(header[:], end); err != nil {
			return 0, err
		}
		next := end + 4 + int64(binary.BigEndian.Uint32(header[:])) + sha256.Size
		if next > info.Size() {
			break
		}
		end = next
	}
	return end, nil
}

// readJournal adds the journal's whole entries to k.
func (c *Cache) readJournal(k *keptIndex) {
	data, err := os.ReadFile(c.journalPath())
	if err != nil {
		return
	}
	for len(data) >= 4 {
		n := int(binary.BigEndian.Uint32(data))
		if n < 1 || len(data) < 4+n+sha256.Size {
			return
		}
		payload, sum := data[4:4+n], data[4+n:4+n+sha256.Size]
		if got := sha256.Sum256(payload); !bytes.Equal(got[:], sum) {
			return
		}
		data = data[4+n+sha256.Size:]
		size := int(payload[0])
		if 1+size > len(payload) || (len(payload)-1-size)%wideRecord != 0 {
			return
		}
		key := string(payload[1 : 1+size])
		if !validSnapshotKey(key) {
			return
		}
		k.added = append(k.added, key) // not cover: no set made for it
		if k.covered != nil {
			k.covered[key] = true
		}
		for w := payload[1+size:]; len(w) > 0; w = w[wideRecord:] {
			k.chunks.add(wideRef(w))
		}
	}
}
