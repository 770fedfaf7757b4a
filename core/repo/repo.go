// Package repo is graphkeep's repository format, v1: the config object, the
// object encoding (zstd, AES-256-GCM), content-addressed chunks, snapshot
// manifests, the local manifest cache and leases. It knows nothing of files
// or graphs beyond the manifest schema; core/backup builds on it.
package repo

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/chunker"
)

// FormatVersion is the repository format this code writes: 3 packs
// chunks (PackConfig) and names them with keyed BLAKE3 (Config.ChunkIDs).
// It reads and writes the formats before it as well: 2 packs chunks named
// with HMAC-SHA-256, 1 stores each chunk as an object of its own (and is
// what init writes when told not to pack, so that a release from before
// packs can read that repository).
const FormatVersion = 3

const (
	// formatUnpacked is the format of repositories that store each chunk
	// as an object of its own.
	formatUnpacked = 1
	// formatPacked packs chunks but names them with (HMAC-)SHA-256.
	formatPacked = 2
)

// ConfigKey is the object that makes a prefix a repository.
const ConfigKey = "graphkeep.repo"

// Errors callers act on.
var (
	ErrNotARepository = &problem.Error{Kind: problem.NotFound, Code: "not_found", Remedy: problem.CreateRepository, Msg: "no graphkeep repository here"}
	// ErrConfigLost: the location holds snapshots or chunks but no
	// graphkeep.repo (it was deleted or lost).
	ErrConfigLost      = &problem.Error{Kind: problem.Damaged, Code: "config_lost", Remedy: problem.CopyConfig, Msg: "the repository's config object is missing"}
	ErrAlreadyExists   = &problem.Error{Kind: problem.Conflict, Code: "conflict", Msg: "a graphkeep repository already exists here"}
	ErrWrongPassword   = &problem.Error{Kind: problem.Credentials, Code: "password", Msg: "wrong password"}
	ErrPasswordNeeded  = &problem.Error{Kind: problem.Credentials, Code: "password", Remedy: problem.GivePassword, Msg: "the repository is encrypted and no password was given"}
	ErrUnsupported     = &problem.Error{Kind: problem.Invalid, Code: "unsupported", Remedy: problem.Upgrade, Msg: "unsupported repository format"}
	ErrCorrupt         = &problem.Error{Kind: problem.Damaged, Code: "corrupt", Msg: "corrupt object"}
	ErrSnapshotMissing = &problem.Error{Kind: problem.NotFound, Code: "not_found", Remedy: problem.ListSnapshots, Msg: "snapshot not found"}
)

// Config is the content of graphkeep.repo. It is written once, at init.
type Config struct {
	Version     int               `json:"version"`
	ID          string            `json:"id"`
	Created     time.Time         `json:"created"`
	Chunker     ChunkerConfig     `json:"chunker"`
	Compression CompressionConfig `json:"compression"`
	Encryption  *EncryptionConfig `json:"encryption,omitempty"`
	// Pack is how new chunks are packed (formats 2 and 3; nil in format 1).
	Pack *PackConfig `json:"pack,omitempty"`
	// ChunkIDs is the hash that names chunks: "blake3" (format 3: keyed
	// BLAKE3 when encrypted) or "" (formats 1 and 2: HMAC-SHA-256 when
	// encrypted, else SHA-256).
	ChunkIDs string `json:"chunk_ids,omitempty"`
	// Lock is the object lock policy every durable write follows (nil:
	// none).
	Lock *LockPolicy `json:"lock,omitempty"`
	// Checksum is this config's own (see configChecksum); configs written
	// before it existed have none.
	Checksum string `json:"checksum,omitempty"`
}

// ChunkerConfig records how files are cut. The gear seed of an encrypted
// repository lives inside the wrapped key, so boundaries leak nothing.
type ChunkerConfig struct {
	Algorithm string `json:"algorithm"` // "fastcdc"
	MinSize   int    `json:"min_size"`
	AvgSize   int    `json:"avg_size"`
	MaxSize   int    `json:"max_size"`
	Seed      uint64 `json:"seed,omitempty"`
}

// CompressionConfig records how objects are compressed.
type CompressionConfig struct {
	Algorithm string `json:"algorithm"` // "zstd" or "none"
	Level     string `json:"level,omitempty"`
}

