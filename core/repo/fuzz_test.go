package repo

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/local"
)

// FuzzDecode: no stored bytes make the object decoders panic, in a
// repository with or without a password; what they accept round-trips.
func FuzzDecode(f *testing.F) {
	plain := newRepoForFuzz(f, nil)
	sealed := newRepoForFuzz(f, newKeys(3))
	for _, r := range []*Repository{plain, sealed} {
		f.Add(r.sealObject([]byte(`{"id":"x"}`), "meta/x"))
		f.Add(r.EncodeChunk(ChunkID{}, embeddings(4096, 2)))
		f.Add(r.EncodeChunk(ChunkID{}, bytes.Repeat([]byte("text "), 100)))
	}
	s2codec, err := newCodec(CompressionConfig{Algorithm: "s2", Level: "fastest"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s2codec.encode(bytes.Repeat([]byte("entity <SEP> "), 50), "chunks/x"))
	f.Add([]byte{flagS2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0})
	for _, r := range []*Repository{plain, sealed} {
		a, b := bytes.Repeat([]byte("chunk a "), 64), embeddings(1024, 3)
		f.Add(testPack(r, ChunkID{}, a, b))
	}
	f.Add([]byte{flagHuff, 0, 0, 0})
	f.Add([]byte{flagBase64 | flagChecksum})
	f.Fuzz(func(t *testing.T, stored []byte) {
		for _, r := range []*Repository{plain, sealed} {
			_, _ = r.openObject(bytes.Clone(stored), "meta/x")
			_, _ = r.codec.decode(bytes.Clone(stored), "chunks/x")
			_, _ = r.codec.decodeTo(nil, bytes.Clone(stored), "chunks/x", true)
		}
		for _, r := range []*Repository{plain, sealed} {
			_, _ = r.OpenPack(ChunkID{}, bytes.Clone(stored))
		}
		_, _ = parsePackTrailer(ChunkID{}, stored, int64(len(stored)))
		_, _ = huffDecodeTo(nil, stored)
		_, _ = unpackBase64To(nil, stored)
		_, _ = parseManifest(stored, SnapshotRef{Graph: "g1", ID: "20261127T150405Z-k3f7qa"})
		if packed, ok := packBase64To(nil, stored); ok {
			back, err := unpackBase64To(nil, packed)
			if err != nil || !bytes.Equal(back, stored) {
				t.Fatalf("base64 packing does not round-trip: %v", err)
			}
		}
	})
}

// FuzzConfig: no graphkeep.repo makes Open panic.
func FuzzConfig(f *testing.F) {
	r := newRepoForFuzz(f, nil)
	cfg, _ := blob.ReadAll(context.Background(), r.store, ConfigKey)
	f.Add(cfg)
	f.Add([]byte(`{"version":1,"encryption":{"kdf_params":{"n":0}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		if err := blob.PutBytes(ctx, r.store, ConfigKey, data, nil); err != nil {
			t.Fatal(err)
		}
		_, _ = Open(ctx, r.store, OpenOptions{Password: "pw", CacheDir: t.TempDir()})
	})
}

func newRepoForFuzz(f *testing.F, keys *Keys) *Repository {
	f.Helper()
	store := newFuzzStore(f)
	cfg := Config{Version: FormatVersion, ID: "fuzz", Chunker: ChunkerConfig{Algorithm: "fastcdc", MinSize: 1 << 12, AvgSize: 1 << 14, MaxSize: 1 << 16},
		Compression: CompressionConfig{Algorithm: "zstd", Level: "fastest"}}
	r, err := newRepository(store, cfg, keys, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	if err := blob.PutBytes(context.Background(), store, ConfigKey, []byte(`{}`), nil); err != nil {
		f.Fatal(err)
	}
	return r
}

var fuzzStores int

func newFuzzStore(f *testing.F) blob.Store {
	f.Helper()
	fuzzStores++
	s, err := local.Open(context.Background(), fmt.Sprintf("mem://repo-fuzz-%d", fuzzStores), local.Options{})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzIDValidators: the hand-written id checks accept exactly what the
// patterns they replaced accept.
func FuzzIDValidators(f *testing.F) {
	graphIDPattern := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	snapshotIDPattern := regexp.MustCompile(`^\d{8}T\d{6}Z-[a-z2-7]{6}$`)
	for _, s := range []string{"", "g", "g-1_A", strings.Repeat("a", 64), strings.Repeat("a", 65), "a/b", "é",
		"20261127T150405Z-k3f7qa", "20261127T150405Z-k3f7q1", "20261127T150405Z-k3f7q", "20261127x150405Z-k3f7qa",
		"2026112TT150405Z-k3f7qa", "20261127T150405Z-K3F7QA", "20261127T150405Z_k3f7qa", "20261127T15040٣Z-k3f7qa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidGraphID(s), graphIDPattern.MatchString(s); got != want {
			t.Fatalf("ValidGraphID(%q) = %v, the pattern says %v", s, got, want)
		}
		if got, want := ValidSnapshotID(s), snapshotIDPattern.MatchString(s); got != want {
			t.Fatalf("ValidSnapshotID(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}

// FuzzSnapshotIDTime: ParseSnapshotID reads the time time.Parse reads, and
// refuses what it refuses.
func FuzzSnapshotIDTime(f *testing.F) {
	for _, s := range []string{"20261127T150405Z-k3f7qa", "20260230T000000Z-aaaaaa", "20261131T000000Z-aaaaaa", "20240229T235959Z-zzzzzz",
		"20230229T000000Z-aaaaaa", "20261327T150405Z-k3f7qa", "20261127T240000Z-k3f7qa", "20261127T156005Z-k3f7qa", "00000000T000000Z-aaaaaa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSnapshotID(s)
		if !ValidSnapshotID(s) {
			if err == nil {
				t.Fatalf("ParseSnapshotID(%q) accepted an id of the wrong shape", s)
			}
			return
		}
		want, werr := time.Parse("20060102T150405Z", s[:16])
		if (err == nil) != (werr == nil) || !got.Equal(want) {
			t.Fatalf("ParseSnapshotID(%q) = %v, %v; time.Parse: %v, %v", s, got, err, want, werr)
		}
	})
}
