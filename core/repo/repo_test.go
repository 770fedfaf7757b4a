package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/repo/repotest"
	"github.com/graphkeep/graphkeep/providers/local"
	"lukechampine.com/blake3"
)

var seq atomic.Int64

var cheapKDF = &repo.KDFParams{N: 1 << 10, R: 8, P: 1}

func newStore(t *testing.T) blob.Store {
	t.Helper()
	s, err := local.Open(context.Background(), fmt.Sprintf("mem://repo-test-%d", seq.Add(1)), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInitOpen(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	if _, err := repo.Open(ctx, store, repo.OpenOptions{}); !errors.Is(err, repo.ErrNotARepository) {
		t.Fatalf("open before init: %v, want ErrNotARepository", err)
	}
	r, err := repo.Init(ctx, store, repo.InitOptions{Password: "pw", KDF: cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, store, repo.InitOptions{}); !errors.Is(err, repo.ErrAlreadyExists) {
		t.Fatalf("second init: %v, want ErrAlreadyExists", err)
	}
	for _, c := range []struct {
		password string
		want     error
	}{{"", repo.ErrPasswordNeeded}, {"wrong", repo.ErrWrongPassword}} {
		if _, err := repo.Open(ctx, store, repo.OpenOptions{Password: c.password}); !errors.Is(err, c.want) {
			t.Fatalf("open with %q: %v, want %v", c.password, err, c.want)
		}
	}
	again, err := repo.Open(ctx, store, repo.OpenOptions{Password: "pw", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != r.ID() || !again.Encrypted() {
		t.Fatalf("reopened repository id %s encrypted %v, want %s true", again.ID(), again.Encrypted(), r.ID())
	}
	cfg, _ := blob.ReadAll(ctx, store, repo.ConfigKey)
	if bytes.Contains(cfg, []byte("chunker_seed")) || strings.Contains(string(cfg), `"seed"`) {
		t.Fatal("an encrypted repository's config reveals the chunker seed")
	}
}

func TestUnknownVersionIsRefused(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	_ = blob.PutBytes(ctx, store, repo.ConfigKey, []byte(`{"version": 7, "id": "x"}`), nil)
	_, err := repo.Open(ctx, store, repo.OpenOptions{})
	if !errors.Is(err, repo.ErrUnsupported) || !strings.Contains(err.Error(), "version 7") {
		t.Fatalf("open of a version 7 repository: %v", err)
	}
}

func TestChunksAreVerifiedOnRead(t *testing.T) {
	for _, password := range []string{"", "pw"} {
		ctx := context.Background()
		store := newStore(t)
		r, err := repo.Init(ctx, store, repo.InitOptions{Password: password, KDF: cheapKDF})
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("graph data "), 1000)
		id := r.HashChunk(data)
		enc := r.EncodeChunk(id, data)
		if len(enc) >= len(data) {
			t.Fatalf("repetitive data was not compressed (%d -> %d bytes)", len(data), len(enc))
		}
		if err := r.PutChunk(ctx, id, enc); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadChunk(ctx, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back: %v", err)
		}
		// The same bytes stored under another id must not pass.
		other := r.HashChunk([]byte("other"))
		if _, err := r.DecodeChunk(other, enc); !errors.Is(err, repo.ErrCorrupt) {
			t.Fatalf("a chunk stored under the wrong id decoded: %v", err)
		}
		enc[len(enc)-1] ^= 1
		if _, err := r.DecodeChunk(id, enc); !errors.Is(err, repo.ErrCorrupt) {
			t.Fatalf("a damaged chunk decoded: %v", err)
		}
	}
}

func TestSnapshotIDs(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 4, 5, 0, time.UTC)
	id := repo.NewSnapshotID(now)
	if !strings.HasPrefix(id, "20261127T150405Z-") {
		t.Fatalf("id %q", id)
	}
	if got, err := repo.ParseSnapshotID(id); err != nil || !got.Equal(now) {
		t.Fatalf("ParseSnapshotID(%q) = %v, %v", id, got, err)
	}
	for _, bad := range []string{"", "latest", "../x", "20261127T150405Z-ABCDEF"} {
		if _, err := repo.ParseSnapshotID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestManifestIsCreateOnce(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, newStore(t), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(time.Now()), Graph: "g", Time: time.Now()}
	if err := r.SaveManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := r.SaveManifest(ctx, m); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("second save: %v, want ErrExists", err)
	}
	ref, err := r.FindSnapshot(ctx, "g", "latest")
	if err != nil || ref.ID != m.ID {
		t.Fatalf("latest = %v, %v", ref, err)
	}
	if _, err := r.FindSnapshot(ctx, "g", "2099"); !errors.Is(err, repo.ErrSnapshotMissing) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestLeases(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, newStore(t), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	quick := repo.LeaseOptions{TTL: 400 * time.Millisecond, Skew: time.Millisecond, Wait: 150 * time.Millisecond, Poll: 20 * time.Millisecond}

	a, err := r.AcquireLease(ctx, repo.Shared, "backup a", quick)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.AcquireLease(ctx, repo.Shared, "backup b", quick)
	if err != nil {
		t.Fatalf("two shared leases conflict: %v", err)
	}
	if _, err := r.AcquireLease(ctx, repo.Exclusive, "prune", quick); !errors.Is(err, repo.ErrLeaseBusy) {
		t.Fatalf("exclusive under shared: %v, want ErrLeaseBusy", err)
	}
	_ = a.Release()
	_ = b.Release()
	x, err := r.AcquireLease(ctx, repo.Exclusive, "prune", quick)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AcquireLease(ctx, repo.Shared, "backup", quick); !errors.Is(err, repo.ErrLeaseBusy) {
		t.Fatalf("shared under exclusive: %v, want ErrLeaseBusy", err)
	}
	// Renewal keeps a lease alive past its TTL.
	time.Sleep(600 * time.Millisecond)
	if err := x.Check(); err != nil {
		t.Fatalf("a renewed lease reports %v", err)
	}
	if _, err := r.AcquireLease(ctx, repo.Shared, "backup", quick); !errors.Is(err, repo.ErrLeaseBusy) {
		t.Fatal("a renewed exclusive lease stopped counting")
	}
	_ = x.Release()
}

// A holder that dies (stops renewing without releasing) blocks others only
// until its lease expires.
func TestDeadHolderExpires(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	r, err := repo.Init(ctx, store, repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf(`{"kind":"exclusive","purpose":"prune","host":"gone","pid":1,"created":%q,"expires":%q}`,
		time.Now().UTC().Format(time.RFC3339Nano), time.Now().Add(300*time.Millisecond).UTC().Format(time.RFC3339Nano))
	if err := blob.PutBytes(ctx, store, repo.LeasePrefix+"exclusive-dead", []byte(dead), nil); err != nil {
		t.Fatal(err)
	}
	opts := repo.LeaseOptions{TTL: time.Second, Skew: time.Millisecond, Wait: 5 * time.Second, Poll: 50 * time.Millisecond}
	start := time.Now()
	l, err := r.AcquireLease(ctx, repo.Shared, "backup", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("waited %s for a dead lease that expired after 300ms", waited)
	}
	if ok, _ := blob.Exists(ctx, store, repo.LeasePrefix+"exclusive-dead"); ok {
		t.Fatal("the dead lease was not cleaned up")
	}
}

func TestSnapshotIDsSortByTimeWithinASecond(t *testing.T) {
	base := time.Date(2026, 11, 27, 15, 4, 5, 0, time.UTC)
	prev := ""
	for _, ns := range []int{0, 1, 999, 1_000, 123_456_789, 500_000_000, 999_999_998, 999_999_999} {
		id := repo.NewSnapshotID(base.Add(time.Duration(ns)))
		if _, err := repo.ParseSnapshotID(id); err != nil {
			t.Fatalf("%d ns: %v", ns, err)
		}
		if prev != "" && id <= prev {
			t.Fatalf("%s (at +%dns) does not sort after %s", id, ns, prev)
		}
		prev = id
	}
	if next := repo.NewSnapshotID(base.Add(time.Second)); next <= prev {
		t.Fatalf("the next second's id %s sorts before %s", next, prev)
	}
}

// A local repository gets its chunk directories at init; when they cannot
// be made, init says so and leaves no repository behind, so it can be run
// again once the cause is fixed.
func TestInitPreparesChunkDirectories(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := local.Open(ctx, "file://"+dir+"?create=true", local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := os.WriteFile(filepath.Join(dir, "chunks"), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = repo.Init(ctx, store, repo.InitOptions{})
	if err == nil || !strings.Contains(err.Error(), "chunk directories") {
		t.Fatalf("init with a file where chunks/ goes: %v", err)
	}
	if _, err := repo.Open(ctx, store, repo.OpenOptions{}); !errors.Is(err, repo.ErrNotARepository) {
		t.Fatalf("a failed init left a repository behind: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "chunks")); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, store, repo.InitOptions{}); err != nil {
		t.Fatalf("init after the cause is gone: %v", err)
	}
	for _, d := range []string{"chunks/00", "chunks/7f", "chunks/ff"} {
		if info, err := os.Stat(filepath.Join(dir, d)); err != nil || !info.IsDir() {
			t.Fatalf("%s after init: %v", d, err)
		}
	}
}

// TestInitRefusesDataWithoutConfig: init over snapshots or chunks whose
// config was lost would put new keys and a new id over old data.
func TestInitRefusesDataWithoutConfig(t *testing.T) {
	ctx := context.Background()
	for _, key := range []string{"snapshots/g1/20261127T150405Z-aaaaaa", "chunks/ab/abcdef"} {
		store := newStore(t)
		if err := blob.PutBytes(ctx, store, key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := repo.Init(ctx, store, repo.InitOptions{}); !errors.Is(err, repo.ErrConfigLost) || !strings.Contains(err.Error(), "graphkeep.repo") {
			t.Fatalf("init over %s: %v, want ErrConfigLost naming graphkeep.repo", key, err)
		}
		if _, err := repo.Open(ctx, store, repo.OpenOptions{}); !errors.Is(err, repo.ErrConfigLost) {
			t.Fatalf("open with %s and no config: %v, want ErrConfigLost", key, err)
		}
	}
}

// TestObjectsAreBoundToTheirKeyAndRepository: without a password too, a
// flipped bit in graphkeep.repo or a meta object, a meta object moved to
// another key, and another repository's config over this one's objects are
// all caught, naming the object.
func TestObjectsAreBoundToTheirKeyAndRepository(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	r, err := repo.Init(ctx, store, repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"targets/t1", "targets/t2"} {
		if err := r.PutMeta(ctx, name, map[string]string{"id": name}); err != nil {
			t.Fatal(err)
		}
	}
	m := &repo.Manifest{Version: repo.FormatVersion, ID: repo.NewSnapshotID(time.Now()), Graph: "g1", Time: time.Now().UTC()}
	if err := r.SaveManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	read := func(key string) []byte {
		b, err := blob.ReadAll(ctx, store, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := func(key string, b []byte) {
		if err := blob.PutBytes(ctx, store, key, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A meta object moved over another: caught, named.
	t1 := read("meta/targets/t1")
	put("meta/targets/t1", read("meta/targets/t2"))
	var v map[string]string
	if err := r.GetMeta(ctx, "targets/t1", &v); !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), "meta/targets/t1") {
		t.Fatalf("meta object moved to another key: %v", err)
	}
	// A flipped bit in a meta object.
	t1[len(t1)/2] ^= 0x01
	put("meta/targets/t1", t1)
	if err := r.GetMeta(ctx, "targets/t1", &v); !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), "meta/targets/t1") {
		t.Fatalf("flipped meta object: %v", err)
	}
	// A flipped digit in graphkeep.repo.
	cfg := read(repo.ConfigKey)
	flipped := bytes.Replace(cfg, []byte(`"avg_size": 1048576`), []byte(`"avg_size": 1048577`), 1)
	if bytes.Equal(flipped, cfg) {
		t.Fatalf("the config does not look as expected:\n%s", cfg)
	}
	put(repo.ConfigKey, flipped)
	if _, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()}); !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), repo.ConfigKey) {
		t.Fatalf("flipped config: %v", err)
	}
	// Another repository's config over these objects.
	other := newStore(t)
	if _, err := repo.Init(ctx, other, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	otherCfg, _ := blob.ReadAll(ctx, other, repo.ConfigKey)
	put(repo.ConfigKey, otherCfg)
	swapped, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := swapped.LoadManifest(ctx, m.Ref()); !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), repo.ConfigKey) {
		t.Fatalf("manifest read under another repository's config: %v", err)
	}
}

// TestDamagedEncryptedConfigIsNamed: a flipped KDF parameter is caught by
// the config's checksum, and (in a config without one) the KDF's own
// complaint names graphkeep.repo.
func TestDamagedEncryptedConfigIsNamed(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	if _, err := repo.Init(ctx, store, repo.InitOptions{Password: "pw", KDF: cheapKDF}); err != nil {
		t.Fatal(err)
	}
	data, _ := blob.ReadAll(ctx, store, repo.ConfigKey)
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["encryption"].(map[string]any)["kdf_params"].(map[string]any)["n"] = 1
	for _, withChecksum := range []bool{true, false} {
		if !withChecksum {
			delete(cfg, "checksum")
		}
		b, _ := json.Marshal(cfg)
		if err := blob.PutBytes(ctx, store, repo.ConfigKey, b, nil); err != nil {
			t.Fatal(err)
		}
		_, err := repo.Open(ctx, store, repo.OpenOptions{Password: "pw"})
		if !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), repo.ConfigKey) {
			t.Fatalf("checksum %v: open with a flipped KDF parameter: %v", withChecksum, err)
		}
	}
}

// TestHostileConfigIsRefused: a config whose id is a path (it names the
// local cache directory) or whose KDF would allocate gigabytes is refused
// as corrupt, not obeyed.
func TestHostileConfigIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []string{
		`{"version": 1, "id": "../../../../tmp/evil", "chunker": {"algorithm": "fastcdc", "min_size": 262144, "avg_size": 1048576, "max_size": 4194304}, "compression": {"algorithm": "zstd", "level": "fastest"}}`,
		`{"version": 1, "id": "0123456789abcdef0123456789abcdef", "chunker": {"algorithm": "fastcdc", "min_size": 262144, "avg_size": 1048576, "max_size": 4194304}, "compression": {"algorithm": "zstd", "level": "fastest"},
		  "encryption": {"cipher": "aes-256-gcm", "kdf": "scrypt", "kdf_params": {"n": 1073741824, "r": 8, "p": 1}, "salt": "AAAA", "wrapped_key": "AAAA"}}`,
	} {
		store := newStore(t)
		_ = blob.PutBytes(ctx, store, repo.ConfigKey, []byte(cfg), nil)
		if _, err := repo.Open(ctx, store, repo.OpenOptions{Password: "pw", CacheDir: t.TempDir()}); !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), repo.ConfigKey) {
			t.Fatalf("open with a hostile config: %v", err)
		}
	}
}

