package repo

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"testing"
)

func embeddings(n int, seed uint64) []byte {
	raw := make([]byte, n*3/4)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(raw)
	return []byte(base64.StdEncoding.EncodeToString(raw))
}

func TestCodecRoundTrips(t *testing.T) {
	keys := newKeys(1)
	for _, encrypted := range []bool{false, true} {
		var k *Keys
		if encrypted {
			k = keys
		}
		c, err := newCodec(CompressionConfig{Algorithm: "zstd", Level: "fastest"}, k)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{
			"empty":      {},
			"small":      []byte("hello"),
			"text":       bytes.Repeat([]byte("LightRAG entity description <SEP> "), 3000),
			"embeddings": embeddings(1<<20+12345, 1),
			"one byte":   bytes.Repeat([]byte("A"), 300000),
			"random":     embeddings(1, 1)[:0],
		} {
			enc := c.encode(data, "chunks/x")
			kept := bytes.Clone(enc)
			got, err := c.decode(enc, "chunks/x")
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s (encrypted %v): round trip failed: %v", name, encrypted, err)
			}
			if !bytes.Equal(enc, kept) {
				t.Fatalf("%s: decode changed the stored bytes", name)
			}
			// The buffer-reusing forms: encode into a buffer holding other
			// bytes, decode in place into a dirty buffer.
			for _, dst := range [][]byte{nil, make([]byte, 10), bytes.Repeat([]byte{0xAA}, 3<<20)} {
				enc2 := c.encodeTo(dst, data, "chunks/x")
				if !encrypted && !bytes.Equal(enc2, enc) {
					t.Fatalf("%s: encodeTo differs from encode", name)
				}
				got, err := c.decodeTo(bytes.Repeat([]byte{0x55}, 7), enc2, "chunks/x", true)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s (encrypted %v, dst %d): in-place round trip failed: %v", name, encrypted, len(dst), err)
				}
			}
			if name == "embeddings" {
				if enc[0]&flagHuff == 0 || len(enc) > len(data)*76/100 {
					t.Fatalf("embeddings coded with flags %#x into %d of %d bytes", enc[0], len(enc), len(data))
				}
			}
		}
	}
}

// Damaged huff0 payloads are errors, never panics or wrong data.
func TestHuffDecodeRejectsDamage(t *testing.T) {
	data := embeddings(300000, 2)
	coded, ok := huffEncode(data)
	if !ok {
		t.Fatal("embeddings did not pay")
	}
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 2000; i++ {
		bad := bytes.Clone(coded)
		switch r.IntN(3) {
		case 0:
			bad[r.IntN(len(bad))] ^= byte(1 + r.IntN(255))
		case 1:
			bad = bad[:r.IntN(len(bad))]
		case 2:
			bad = append(bad, byte(r.IntN(256)))
		}
		out, err := huffDecode(bad)
		if err == nil && !bytes.Equal(out, data) && len(out) == len(data) {
			// A flipped bit inside a block can decode to other bytes of the
			// same length; the chunk id check after decoding catches it.
			continue
		}
		if err != nil && !errors.Is(err, errHuffFraming) {
			t.Fatalf("unexpected error type: %v", err)
		}
	}
}