// InitOptions choose a new repository's parameters.
type InitOptions struct {
	// Password encrypts the repository; empty means no encryption.
	Password string
	// AvgChunkSize is a power of two; 0 means 1 MiB.
	AvgChunkSize int
	// Compression: "s2" (default), "zstd" or "none"; CompressionLevel
	// "fastest" (default), "default" or "better".
	Compression      string
	CompressionLevel string
	// PackSize is the stored bytes a pack of chunks is filled to; 0 means
	// DefaultPackSize, and a negative size stores each chunk as an object
	// of its own (format 1, readable by releases from before packs).
	PackSize int
	// KDF overrides the key-derivation cost (tests use a cheap one).
	KDF *KDFParams
	// Lock makes the repository immutable for a time (object lock; S3
	// buckets created with it only).
	Lock *LockPolicy
	// KeyCache remembers the key derived from Password (nil: nothing).
	KeyCache KeyCache
}

// OpenOptions say how to open a repository.
type OpenOptions struct {
	Password string
	// CacheDir holds the local manifest cache; "" means the user cache dir.
	CacheDir string
	// KeyCache spares the key derivation when it holds the key derived
	// from Password, and remembers it when not (nil: derive every time).
	KeyCache KeyCache
}

// Repository is an opened repository.
type Repository struct {
	store  blob.Store
	cfg    Config
	keys   *Keys
	codec  *codec
	params chunker.Params
	cache  *Cache
	keyID  string // the key whose password opened it (ConfigKeyID, an id under keys/, or "")
	// keyCache remembers the keys derived for new passwords (key add, passwd).
	keyCache KeyCache
	// moved holds the trailers of compacted packs read (packIndexes).
	moved *packIndexes
}

// Init creates a repository in store. It fails with ErrAlreadyExists when
// one is there: the config is written with create-if-absent.
func Init(ctx context.Context, store blob.Store, opts InitOptions) (*Repository, error) {
	avg := opts.AvgChunkSize
	if avg == 0 {
		avg = 1 << 20
	}
	params, err := chunker.ParamsForAverage(avg, randomUint64())
	if err != nil {
		return nil, err
	}
	// S2 "fastest": most of a LightRAG graph is base64 embeddings, which
	// are packed whatever the compression; on the rest (text, GraphML)
	// S2 runs 2.3-2.8x faster than zstd "fastest" and stores 0.34-0.46 of
	// it where zstd stores 0.23-0.32. A 525 MiB workspace: 332 MiB stored
	// against 303 MiB, a full backup 2.6-3.0 s against 3.6 s (2 cores).
	comp := CompressionConfig{Algorithm: "s2", Level: "fastest"}
	if opts.Compression != "" {
		comp.Algorithm = opts.Compression
	}
	if opts.CompressionLevel != "" {
		comp.Level = opts.CompressionLevel
	}
	if err := comp.validate(); err != nil {
		return nil, err
	}
	cfg := Config{
		Version:     FormatVersion,
		ID:          randomHex(16),
		Created:     time.Now().UTC().Truncate(time.Second),
		Chunker:     ChunkerConfig{Algorithm: "fastcdc", MinSize: params.MinSize, AvgSize: params.AvgSize, MaxSize: params.MaxSize},
		Compression: comp,
		Pack:        &PackConfig{Size: DefaultPackSize},
		ChunkIDs:    chunkIDsBLAKE3,
	}
	switch {
	case opts.PackSize < 0:
		cfg.Version, cfg.Pack, cfg.ChunkIDs = formatUnpacked, nil, ""
	case opts.PackSize > 0:
		cfg.Pack.Size = opts.PackSize
	}
	if err := cfg.validateFormat(); err != nil {
		return nil, err
	}
	if opts.Lock != nil {
		// Before anything is written: a lock the store cannot keep would
		// be a promise broken by the first write.
		if err := checkLockable(ctx, store, opts.Lock); err != nil {
			return nil, err
		}
		lock := *opts.Lock
		cfg.Lock = &lock
	} else if p, err := bucketDefaultLock(ctx, store); err != nil {
		return nil, err
	} else {
		cfg.Lock = p // a bucket that locks by default: follow its policy
	}
	var keys *Keys
	if opts.Password != "" {
		kdf := DefaultKDF()
		if opts.KDF != nil {
			kdf = *opts.KDF
		}
		keys = newKeys(params.Seed)
		enc, err := wrapKeys(keys, opts.Password, kdf, opts.KeyCache)
		if err != nil {
			return nil, err
		}
		cfg.Encryption = enc
	} else {
		cfg.Chunker.Seed = params.Seed
	}
	cfg.Checksum = configChecksum(cfg)
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	// A repository that lost its config still holds its data: a new config
	// over it would put new keys and a new id over old snapshots.
	if held, err := holdsData(ctx, store); err != nil {
		return nil, err
	} else if held != "" {
		if _, ok, _ := ReadConfig(ctx, store); ok {
			return nil, fmt.Errorf("%s: %w", store.Location(), ErrAlreadyExists)
		}
		return nil, fmt.Errorf("%s holds repository data (%s) but no %s: %w; do not create a new repository over it: copy %s from a replica of this repository into place, or promote a replica",
			store.Location(), held, ConfigKey, ErrConfigLost, ConfigKey)
	}
	// A local folder gets its 256 chunk directories now, as restic does,
	// not one by one in the first backup. Before the config: a failure
	// leaves no repository behind.
	if err := blob.Prepare(ctx, store, chunkDirs()); err != nil {
		return nil, fmt.Errorf("create the chunk directories: %w", err)
	}
	if err := blob.PutBytes(ctx, store, ConfigKey, data, &blob.PutOptions{IfAbsent: true, ContentType: "application/json", Retain: retentionFrom(cfg.Lock, time.Now())}); err != nil {
		if errors.Is(err, blob.ErrExists) {
			return nil, fmt.Errorf("%s: %w", store.Location(), ErrAlreadyExists)
		}
		return nil, fmt.Errorf("write %s: %w", ConfigKey, err)
	}
	r, err := newRepository(store, cfg, keys, "")
	if err == nil && keys != nil {
		r.keyID, r.keyCache = ConfigKeyID, opts.KeyCache
	}
	return r, err
}