// New repositories compress with S2; zstd and none stay choosable, and an
// unknown choice is refused before anything is written, naming the choices.
func TestInitCompressionChoices(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		compression, level, want string
	}{
		{"", "", `"algorithm":"s2","level":"fastest"`},
		{"zstd", "", `"algorithm":"zstd","level":"fastest"`},
		{"s2", "better", `"algorithm":"s2","level":"better"`},
		{"none", "", `"algorithm":"none"`},
	} {
		store := newStore(t)
		if _, err := repo.Init(ctx, store, repo.InitOptions{Compression: c.compression, CompressionLevel: c.level}); err != nil {
			t.Fatalf("%s/%s: %v", c.compression, c.level, err)
		}
		raw, _ := blob.ReadAll(ctx, store, repo.ConfigKey)
		var cfg bytes.Buffer
		_ = json.Compact(&cfg, raw)
		if !strings.Contains(cfg.String(), c.want) {
			t.Fatalf("%s/%s: config %s, want %s", c.compression, c.level, cfg.String(), c.want)
		}
	}
	for _, c := range []struct{ compression, level, want string }{
		{"lz4", "", "use s2, zstd or none"},
		{"s2", "max", "use fastest, default or better"},
	} {
		store := newStore(t)
		_, err := repo.Init(ctx, store, repo.InitOptions{Compression: c.compression, CompressionLevel: c.level})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s/%s: %v, want an error saying %q", c.compression, c.level, err, c.want)
		}
		var written []string
		_ = blob.WalkKeys(ctx, store, "", func(o blob.Object) error { written = append(written, o.Key); return nil })
		if len(written) != 0 {
			t.Fatalf("%s/%s: a refused init wrote %v", c.compression, c.level, written)
		}
	}
}

