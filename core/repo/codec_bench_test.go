package repo

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// floatEmbeddings is base64 of float32 rows drawn as LightRAG's embeddings
// look (normal, small): unlike random bytes, their exponent bytes repeat,
// which is what huff0 found to code.
func floatEmbeddings(n int) []byte {
	r := rand.New(rand.NewPCG(9, 9))
	raw := make([]byte, n*3/4/4*4)
	for i := 0; i < len(raw); i += 4 {
		binary.LittleEndian.PutUint32(raw[i:], math.Float32bits(float32(r.NormFloat64()*0.05)))
	}
	return []byte(base64.StdEncoding.EncodeToString(raw))
}

// BenchmarkEmbeddingChunk compares the ways a 1 MiB chunk of an embedding
// matrix can be coded, both directions, and reports the stored ratio:
// base64 packing (written now), huff0 (written before, still read) and
// zstd "fastest".
func BenchmarkEmbeddingChunk(b *testing.B) {
	d := floatEmbeddings(1 << 20)
	packed, _ := packBase64To(nil, d)
	huffed, _ := huffEncode(d)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zstded := enc.EncodeAll(d, nil)
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	out := make([]byte, 0, len(d)+64)
	run := func(name string, stored []byte, f func() error) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(d)))
			for b.Loop() {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(stored))/float64(len(d)), "ratio")
		})
	}
	run("encode/base64pack", packed, func() error { out, _ = packBase64To(out[:0], d); return nil })
	run("encode/huff0", huffed, func() error { out, _ = huffEncodeTo(out[:0], d); return nil })
	run("encode/zstd", zstded, func() error { out = enc.EncodeAll(d, out[:0]); return nil })
	run("decode/base64pack", packed, func() (err error) { out, err = unpackBase64To(out[:0], packed); return err })
	run("decode/huff0", huffed, func() (err error) { out, err = huffDecodeTo(out[:0], huffed); return err })
	run("decode/zstd", zstded, func() (err error) { out, err = dec.DecodeAll(zstded, out[:0]); return err })
}