// Open reads the config of the repository in store and unlocks its keys.
func Open(ctx context.Context, store blob.Store, opts OpenOptions) (*Repository, error) {
	cfg, err := readValidConfig(ctx, store)
	if err != nil {
		return nil, err
	}
	keys, keyID, err := unlock(ctx, store, cfg, opts.Password, opts.KeyCache)
	if err != nil {
		return nil, err
	}
	return openWith(store, cfg, keys, keyID, opts)
}

// OpenLeased opens the repository and takes a lease of kind for purpose at
// the same time: deriving the key from the password (CPU, a tenth of a
// second) overlaps the lease's round trips, which a cloud store makes as
// long. A wrong password releases the lease and fails as Open does.
func OpenLeased(ctx context.Context, store blob.Store, opts OpenOptions, kind, purpose string, lopts LeaseOptions) (*Repository, *Lease, error) {
	cfg, err := readValidConfig(ctx, store)
	if err != nil {
		return nil, nil, err
	}
	type unlocked struct {
		keys  *Keys
		keyID string
		err   error
	}
	done := make(chan unlocked, 1)
	go func() {
		k, id, err := unlock(ctx, store, cfg, opts.Password, opts.KeyCache)
		done <- unlocked{k, id, err}
	}()
	// Leases are plain objects: taking one needs the store, not the keys.
	lease, leaseErr := (&Repository{store: store, cfg: cfg}).AcquireLease(ctx, kind, purpose, lopts)
	u := <-done
	if u.err != nil || leaseErr != nil {
		if lease != nil {
			_ = lease.Release()
		}
		if u.err != nil {
			return nil, nil, u.err
		}
		return nil, nil, leaseErr
	}
	r, err := openWith(store, cfg, u.keys, u.keyID, opts)
	if err != nil {
		_ = lease.Release()
		return nil, nil, err
	}
	return r, lease, nil
}

