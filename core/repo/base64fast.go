package repo

import "encoding/binary"

// base64Pairs maps 12 bits to the two base64 characters that carry them,
// first character in the low byte: a 3-byte group is two lookups.
var base64Pairs = func() (t [4096]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for v := range t {
		t[v] = uint16(alphabet[v>>6]) | uint16(alphabet[v&63])<<8
	}
	return t
}()

// encodeBase64Groups writes the standard base64 of src, whose length is a
// multiple of 3, into dst (4/3 as long); no padding is ever needed. It is
// what base64.StdEncoding.Encode writes, at about twice its speed: restores
// re-encode every embedding matrix through it.
func encodeBase64Groups(dst, src []byte) {
	if len(src) == 0 {
		return
	}
	_ = dst[len(src)/3*4-1] // one bounds check for the loops below
	i, o := 0, 0
	// Six bytes (two groups) at a time, read as one 8-byte word while at
	// least 8 remain.
	for ; i+8 <= len(src); i, o = i+6, o+8 {
		w := binary.BigEndian.Uint64(src[i:])
		a, b := w>>40, (w>>16)&0xffffff
		binary.LittleEndian.PutUint64(dst[o:], uint64(base64Pairs[a>>12])|uint64(base64Pairs[a&0xfff])<<16|
			uint64(base64Pairs[b>>12])<<32|uint64(base64Pairs[b&0xfff])<<48)
	}
	for ; i < len(src); i, o = i+3, o+4 {
		v := uint32(src[i])<<16 | uint32(src[i+1])<<8 | uint32(src[i+2])
		binary.LittleEndian.PutUint16(dst[o:], base64Pairs[v>>12])
		binary.LittleEndian.PutUint16(dst[o+2:], base64Pairs[v&0xfff])
	}
}
