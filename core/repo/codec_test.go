package repo

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func embeddings(n int, seed uint64) []byte {
	raw := make([]byte, n*3/4)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(raw)
	return []byte(base64.StdEncoding.EncodeToString(raw))
}

// everyCompression is each compression a repository can be created with.
var everyCompression = []CompressionConfig{
	{Algorithm: "s2", Level: "fastest"}, {Algorithm: "s2", Level: "default"}, {Algorithm: "s2", Level: "better"},
	{Algorithm: "zstd", Level: "fastest"}, {Algorithm: "zstd", Level: "default"}, {Algorithm: "none"},
}

func TestCodecRoundTrips(t *testing.T) {
	keys := newKeys(1)
	for _, comp := range everyCompression {
		for _, encrypted := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-%s-encrypted=%v", comp.Algorithm, comp.Level, encrypted), func(t *testing.T) {
				var k *Keys
				if encrypted {
					k = keys
				}
				testCodecRoundTrips(t, comp, k)
			})
		}
	}
}

func testCodecRoundTrips(t *testing.T, comp CompressionConfig, k *Keys) {
	encrypted := k != nil
	c, err := newCodec(comp, k)
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
		if comp.Algorithm == "none" {
			if enc[0]&codingFlags != 0 {
				t.Fatalf("%s: compressed (flags %#x) in a repository without compression", name, enc[0])
			}
			continue
		}
		if name == "embeddings" {
			if enc[0]&flagBase64 == 0 || len(enc) > len(data)*76/100 {
				t.Fatalf("embeddings coded with flags %#x into %d of %d bytes", enc[0], len(enc), len(data))
			}
		}
		if name == "text" {
			want := map[string]byte{"s2": flagS2, "zstd": flagZstd}[comp.Algorithm]
			if enc[0]&codingFlags != want || len(enc) > len(data)/10 {
				t.Fatalf("text coded with flags %#x into %d of %d bytes, want flag %#x", enc[0], len(enc), len(data), want)
			}
		}
	}
}

