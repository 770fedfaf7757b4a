package repo

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"runtime"
	"slices"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Every stored object starts with one header byte that says how the rest is
// encoded; readers refuse bits they do not know.
const (
	flagZstd      byte = 1 << 0
	flagEncrypted byte = 1 << 1
	flagHuff      byte = 1 << 2                                                    // huff0 blocks (see huff.go): read, no longer written
	flagBase64    byte = 1 << 3                                                    // base64 runs packed (see base64pack.go)
	flagS2        byte = 1 << 5                                                    // S2 block (klauspost/compress/s2); 1 << 4 is flagChecksum
	knownFlags         = flagZstd | flagEncrypted | flagHuff | flagBase64 | flagS2 // flagChecksum is handled by openObject
	codingFlags        = flagZstd | flagHuff | flagBase64 | flagS2                 // at most one
)

// maxDecoded bounds what one stored object may claim to decode to: chunks
// are at most a few MiB and manifests tens, so a larger claim is damage (or
// an attack) and is refused before any memory is taken for it.
const maxDecoded = 256 << 20

// The compression levels a repository's config may name; "" is "default".
var (
	zstdLevels = map[string]zstd.EncoderLevel{"fastest": zstd.SpeedFastest, "": zstd.SpeedDefault, "default": zstd.SpeedDefault, "better": zstd.SpeedBetterCompression}
	s2Levels   = map[string]func(dst, src []byte) []byte{"fastest": s2.Encode, "": s2.EncodeBetter, "default": s2.EncodeBetter, "better": s2.EncodeBest}
)

// codec turns plaintext into stored bytes and back. Safe for concurrent use.
type codec struct {
	// compress appends plain's compressed form to dst, with the header
	// flag that says how; nil: no compression.
	compress func(dst, plain []byte) ([]byte, byte)
	dec      *zstd.Decoder
	aead     cipher.AEAD // nil: no encryption
}

func newCodec(comp CompressionConfig, keys *Keys) (*codec, error) {
	if err := comp.validate(); err != nil {
		return nil, err
	}
	c := &codec{}
	var err error
	if c.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecoded)); err != nil {
		return nil, err
	}
	switch comp.Algorithm {
	case "zstd":
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevels[comp.Level]), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, err
		}
		c.compress = func(dst, plain []byte) ([]byte, byte) { return enc.EncodeAll(plain, dst), flagZstd }
	case "s2":
		encode := s2Levels[comp.Level]
		c.compress = func(dst, plain []byte) ([]byte, byte) {
			at := len(dst)
			dst = slices.Grow(dst, s2.MaxEncodedLen(len(plain)))
			coded := encode(dst[at:cap(dst)], plain)
			return dst[:at+len(coded)], flagS2
		}
	}
	if keys != nil {
		if c.aead, err = newAEAD(keys.Data); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// encode compresses (when it pays) and encrypts plain. aad binds the result
// to its object key, so a stored object cannot be swapped for another.
func (c *codec) encode(plain []byte, aad string) []byte {
	return c.encodeTo(nil, plain, aad)
}

// encodeTo is encode writing into dst's memory (grown when too small): the
// payload is compressed right after the header and sealed in place.
func (c *codec) encodeTo(dst, plain []byte, aad string) []byte {
	head, overhead := 1, 0
	if c.aead != nil {
		head += c.aead.NonceSize()
		overhead = c.aead.Overhead()
	}
	out := slices.Grow(dst[:0], head+len(plain)+overhead+64)[:head]
	flags := byte(0)
	switch {
	case c.compress != nil && mostlyBase64(plain):
		if coded, ok := packBase64To(out, plain); ok {
			out, flags = coded, flagBase64
		}
	case c.compress != nil && len(plain) >= 64:
		compressed, flag := c.compress(out, plain)
		if n := len(compressed) - head; n < len(plain)-len(plain)/64 { // stored raw when it saves under ~1.5%
			out, flags = compressed, flag
		}
	}
	if flags == 0 {
		out = append(out[:head], plain...)
	}
	if c.aead == nil {
		out[0] = flags
		return out
	}
	out[0] = flags | flagEncrypted
	nonce := out[1:head]
	_, _ = rand.Read(nonce)
	return c.aead.Seal(out[:head], nonce, out[head:], []byte(aad))
}

// decode reverses encode; stored is left as it is.
func (c *codec) decode(stored []byte, aad string) ([]byte, error) {
	return c.decodeTo(nil, stored, aad, false)
}

// decodeTo reverses encode, appending the plaintext to dst[:0] (nil: any
// memory). inPlace lets it decrypt inside stored, which it then clobbers.
func (c *codec) decodeTo(dst, stored []byte, aad string, inPlace bool) ([]byte, error) {
	if len(stored) == 0 {
		return nil, fmt.Errorf("%w: empty object", ErrCorrupt)
	}
	flags, payload := stored[0], stored[1:]
	if flags&^knownFlags != 0 {
		return nil, fmt.Errorf("%w: unknown encoding flags %#x", ErrCorrupt, flags)
	}
	if flags&flagEncrypted != 0 {
		if c.aead == nil {
			return nil, fmt.Errorf("%w: object is encrypted but the repository is not", ErrCorrupt)
		}
		ns := c.aead.NonceSize()
		if len(payload) < ns+c.aead.Overhead() {
			return nil, fmt.Errorf("%w: encrypted object too short", ErrCorrupt)
		}
		var into []byte
		if inPlace {
			into = payload[ns:ns]
		}
		var err error
		if payload, err = c.aead.Open(into, payload[:ns], payload[ns:], []byte(aad)); err != nil {
			return nil, fmt.Errorf("%w: authentication failed (damaged or tampered)", ErrCorrupt)
		}
	} else if c.aead != nil {
		return nil, fmt.Errorf("%w: object is not encrypted in an encrypted repository", ErrCorrupt)
	}
	if dst != nil {
		dst = dst[:0]
	}
	switch coding := flags & codingFlags; {
	case coding&(coding-1) != 0:
		return nil, fmt.Errorf("%w: more than one coding flag set (%#x)", ErrCorrupt, flags)
	case flags&flagZstd != 0:
		plain, err := c.dec.DecodeAll(payload, dst)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		return plain, nil
	case flags&flagS2 != 0:
		n, err := s2.DecodedLen(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: s2: %v", ErrCorrupt, err)
		}
		if n > maxDecoded {
			return nil, fmt.Errorf("%w: s2 block claims %d bytes, over the %d a stored object may hold", ErrCorrupt, n, maxDecoded)
		}
		plain, err := s2.Decode(slices.Grow(dst, n)[:n], payload)
		if err != nil {
			return nil, fmt.Errorf("%w: s2: %v", ErrCorrupt, err)
		}
		return plain, nil
	case flags&flagHuff != 0:
		plain, err := huffDecodeTo(dst, payload)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return plain, nil
	case flags&flagBase64 != 0:
		plain, err := unpackBase64To(dst, payload)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return plain, nil
	}
	if dst != nil {
		return append(dst, payload...), nil
	}
	return payload, nil
}
