package repo

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers"
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
	f.Add([]byte{flagHuff, 0, 0, 0})
	f.Add([]byte{flagBase64 | flagChecksum})
	f.Fuzz(func(t *testing.T, stored []byte) {
		for _, r := range []*Repository{plain, sealed} {
			_, _ = r.openObject(bytes.Clone(stored), "meta/x")
			_, _ = r.codec.decode(bytes.Clone(stored), "chunks/x")
			_, _ = r.codec.decodeTo(nil, bytes.Clone(stored), "chunks/x", true)
		}
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
	s, err := providers.Open(context.Background(), fmt.Sprintf("mem://repo-fuzz-%d", fuzzStores), providers.Options{})
	if err != nil {
		f.Fatal(err)
	}
	return s
}
