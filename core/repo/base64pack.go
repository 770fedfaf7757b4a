package repo

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"
)

// Embedding matrices (base64 of float32 rows) are most of a LightRAG
// workspace. Their bytes are random to a compressor; what is redundant is
// the encoding itself: 4 characters carry 3 bytes. A chunk that is mostly
// base64 is stored with its runs of base64 decoded ("packed"), which is
// exactly 3/4 of the size, lossless (4 characters from the alphabet and 3
// bytes map one to one), and runs at memory speed both ways: over twice as
// fast as Huffman coding (huff0, which earlier versions used and which is
// still read, see huff.go) for ~7% more bytes.
//
// Payload: segments until the end, each
//
//	u32le literal length, the literal bytes,
//	u32le packed groups, 3 bytes per group (re-encoded to 4 characters).
//
// The last segment has zero groups.

// minPackedRun is the shortest run of base64 characters worth a segment
// (8 bytes of framing).
const minPackedRun = 256

var errPackFraming = errors.New("base64 pack framing")

// base64Values maps a base64 character to its 6-bit value, anything else to
// 0xff.
var base64Values = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = byte(i)
	}
	return t
}()

// packBase64To appends the packed form of data to dst; ok is false when it
// would not pay.
func packBase64To(dst, data []byte) (out []byte, ok bool) {
	start := len(dst)
	// Packing never grows the data by more than the framing of the
	// segments, so one allocation (with decoder slack) is enough.
	out = slices.Grow(dst, len(data)+len(data)/minPackedRun*8+16)
	seg := len(out) // where this segment's literal length goes
	out = append(out, 0, 0, 0, 0)
	from := 0 // first byte of data not yet in out
	for i := 0; i < len(data); {
		if base64Values[data[i]] == 0xff {
			i++
			continue
		}
		// Decode the run starting here straight to where its groups would
		// go if it is long enough; a short run is left as literal bytes.
		lit := data[from:i]
		at := len(out) + len(lit) + 4
		room := out[at:cap(out)]
		groups := unpackGroups(room, data[i:])
		if groups*4 < minPackedRun {
			i += groups * 4
			for i < len(data) && base64Values[data[i]] != 0xff {
				i++
			}
			continue
		}
		out = append(out, lit...)
		binary.LittleEndian.PutUint32(out[seg:], uint32(len(lit)))
		out = binary.LittleEndian.AppendUint32(out, uint32(groups))
		out = out[:at+3*groups]
		i += groups * 4
		from = i
		seg = len(out)
		out = append(out, 0, 0, 0, 0)
	}
	out = append(out, data[from:]...)
	binary.LittleEndian.PutUint32(out[seg:], uint32(len(data)-from))
	out = append(out, 0, 0, 0, 0)
	return out, len(out)-start < len(data)-len(data)/64
}

// base64PairValues maps two base64 characters, read as a little-endian
// uint16, to the 12 bits they carry, and any pair holding a character
// outside the alphabet to 0xffff: a group of four is two lookups. Built on
// first use (128 KiB).
var base64PairValues = sync.OnceValue(func() *[1 << 16]uint16 {
	var t [1 << 16]uint16
	for i := range t {
		a, b := base64Values[byte(i)], base64Values[byte(i>>8)]
		if a == 0xff || b == 0xff {
			t[i] = 0xffff
		} else {
			t[i] = uint16(a)<<6 | uint16(b)
		}
	}
	return &t
})

// unpackGroups decodes whole 4-character groups of base64 from src into
// dst until a group holds a character outside the alphabet (or src ends),
// and returns how many it decoded. dst must hold 3/4 of src plus 2 bytes.
func unpackGroups(dst, src []byte) int {
	i, j := 0, 0
	// Two groups at a time: one 8-byte load, four pair lookups (1.45x
	// the speed of eight single ones), one test, one 8-byte store.
	pairs := base64PairValues()
	for i+8 <= len(src) && j+8 <= len(dst) {
		w := binary.LittleEndian.Uint64(src[i:])
		a, b, c, d := pairs[uint16(w)], pairs[uint16(w>>16)], pairs[uint16(w>>32)], pairs[uint16(w>>48)]
		if (a|b|c|d)&0x8000 != 0 {
			break
		}
		binary.BigEndian.PutUint64(dst[j:], uint64(a)<<52|uint64(b)<<40|uint64(c)<<28|uint64(d)<<16)
		i, j = i+8, j+6
	}
	for i+4 <= len(src) && j+3 <= len(dst) {
		a, b, c, d := base64Values[src[i]], base64Values[src[i+1]], base64Values[src[i+2]], base64Values[src[i+3]]
		if (a|b|c|d)&0x80 != 0 {
			break
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[j], dst[j+1], dst[j+2] = byte(v>>16), byte(v>>8), byte(v)
		i, j = i+4, j+3
	}
	return i / 4
}

// unpackBase64To reverses packBase64To, appending to dst.
func unpackBase64To(dst, in []byte) ([]byte, error) {
	out := dst
	for len(in) > 0 {
		if len(in) < 4 {
			return nil, errPackFraming
		}
		lit := uint64(binary.LittleEndian.Uint32(in))
		if lit > uint64(len(in)-4) {
			return nil, errPackFraming
		}
		out = append(out, in[4:4+lit]...)
		in = in[4+lit:]
		if len(in) < 4 {
			return nil, errPackFraming
		}
		groups := uint64(binary.LittleEndian.Uint32(in))
		if groups*3 > uint64(len(in)-4) {
			return nil, errPackFraming
		}
		packed := in[4 : 4+groups*3]
		at := len(out)
		out = slices.Grow(out, int(groups)*4)[:at+int(groups)*4]
		encodeBase64Groups(out[at:], packed)
		in = in[4+groups*3:]
	}
	return out, nil
}
