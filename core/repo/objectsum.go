package repo

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Objects that are not content-addressed (manifests, checkpoints, meta/)
// carry a checksum in every repository. Encrypted ones have it already:
// AES-GCM authenticates each against its key. In a repository without a
// password, sealObject appends SHA-256(repo id, key, stored bytes) and sets
// flagChecksum: a flipped bit, an object moved to another key, or one from
// another repository (a swapped graphkeep.repo) is caught on read and named.
// Chunks need none: every read re-derives their id.

// flagChecksum: a 32-byte checksum trails the object (see sealObject).
const flagChecksum byte = 1 << 4

const checksumSize = sha256.Size

// sealObject encodes plain for storage at key.
func (r *Repository) sealObject(plain []byte, key string) []byte {
	stored := r.codec.encode(plain, key)
	if r.keys != nil {
		return stored
	}
	stored[0] |= flagChecksum
	sum := objectChecksum(r.cfg.ID, key, stored)
	return append(stored, sum[:]...)
}

// openObject checks and decodes an object read from key. Objects written
// before checksums existed (no flag) are read as they are.
func (r *Repository) openObject(stored []byte, key string) ([]byte, error) {
	if len(stored) > 0 && stored[0]&flagChecksum != 0 {
		if r.keys != nil || len(stored) < 1+checksumSize {
			return nil, fmt.Errorf("%s: %w: bad checksum trailer", key, ErrCorrupt)
		}
		body, sum := stored[:len(stored)-checksumSize], stored[len(stored)-checksumSize:]
		want := objectChecksum(r.cfg.ID, key, body)
		if subtle.ConstantTimeCompare(sum, want[:]) != 1 {
			return nil, fmt.Errorf("%s: %w: checksum mismatch: the object is damaged, was moved from another key, or belongs to another repository than %s's %s",
				key, ErrCorrupt, r.cfg.ID, ConfigKey)
		}
		clean := append([]byte{body[0] &^ flagChecksum}, body[1:]...)
		return r.codec.decode(clean, key)
	}
	plain, err := r.codec.decode(stored, key)
	if err != nil {
		if r.keys != nil {
			return nil, fmt.Errorf("%s: %w (or %s is not this repository's: copy the right one from a replica)", key, err, ConfigKey)
		}
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return plain, nil
}

func objectChecksum(repoID, key string, body []byte) [checksumSize]byte {
	h := sha256.New()
	h.Write([]byte("graphkeep object\x00" + repoID + "\x00" + key + "\x00"))
	h.Write(body)
	var sum [checksumSize]byte
	h.Sum(sum[:0])
	return sum
}

// configChecksum is the checksum graphkeep.repo carries of itself: over
// its JSON with the checksum field empty, and without the fields format 3
// added (chunk_ids). A release from before format 3 drops what it does not
// know and checks the rest against this sum; were the new field in it, that
// release would call a format 3 config corrupt (and tell its user to copy
// it from a replica) instead of reaching the version it does not read.
// The field is checked anyway: validateFormat ties it to the version,
// which the sum covers.
func configChecksum(cfg Config) string {
	cfg.Checksum = ""
	cfg.ChunkIDs = ""
	data, _ := json.Marshal(cfg)
	sum := sha256.Sum256(append([]byte("graphkeep.repo\x00"), data...))
	return hex.EncodeToString(sum[:])
}