// A new repository packs chunks (format 3) unless told not to (format 1,
// which releases from before packs read); a pack size outside 1..256 MiB
// is refused before anything is written, and a config whose format and
// pack size disagree is refused on open.
func TestInitPackChoices(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		packSize, format, want int
	}{
		{0, 3, repo.DefaultPackSize},
		{16 << 20, 3, 16 << 20},
		{-1, 1, 0},
	} {
		store := newStore(t)
		if _, err := repo.Init(ctx, store, repo.InitOptions{PackSize: c.packSize}); err != nil {
			t.Fatalf("pack size %d: %v", c.packSize, err)
		}
		r, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if r.Format() != c.format || r.PackSize() != c.want {
			t.Fatalf("pack size %d: format %d, packs of %d, want %d and %d", c.packSize, r.Format(), r.PackSize(), c.format, c.want)
		}
	}
	for _, size := range []int{512 << 10, repo.MaxPackSize + 1} {
		store := newStore(t)
		_, err := repo.Init(ctx, store, repo.InitOptions{PackSize: size})
		if err == nil || !strings.Contains(err.Error(), "outside 1 MiB..256 MiB") {
			t.Fatalf("pack size %d: %v, want it refused", size, err)
		}
		var written []string
		_ = blob.WalkKeys(ctx, store, "", func(o blob.Object) error { written = append(written, o.Key); return nil })
		if len(written) != 0 {
			t.Fatalf("pack size %d: a refused init wrote %v", size, written)
		}
	}
	// A packed config without a pack size (a hand edit, or damage that
	// kept the checksum out): refused, never read as format 1.
	store := newStore(t)
	if _, err := repo.Init(ctx, store, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	repotest.EditConfig(t, store, func(cfg map[string]any) { delete(cfg, "pack") })
	if _, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()}); !errors.Is(err, repo.ErrUnsupported) || !strings.Contains(err.Error(), "needs a pack size") {
		t.Fatalf("open of a format 3 config without packs: %v", err)
	}
}

