package repo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/huff0"
)

// Versions before base64 packing (base64pack.go) coded chunks that are
// mostly base64 (embedding matrices) with huff0, which captures the 6-bit
// alphabet; such chunks are still read. The format: blocks of huffBlock
// bytes,
//
//	uvarint(blocks) then per block uvarint(raw length) uvarint(coded length)
//	and the coded bytes; coded length 0 means the raw bytes follow.

const huffBlock = 128 << 10

var (
	huffScratch = sync.Pool{New: func() any { return &huff0.Scratch{} }}
	base64Bytes = func() (t [256]bool) {
		for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=" {
			t[c] = true
		}
		return t
	}()
)

// mostlyBase64 samples data: true when nearly every byte is base64.
func mostlyBase64(data []byte) bool {
	if len(data) < 4096 {
		return false
	}
	seen, hits := 0, 0
	for i := 0; i < len(data); i += 61 {
		seen++
		if base64Bytes[data[i]] {
			hits++
		}
	}
	return hits*100 >= seen*97
}

var errHuffFraming = errors.New("huff0 framing")

// huffDecode reverses huffEncode.
func huffDecode(in []byte) ([]byte, error) { return huffDecodeTo(nil, in) }

// huffDecodeTo appends the decoded bytes to dst, which it grows once when
// too small.
func huffDecodeTo(dst, in []byte) ([]byte, error) {
	blocks, n := binary.Uvarint(in)
	if n <= 0 || blocks > uint64(len(in)) { // every block takes framing bytes
		return nil, errHuffFraming
	}
	in = in[n:]
	out := dst
	s := huffScratch.Get().(*huff0.Scratch)
	defer huffScratch.Put(s)
	for b := uint64(0); b < blocks; b++ {
		raw, n1 := binary.Uvarint(in)
		if n1 <= 0 || raw == 0 || raw > huffBlock {
			return nil, errHuffFraming
		}
		coded, n2 := binary.Uvarint(in[n1:])
		if n2 <= 0 {
			return nil, errHuffFraming
		}
		in = in[n1+n2:]
		if coded == 0 {
			if uint64(len(in)) < raw {
				return nil, errHuffFraming
			}
			out = append(out, in[:raw]...)
			in = in[raw:]
			continue
		}
		if uint64(len(in)) < coded {
			return nil, errHuffFraming
		}
		tbl, rest, err := huff0.ReadTable(in[:coded], s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errHuffFraming, err)
		}
		s = tbl
		// Decode straight into out: the decoder wants a destination whose
		// capacity is exactly the block's size.
		at := len(out)
		out = slices.Grow(out, int(raw))
		plain, err := s.Decoder().Decompress4X(out[at:at:at+int(raw)], rest)
		if err != nil || uint64(len(plain)) != raw {
			return nil, fmt.Errorf("%w: block %d: %v", errHuffFraming, b, err)
		}
		out = out[:at+int(raw)]
		in = in[coded:]
	}
	if len(in) != 0 {
		return nil, errHuffFraming
	}
	return out, nil
}