func openWith(store blob.Store, cfg Config, keys *Keys, keyID string, opts OpenOptions) (*Repository, error) {
	r, err := newRepository(store, cfg, keys, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	r.keyID, r.keyCache = keyID, opts.KeyCache
	return r, nil
}

// readValidConfig reads and checks the config of the repository in store.
func readValidConfig(ctx context.Context, store blob.Store) (Config, error) {
	data, err := blob.ReadAll(ctx, store, ConfigKey)
	if errors.Is(err, blob.ErrNotFound) {
		if held, herr := holdsData(ctx, store); herr == nil && held != "" {
			return Config{}, fmt.Errorf("%s holds repository data (%s) but its %s is missing: %w; copy %s from a replica of this repository into place, or promote a replica",
				store.Location(), held, ConfigKey, ErrConfigLost, ConfigKey)
		}
		return Config{}, fmt.Errorf("%s: %w (no %s)", store.Location(), ErrNotARepository, ConfigKey)
	}
	if err != nil {
		return Config{}, fmt.Errorf("read %s: %w", ConfigKey, err)
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s in %s: %w: %v", ConfigKey, store.Location(), ErrCorrupt, err)
	}
	if cfg.Checksum != "" && cfg.Checksum != configChecksum(cfg) {
		return Config{}, fmt.Errorf("%s in %s: %w: its checksum does not match its content (a flipped bit?); copy %s from a replica of this repository",
			ConfigKey, store.Location(), ErrCorrupt, ConfigKey)
	}
	if cfg.Version < formatUnpacked || cfg.Version > FormatVersion {
		return Config{}, fmt.Errorf("%s: %w: version %d, this release reads versions %d to %d",
			store.Location(), ErrUnsupported, cfg.Version, formatUnpacked, FormatVersion)
	}
	if err := cfg.validateFormat(); err != nil {
		return Config{}, fmt.Errorf("%s: %w: %v", store.Location(), ErrUnsupported, err)
	}
	if !validRepoID(cfg.ID) {
		// The id names the local cache directory: it must not be a path.
		return Config{}, fmt.Errorf("%s in %s: %w: repository id %q is not 32 hex digits; copy %s from a replica of this repository",
			ConfigKey, store.Location(), ErrCorrupt, cfg.ID, ConfigKey)
	}
	if cfg.Chunker.Algorithm != "fastcdc" {
		return Config{}, fmt.Errorf("%s: %w: chunker %q", store.Location(), ErrUnsupported, cfg.Chunker.Algorithm)
	}
	if err := cfg.Compression.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w: %v", store.Location(), ErrUnsupported, err)
	}
	return cfg, nil
}

// unlock derives the key from password and unwraps the master keys: from
// the config's key, else from one under keys/.
func unlock(ctx context.Context, store blob.Store, cfg Config, password string, kc KeyCache) (*Keys, string, error) {
	if cfg.Encryption == nil {
		return nil, "", nil
	}
	if password == "" {
		return nil, "", fmt.Errorf("%s: %w", store.Location(), ErrPasswordNeeded)
	}
	keyID := ConfigKeyID
	keys, err := unwrapKeys(cfg.Encryption, password, kc)
	if errors.Is(err, ErrWrongPassword) {
		// Another password may open it (keys/).
		keys, keyID, err = unlockWithKeys(ctx, store, password, kc)
		if err != nil && !errors.Is(err, ErrWrongPassword) {
			return nil, "", fmt.Errorf("%s: %w", store.Location(), err)
		}
	}
	if err != nil {
		if errors.Is(err, ErrWrongPassword) {
			return nil, "", fmt.Errorf("%s: %w", store.Location(), err)
		}
		return nil, "", fmt.Errorf("%s in %s: its encryption parameters are unusable (%v): %w; copy %s from a replica of this repository",
			ConfigKey, store.Location(), err, ErrCorrupt, ConfigKey)
	}
	return keys, keyID, nil
}

func validRepoID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// holdsData names an object under snapshots/ or chunks/, "" when both are
// empty.
func holdsData(ctx context.Context, store blob.Store) (string, error) {
	for _, prefix := range []string{SnapshotPrefix, ChunkPrefix} {
		objs, _, err := store.List(ctx, blob.ListOptions{Prefix: prefix, PageSize: 1})
		if err != nil {
			return "", fmt.Errorf("list %s: %w", prefix, err)
		}
		if len(objs) > 0 {
			return objs[0].Key, nil
		}
	}
	return "", nil
}

func newRepository(store blob.Store, cfg Config, keys *Keys, cacheDir string) (*Repository, error) {
	seed := cfg.Chunker.Seed
	if keys != nil {
		seed = keys.ChunkerSeed
	}
	params := chunker.Params{MinSize: cfg.Chunker.MinSize, AvgSize: cfg.Chunker.AvgSize, MaxSize: cfg.Chunker.MaxSize, Seed: seed}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	c, err := newCodec(cfg.Compression, keys)
	if err != nil {
		return nil, err
	}
	if cacheDir == "" {
		cacheDir = fallbackCacheDir()
	}
	r := &Repository{store: store, cfg: cfg, keys: keys, codec: c, params: params, moved: &packIndexes{}}
	// One cache per repository id and location: a replica holds the same
	// manifests but not always the same set of them.
	loc := sha256.Sum256([]byte(store.Location()))
	r.cache = &Cache{dir: filepath.Join(cacheDir, cfg.ID, hex.EncodeToString(loc[:6])), repo: r}
	return r, nil
}