// Format 3 names chunks with BLAKE3 (keyed when encrypted); a format 2
// repository keeps naming them with SHA-256 (HMAC'd when encrypted), so
// its chunks keep their ids and later backups still deduplicate against
// them. Each format's chunks read back under their own ids.
func TestChunkIDsFollowTheFormat(t *testing.T) {
	ctx := context.Background()
	data := []byte("a chunk of a LightRAG graph")
	for _, password := range []string{"", "secret"} {
		store := newStore(t)
		if _, err := repo.Init(ctx, store, repo.InitOptions{Password: password, KDF: cheapKDF}); err != nil {
			t.Fatal(err)
		}
		open := func() *repo.Repository {
			t.Helper()
			r, err := repo.Open(ctx, store, repo.OpenOptions{Password: password, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		r3 := open()
		id3 := r3.HashChunk(data)
		if err := r3.PutChunk(ctx, id3, r3.EncodeChunk(id3, data)); err != nil {
			t.Fatal(err)
		}
		repotest.AsFormat2(t, store)
		r2 := open()
		if r2.Format() != 2 {
			t.Fatalf("format %d after the edit, want 2", r2.Format())
		}
		id2 := r2.HashChunk(data)
		if id2 == id3 {
			t.Fatalf("password %q: formats 2 and 3 name a chunk alike (%s)", password, id2)
		}
		if password == "" {
			if want := repo.ChunkID(sha256.Sum256(data)); id2 != want {
				t.Fatalf("format 2 id %s, want the SHA-256 %s", id2, want)
			}
			if want := repo.ChunkID(blake3.Sum256(data)); id3 != want {
				t.Fatalf("format 3 id %s, want the BLAKE3 %s", id3, want)
			}
		}
		if err := r2.PutChunk(ctx, id2, r2.EncodeChunk(id2, data)); err != nil {
			t.Fatal(err)
		}
		if got, err := r2.ReadChunk(ctx, id2); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("password %q: format 2 chunk read back as %q, %v", password, got, err)
		}
		// Read under the other format's hash, a chunk fails its check:
		// the id is what is verified.
		if _, err := r2.ReadChunk(ctx, id3); !errors.Is(err, repo.ErrCorrupt) {
			t.Fatalf("password %q: a format 3 chunk read as format 2: %v, want corrupt", password, err)
		}
	}
}

// A config whose version and chunk id hash disagree, or of a version
// newer than this release, is refused with what was found.
func TestConfigFormatMismatchesAreRefused(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		edit func(map[string]any)
		want string
	}{
		{func(cfg map[string]any) { delete(cfg, "chunk_ids") }, `names chunks with "blake3", not ""`},
		{func(cfg map[string]any) { cfg["version"] = 2 }, `format 2 repository names chunks with SHA-256, not "blake3"`},
		{func(cfg map[string]any) { cfg["chunk_ids"] = "md5" }, `not "md5"`},
		{func(cfg map[string]any) { cfg["version"] = 4 }, "version 4, this release reads versions 1 to 3"},
		{func(cfg map[string]any) { cfg["version"] = 0 }, "version 0, this release reads versions 1 to 3"},
	} {
		store := newStore(t)
		if _, err := repo.Init(ctx, store, repo.InitOptions{}); err != nil {
			t.Fatal(err)
		}
		repotest.EditConfig(t, store, c.edit)
		_, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
		if !errors.Is(err, repo.ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("open: %v, want unsupported: %s", err, c.want)
		}
	}
}

// A release from before format 3 reads graphkeep.repo into a config that
// lacks chunk_ids, checks the checksum over what it read, then the
// version: the checksum must hold without the field, so that release
// names the version it cannot read instead of calling the config corrupt.
// A flipped chunk_ids is still refused, by the version it disagrees with.
func TestFormat3ConfigReadsAsANewerVersionToOlderReleases(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	if _, err := repo.Init(ctx, store, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, err := blob.ReadAll(ctx, store, repo.ConfigKey)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // the chunker's seed is a uint64: no float64 round trip
	if err := dec.Decode(&cfg); err != nil || cfg["chunk_ids"] != "blake3" || cfg["checksum"] == "" {
		t.Fatalf("config %s: %v", raw, err)
	}
	// What the older release sees: the same config without the field, with
	// the checksum it carries. Opened by this release it passes the
	// checksum, so the older release passes it too and reaches the version.
	delete(cfg, "chunk_ids")
	old, _ := json.Marshal(cfg)
	if err := blob.PutBytes(ctx, store, repo.ConfigKey, old, nil); err != nil {
		t.Fatal(err)
	}
	_, err = repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()})
	if !errors.Is(err, repo.ErrUnsupported) || errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), `names chunks with "blake3", not ""`) {
		t.Fatalf("a format 3 config without chunk_ids, checksum kept: %v, want refused by its format, not as corrupt", err)
	}
	cfg["chunk_ids"] = "blake2"
	flipped, _ := json.Marshal(cfg)
	if err := blob.PutBytes(ctx, store, repo.ConfigKey, flipped, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, store, repo.OpenOptions{CacheDir: t.TempDir()}); !errors.Is(err, repo.ErrUnsupported) {
		t.Fatalf("a format 3 config with chunk_ids flipped: %v", err)
	}
}
