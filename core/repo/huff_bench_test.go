package repo

import (
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func vdbSample(b *testing.B) []byte {
	d, err := os.ReadFile("../../.cache/bench/data-base/alpha/vdb_entities.json")
	if err != nil || len(d) < 2<<20 {
		b.Skip("no bench data; run make bench first")
	}
	return d[100000 : 100000+(1<<20)]
}

// BenchmarkDecodeEmbeddings compares decoding a 1 MiB embedding chunk coded
// with huff0 and with zstd.
func BenchmarkDecodeEmbeddings(b *testing.B) {
	d := vdbSample(b)
	h, _ := huffEncode(d)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	z := enc.EncodeAll(d, nil)
	dec, _ := zstd.NewReader(nil)
	b.Run("huff0", func(b *testing.B) {
		b.SetBytes(int64(len(d)))
		for b.Loop() {
			if _, err := huffDecode(h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("zstd", func(b *testing.B) {
		b.SetBytes(int64(len(d)))
		for b.Loop() {
			if _, err := dec.DecodeAll(z, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