// Whatever compression a repository was created with, its reader decodes
// every coding: repositories written by earlier versions (zstd) stay
// readable, and so do objects copied between repositories.
func TestCodecReadsEveryCoding(t *testing.T) {
	text := bytes.Repeat([]byte("LightRAG entity description <SEP> "), 3000)
	for _, writer := range everyCompression {
		w, err := newCodec(writer, nil)
		if err != nil {
			t.Fatal(err)
		}
		stored := w.encode(text, "chunks/x")
		for _, reader := range everyCompression {
			r, err := newCodec(reader, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.decode(stored, "chunks/x")
			if err != nil || !bytes.Equal(got, text) {
				t.Fatalf("written with %v, read with %v: %v", writer, reader, err)
			}
		}
	}
}

// A damaged or forged S2 block is an error, never a panic, wrong bytes or
// an allocation of the size it claims.
func TestS2DecodeRejectsDamage(t *testing.T) {
	c, err := newCodec(CompressionConfig{Algorithm: "s2", Level: "fastest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	huge := append([]byte{flagS2}, binary.AppendUvarint(nil, 1<<40)...)
	huge = append(huge, bytes.Repeat([]byte{0}, 100)...)
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := c.decode(huge, "chunks/x"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a block claiming 1 TiB: %v", err)
		}
	})
	if allocs > 10 {
		t.Fatalf("refusing a block claiming 1 TiB took %v allocations", allocs)
	}
	text := bytes.Repeat([]byte("LightRAG entity description <SEP> "), 3000)
	coded := c.encode(text, "chunks/x")
	if coded[0] != flagS2 {
		t.Fatalf("text coded with flags %#x", coded[0])
	}
	r := rand.New(rand.NewPCG(2, 2))
	for i := 0; i < 2000; i++ {
		bad := damage(r, coded)
		if len(bad) == 0 {
			continue
		}
		bad[0] = flagS2
		out, err := c.decode(bad, "chunks/x")
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unexpected error type: %v", err)
		}
		_ = out // a flipped literal decodes to other bytes; the chunk id check catches it
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
		bad := damage(r, coded)
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

// Chunks earlier versions coded with huff0 are still read.
func TestCodecReadsHuffChunks(t *testing.T) {
	data := embeddings(600000, 3)
	coded, ok := huffEncode(data)
	if !ok {
		t.Fatal("embeddings did not pay")
	}
	c, err := newCodec(CompressionConfig{Algorithm: "zstd", Level: "fastest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range [][]byte{nil, make([]byte, 0, 100)} {
		got, err := c.decodeTo(dst, append([]byte{flagHuff}, coded...), "chunks/x", true)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("huff0 chunk: %v", err)
		}
	}
	if _, err := c.decode([]byte{flagHuff | flagBase64, 0, 0}, "chunks/x"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("two coding flags: %v", err)
	}
}

// TestBase64PackRoundTrips: whatever mix of base64 runs and other bytes a
// chunk holds (JSON around a matrix, padding, escapes, short words, lengths
// not a multiple of 4, nothing but text), packing gives the same bytes back.
func TestBase64PackRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	matrix := embeddings(300000, 4)
	cases := map[string][]byte{
		"empty":         {},
		"matrix":        matrix,
		"odd length":    matrix[:len(matrix)-3],
		"json around":   []byte(`], "matrix": "` + string(matrix) + `"}` + "\n"),
		"padded":        []byte(string(matrix[:999]) + "=="),
		"escaped slash": []byte(strings.ReplaceAll(string(matrix[:5000]), "/", `\/`)),
		"text":          bytes.Repeat([]byte("the entity relates to another entity, "), 400),
		"short runs":    bytes.Repeat([]byte(string(matrix[:200])+"!"), 50),
		"at the limit":  []byte(string(matrix[:minPackedRun]) + "," + string(matrix[:minPackedRun-1]) + "," + string(matrix[:minPackedRun+4])),
	}
	for i := range 200 {
		b := make([]byte, r.IntN(3000))
		for j := range b {
			if r.IntN(50) == 0 {
				b[j] = byte(r.IntN(256))
			} else {
				b[j] = matrix[r.IntN(len(matrix))]
			}
		}
		cases[fmt.Sprint("random ", i)] = b
	}
	for name, data := range cases {
		for _, dst := range [][]byte{nil, []byte("head")} {
			packed, ok := packBase64To(dst, data)
			if !bytes.HasPrefix(packed, dst) {
				t.Fatalf("%s: the bytes before dst's length changed", name)
			}
			got, err := unpackBase64To([]byte("x"), packed[len(dst):])
			if err != nil || !bytes.Equal(got[1:], data) || got[0] != 'x' {
				t.Fatalf("%s: round trip failed (ok %v): %v", name, ok, err)
			}
			if name == "matrix" && (!ok || len(packed)-len(dst) > len(data)*3/4+16) {
				t.Fatalf("matrix packed into %d of %d bytes (ok %v)", len(packed)-len(dst), len(data), ok)
			}
			if name == "text" && ok {
				t.Fatal("packing text claimed to pay")
			}
		}
	}
}

// damage returns a copy of b with one random byte changed, cut short, or
// one byte longer.
func damage(r *rand.Rand, b []byte) []byte {
	bad := bytes.Clone(b)
	switch r.IntN(3) {
	case 0:
		bad[r.IntN(len(bad))] ^= byte(1 + r.IntN(255))
	case 1:
		bad = bad[:r.IntN(len(bad))]
	default:
		bad = append(bad, byte(r.IntN(256)))
	}
	return bad
}

// Damaged packed payloads are errors, never panics; wrong bytes of the
// right length are left to the chunk id check.
func TestBase64UnpackRejectsDamage(t *testing.T) {
	packed, _ := packBase64To(nil, []byte(`{"m": "`+string(embeddings(20000, 7))+`"}`))
	r := rand.New(rand.NewPCG(7, 8))
	for range 3000 {
		bad := damage(r, packed)
		if _, err := unpackBase64To(nil, bad); err != nil && !errors.Is(err, errPackFraming) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
}

// unpackGroups stops at the group holding the first character outside the
// alphabet, wherever in a group (and in its two-group step) it falls, and
// what it decoded before is the standard decoding.
func TestUnpackGroupsStopsAtTheFirstStranger(t *testing.T) {
	valid := []byte(base64.StdEncoding.EncodeToString([]byte("graphkeep packs base64 three bytes at a time")))[:40]
	for at := range len(valid) + 1 {
		src := bytes.Clone(valid)
		if at < len(src) {
			src[at] = '"'
		}
		dst := make([]byte, len(src)*3/4+2)
		groups := unpackGroups(dst, src)
		if want := at / 4; groups != want {
			t.Fatalf("stranger at %d: %d groups decoded, want %d", at, groups, want)
		}
		want, err := base64.StdEncoding.DecodeString(string(valid[:groups*4]))
		if err != nil || !bytes.Equal(dst[:groups*3], want) {
			t.Fatalf("stranger at %d: decoded %x, want %x (%v)", at, dst[:groups*3], want, err)
		}
	}
}