// fallbackCacheDir is <user cache dir>/graphkeep: where the cache goes when
// the caller names none.
func fallbackCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "graphkeep")
	}
	return filepath.Join(os.TempDir(), "graphkeep-cache")
}

// Config returns the repository's config.
func (r *Repository) Config() Config { return r.cfg }

// ID returns the repository id (shared by every replica).
func (r *Repository) ID() string { return r.cfg.ID }

// Encrypted reports whether objects are encrypted.
func (r *Repository) Encrypted() bool { return r.keys != nil }

// Store returns the storage the repository lives in.
func (r *Repository) Store() blob.Store { return r.store }

// Format is the repository's format version (see FormatVersion).
func (r *Repository) Format() int { return r.cfg.Version }

// chunkIDsBLAKE3 names chunks with BLAKE3, keyed with the id key when
// encrypted (format 3).
const chunkIDsBLAKE3 = "blake3"

// validateFormat checks that the format, the pack size and the chunk id
// hash agree.
func (cfg Config) validateFormat() error {
	switch {
	case cfg.Version == formatUnpacked && cfg.Pack != nil:
		return errors.New("a format 1 repository has no pack size")
	case cfg.Version >= formatPacked && cfg.Pack == nil:
		return fmt.Errorf("a format %d repository needs a pack size", cfg.Version)
	case cfg.Version < FormatVersion && cfg.ChunkIDs != "":
		return fmt.Errorf("a format %d repository names chunks with SHA-256, not %q", cfg.Version, cfg.ChunkIDs)
	case cfg.Version == FormatVersion && cfg.ChunkIDs != chunkIDsBLAKE3:
		return fmt.Errorf("a format %d repository names chunks with %q, not %q", cfg.Version, chunkIDsBLAKE3, cfg.ChunkIDs)
	case cfg.Pack != nil && (cfg.Pack.Size < 1<<20 || cfg.Pack.Size > MaxPackSize):
		return fmt.Errorf("pack size %d bytes is outside 1 MiB..%d MiB", cfg.Pack.Size, MaxPackSize>>20)
	}
	return nil
}

// ChunkerParams returns how files are cut.
func (r *Repository) ChunkerParams() chunker.Params { return r.params }

// Cache returns the local manifest cache.
func (r *Repository) Cache() *Cache { return r.cache }

func (c CompressionConfig) validate() error {
	switch c.Algorithm {
	case "none":
		return nil
	case "s2", "zstd":
		if _, ok := s2Levels[c.Level]; ok { // both algorithms name the same levels
			return nil
		}
		return fmt.Errorf("compression level %q: use fastest, default or better", c.Level)
	}
	return fmt.Errorf("compression %q: use s2, zstd or none", c.Algorithm)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// OnStore returns the same repository over another store holding (or about
// to hold) a replica of it: same id, same keys, its own manifest cache. It
// does not check that store holds this repository; replication does.
func (r *Repository) OnStore(store blob.Store, cacheDir string) *Repository {
	if cacheDir == "" {
		cacheDir = filepath.Dir(filepath.Dir(r.cache.dir))
	}
	view := &Repository{store: store, cfg: r.cfg, keys: r.keys, codec: r.codec, params: r.params, moved: &packIndexes{}}
	loc := sha256.Sum256([]byte(store.Location()))
	view.cache = &Cache{dir: filepath.Join(cacheDir, r.cfg.ID, hex.EncodeToString(loc[:6])), repo: view}
	return view
}

// WithLock is r following lock policy p instead of its config's (a
// replication target with a lock policy of its own; nil: none).
func (r *Repository) WithLock(p *LockPolicy) *Repository {
	view := *r
	view.cfg.Lock = p
	view.cache = &Cache{dir: r.cache.dir, repo: &view}
	return &view
}

// ReadConfig reads the config object of the repository in store, if any;
// ok is false when store holds none.
func ReadConfig(ctx context.Context, store blob.Store) (cfg Config, ok bool, err error) {
	data, err := blob.ReadAll(ctx, store, ConfigKey)
	if errors.Is(err, blob.ErrNotFound) {
		return Config{}, false, nil
	}
	if err != nil {
		return Config{}, false, err
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return Config{}, true, fmt.Errorf("%s in %s: %w: %v", ConfigKey, store.Location(), ErrCorrupt, err)
	}
	return cfg, true, nil
}
