package repo

import (
	"encoding/binary"

	"github.com/klauspost/compress/huff0"
)

// Chunks are no longer huff0-coded, but repositories written by earlier
// versions hold such chunks: the tests write them with this encoder.

// huffEncode codes data; ok is false when it would not pay.
func huffEncode(data []byte) (out []byte, ok bool) {
	return huffEncodeTo(make([]byte, 0, len(data)*3/4), data)
}

// huffEncodeTo appends the coded data to dst.
func huffEncodeTo(dst, data []byte) (out []byte, ok bool) {
	s := huffScratch.Get().(*huff0.Scratch)
	defer huffScratch.Put(s)
	start := len(dst)
	blocks := (len(data) + huffBlock - 1) / huffBlock
	out = binary.AppendUvarint(dst, uint64(blocks))
	for i := 0; i < len(data); i += huffBlock {
		block := data[i:min(i+huffBlock, len(data))]
		s.Reuse = huff0.ReusePolicyNone
		coded, _, err := huff0.Compress4X(block, s)
		out = binary.AppendUvarint(out, uint64(len(block)))
		if err != nil || len(coded) >= len(block) {
			// Incompressible or a single repeated byte: store it as is.
			out = binary.AppendUvarint(out, 0)
			out = append(out, block...)
			continue
		}
		out = binary.AppendUvarint(out, uint64(len(coded)))
		out = append(out, coded...)
	}
	return out, len(out)-start < len(data)-len(data)/64
}
