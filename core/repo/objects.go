package repo

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/blob"
)

// ChunkID names a chunk: SHA-256 of its plaintext, or HMAC-SHA-256 under the
// repository's id key when encrypted.
type ChunkID [32]byte

// String is the lowercase hex form used in keys and manifests.
func (id ChunkID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id ChunkID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ChunkID) UnmarshalText(b []byte) error {
	parsed, err := ParseChunkID(string(b))
	*id = parsed
	return err
}

// ParseChunkID reads the hex form.
func ParseChunkID(s string) (ChunkID, error) {
	var id ChunkID
	if len(s) != 64 {
		return id, fmt.Errorf("chunk id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("chunk id %q: %v", s, err)
	}
	return id, nil
}

// ChunkKey is where a chunk is stored: chunks/<first two hex digits>/<id>.
func ChunkKey(id ChunkID) string {
	s := id.String()
	return "chunks/" + s[:2] + "/" + s
}

// chunkDirs are the key prefixes chunks are spread over (chunks/00/ ...).
func chunkDirs() []string {
	dirs := make([]string, 0, 256)
	for i := range 256 {
		dirs = append(dirs, fmt.Sprintf("%s%02x/", ChunkPrefix, i))
	}
	return dirs
}

// ChunkPrefix is the prefix every chunk key starts with.
const ChunkPrefix = "chunks/"

// HashChunk computes the id of a chunk's plaintext.
func (r *Repository) HashChunk(data []byte) ChunkID {
	h := r.idHasher()
	h.Write(data)
	var id ChunkID
	h.Sum(id[:0])
	return id
}

// EncodeChunk returns the stored form of a chunk (compressed, encrypted).
func (r *Repository) EncodeChunk(id ChunkID, data []byte) []byte {
	return r.codec.encode(data, ChunkKey(id))
}

// EncodeChunkTo is EncodeChunk writing into dst's memory (grown when too
// small), for pipelines that reuse buffers.
func (r *Repository) EncodeChunkTo(dst []byte, id ChunkID, data []byte) []byte {
	return r.codec.encodeTo(dst, data, ChunkKey(id))
}

// PutChunk stores an encoded chunk. Chunks are content-addressed, so writing
// one twice stores the same bytes.
func (r *Repository) PutChunk(ctx context.Context, id ChunkID, encoded []byte) error {
	return r.store.Put(ctx, ChunkKey(id), bytes.NewReader(encoded), &blob.PutOptions{Retain: r.retain()})
}

// ReadChunk fetches, decodes and verifies a chunk: a read is a verification.
func (r *Repository) ReadChunk(ctx context.Context, id ChunkID) ([]byte, error) {
	stored, err := blob.ReadAll(ctx, r.store, ChunkKey(id))
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", id, err)
	}
	return r.DecodeChunk(id, stored)
}

// PutChunkDeferred stores an encoded chunk that need only be durable once
// SyncChunks returns for it: a backup stores its chunks this way and syncs
// them all before it writes the manifest that names them.
func (r *Repository) PutChunkDeferred(ctx context.Context, id ChunkID, encoded []byte) error {
	return r.store.Put(ctx, ChunkKey(id), bytes.NewReader(encoded), &blob.PutOptions{DeferSync: true, Retain: r.retain()})
}

// SyncChunks makes the chunks ids, stored with PutChunkDeferred, durable.
func (r *Repository) SyncChunks(ctx context.Context, ids []ChunkID) error {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = ChunkKey(id)
	}
	return blob.Sync(ctx, r.store, keys)
}

// Check says how a read verifies a chunk.
type Check int

const (
	// CheckID re-derives the chunk's id from its plaintext.
	CheckID Check = iota
	// CheckSealed accepts the AES-GCM tag in an encrypted repository: it
	// authenticates the chunk under the repository key, bound to the key
	// the chunk is stored under (its id), so the bytes are the ones a key
	// holder stored as that id. For callers that verify the content again
	// end to end (restore checks every file's SHA-256). Unencrypted
	// repositories still re-derive the id.
	CheckSealed
)

// ReadChunkInto is ReadChunk reusing memory: the stored bytes are read into
// scratch and the plaintext is written into dst (each grown when too small).
// It returns the plaintext and the scratch buffer to use next time.
func (r *Repository) ReadChunkInto(ctx context.Context, id ChunkID, dst, scratch []byte, check Check) (plain, scratchOut []byte, err error) {
	stored, err := blob.ReadInto(ctx, r.store, ChunkKey(id), scratch)
	if err != nil {
		return nil, scratch, fmt.Errorf("chunk %s: %w", id, err)
	}
	plain, err = r.DecodeStored(id, stored, dst, check)
	return plain, stored, err
}

// DecodeChunk decodes a stored chunk and checks that it hashes to id.
func (r *Repository) DecodeChunk(id ChunkID, stored []byte) ([]byte, error) {
	plain, err := r.codec.decode(stored, ChunkKey(id))
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", id, err)
	}
	if err := r.checkChunk(id, plain); err != nil {
		return nil, fmt.Errorf("chunk %s: %w", id, err)
	}
	return plain, nil
}

// checkChunk re-derives a chunk's id from its plaintext: a read is a
// verification.
func (r *Repository) checkChunk(id ChunkID, plain []byte) error {
	if got := r.HashChunk(plain); got != id {
		return fmt.Errorf("%w: content hashes to %s", ErrCorrupt, got)
	}
	return nil
}

// SnapshotRef names one snapshot.
type SnapshotRef struct {
	Graph string    `json:"graph"`
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
}

// Key is where the snapshot's manifest is stored.
func (s SnapshotRef) Key() string { return SnapshotPrefix + s.Graph + "/" + s.ID }

// SnapshotPrefix is the prefix of every manifest key.
const SnapshotPrefix = "snapshots/"

// ValidGraphID reports whether id is a graph id: [A-Za-z0-9_-]{1,64}.
// (By hand, not with a regexp: every key of a listing goes through it.)
func ValidGraphID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidID reports whether id is a graph, target or job id (the same form).
func ValidID(id string) bool { return ValidGraphID(id) }

// ValidSnapshotID reports whether id has the form of a snapshot or
// checkpoint id (20261127T150405Z-k3f7qa).
func ValidSnapshotID(id string) bool { return snapshotIDShape(id) }

// snapshotIDTime is the time an id of the right shape names, refusing a
// date or time that does not exist (as time.Parse does, ten times faster:
// every key of a listing goes through it).
func snapshotIDTime(id string) (time.Time, bool) {
	if !snapshotIDShape(id) {
		return time.Time{}, false
	}
	num := func(from, to int) int {
		n := 0
		for _, c := range id[from:to] {
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), time.Month(num(4, 6)), num(6, 8)
	hour, minute, sec := num(9, 11), num(11, 13), num(13, 15)
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, month, day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // the 31st of a 30-day month, say
		return time.Time{}, false
	}
	return t, true
}

// snapshotIDShape reports whether id matches ^\d{8}T\d{6}Z-[a-z2-7]{6}$.
func snapshotIDShape(id string) bool {
	if len(id) != len("20261127T150405Z-k3f7qa") || id[8] != 'T' || id[15] != 'Z' || id[16] != '-' {
		return false
	}
	for i := 0; i < 15; i++ {
		if i != 8 && (id[i] < '0' || id[i] > '9') {
			return false
		}
	}
	for i := 17; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// CheckGraphID returns a clear error for an invalid graph id.
func CheckGraphID(id string) error {
	if !ValidGraphID(id) {
		return problem.Errorf(problem.Invalid, problem.NoRemedy, id, "graph id %q is invalid: use 1 to 64 letters, digits, '_' or '-'", id)
	}
	return nil
}

// NewSnapshotID makes an id that sorts by time: 20261127T150405Z-k3f7qa.
// The suffix encodes the fraction of the second (30 bits, about a
// nanosecond) in a base-32 alphabet whose characters sort in value order,
// so ids of snapshots taken in the same second still sort by time, across
// processes. Two ids can only collide in the same nanosecond, and manifests
// are written with create-if-absent, so a collision fails loudly.
func NewSnapshotID(t time.Time) string {
	t = t.UTC()
	frac := uint64(t.Nanosecond()) << 30 / 1_000_000_000
	var b [6]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = sortableBase32[frac&31]
		frac >>= 5
	}
	return t.Format("20060102T150405Z") + "-" + string(b[:])
}

// sortableBase32 is base 32 in ascending byte order.
const sortableBase32 = "234567abcdefghijklmnopqrstuvwxyz"

// ParseSnapshotID checks an id and returns the time it carries.
func ParseSnapshotID(id string) (time.Time, error) {
	t, ok := snapshotIDTime(id)
	if !ok {
		return time.Time{}, fmt.Errorf("snapshot id %q is invalid: want the form 20261127T150405Z-k3f7qa", id)
	}
	return t, nil
}

// validSnapshotKey reports whether key is snapshots/<graph>/<id>, without
// reading the time in the id.
func validSnapshotKey(key string) bool {
	rest, found := strings.CutPrefix(key, SnapshotPrefix)
	graph, id, found2 := strings.Cut(rest, "/")
	return found && found2 && ValidGraphID(graph) && snapshotIDShape(id)
}

// parseSnapshotKey reads snapshots/<graph>/<id>; ok is false for anything
// else (including writes in progress).
func parseSnapshotKey(key string) (SnapshotRef, bool) {
	rest, found := strings.CutPrefix(key, SnapshotPrefix)
	if !found {
		return SnapshotRef{}, false
	}
	graph, id, found := strings.Cut(rest, "/")
	if !found || !ValidGraphID(graph) {
		return SnapshotRef{}, false
	}
	t, err := ParseSnapshotID(id)
	if err != nil {
		return SnapshotRef{}, false
	}
	return SnapshotRef{Graph: graph, ID: id, Time: t}, true
}

// SaveManifest writes a snapshot's manifest with create-if-absent: the
// snapshot becomes visible exactly now, and never half. Call it only after
// every chunk it names is stored.
func (r *Repository) SaveManifest(ctx context.Context, m *Manifest) error {
	if err := CheckGraphID(m.Graph); err != nil {
		return err
	}
	if _, err := ParseSnapshotID(m.ID); err != nil {
		return err
	}
	plain, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ref := m.Ref()
	if err := blob.PutBytes(ctx, r.store, ref.Key(), r.sealObject(plain, ref.Key()), &blob.PutOptions{IfAbsent: true, Retain: r.retain()}); err != nil {
		return fmt.Errorf("write manifest of snapshot %s/%s: %w", m.Graph, m.ID, err)
	}
	r.cache.store(ref, plain)
	return nil
}

// LoadManifest reads a snapshot's manifest from the repository (not the
// cache).
func (r *Repository) LoadManifest(ctx context.Context, ref SnapshotRef) (*Manifest, error) {
	stored, err := blob.ReadAll(ctx, r.store, ref.Key())
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("snapshot %s/%s: %w", ref.Graph, ref.ID, ErrSnapshotMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of snapshot %s/%s: %w", ref.Graph, ref.ID, err)
	}
	plain, err := r.openObject(stored, ref.Key())
	if err != nil {
		return nil, fmt.Errorf("manifest of snapshot %s/%s: %w", ref.Graph, ref.ID, err)
	}
	return parseManifest(plain, ref)
}

func parseManifest(plain []byte, ref SnapshotRef) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("manifest of snapshot %s/%s: %w: %v", ref.Graph, ref.ID, ErrCorrupt, err)
	}
	if m.Graph != ref.Graph || m.ID != ref.ID {
		return nil, fmt.Errorf("manifest stored as %s/%s names %s/%s: %w", ref.Graph, ref.ID, m.Graph, m.ID, ErrCorrupt)
	}
	return &m, nil
}

// DeleteSnapshot removes a snapshot's manifest. Its chunks stay until prune.
func (r *Repository) DeleteSnapshot(ctx context.Context, ref SnapshotRef) error {
	until, err := r.LockedUntil(ctx, ref.Key())
	if err != nil {
		return fmt.Errorf("snapshot %s/%s: %w", ref.Graph, ref.ID, err)
	}
	if !until.IsZero() {
		return fmt.Errorf("snapshot %s/%s is locked until %s (%s object lock): %w; it can be forgotten from then on",
			ref.Graph, ref.ID, until.UTC().Format(time.RFC3339), r.cfg.Lock.Mode, ErrLocked)
	}
	if err := r.store.Delete(ctx, ref.Key()); err != nil {
		return fmt.Errorf("delete snapshot %s/%s: %w", ref.Graph, ref.ID, err)
	}
	r.cache.forget(ref)
	return nil
}

// ListSnapshots lists the snapshots of graph ("" for every graph), oldest
// first. It lists manifests, never chunks.
func (r *Repository) ListSnapshots(ctx context.Context, graph string) ([]SnapshotRef, error) {
	prefix := SnapshotPrefix
	if graph != "" {
		if err := CheckGraphID(graph); err != nil {
			return nil, err
		}
		prefix += graph + "/"
	}
	var refs []SnapshotRef
	err := blob.WalkKeys(ctx, r.store, prefix, func(o blob.Object) error {
		if ref, ok := parseSnapshotKey(o.Key); ok {
			refs = append(refs, ref)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	sortRefs(refs)
	return refs, nil
}

// FindSnapshot resolves id ("latest" or a full id or a unique prefix of one)
// among graph's snapshots. "latest" is the newest good snapshot (see
// LatestGood).
func (r *Repository) FindSnapshot(ctx context.Context, graph, id string) (SnapshotRef, error) {
	c, err := r.Resolve(ctx, graph, id)
	return c.Ref, err
}

// Resolve is FindSnapshot, saying for "latest" which newer snapshots it
// passed over.
func (r *Repository) Resolve(ctx context.Context, graph, id string) (Choice, error) {
	refs, err := r.ListSnapshots(ctx, graph)
	if err != nil {
		return Choice{}, err
	}
	if len(refs) == 0 {
		return Choice{}, fmt.Errorf("graph %q has no snapshots: %w", graph, ErrSnapshotMissing)
	}
	if id == "latest" {
		c, _, err := r.LatestGood(ctx, graph, refs)
		return c, err
	}
	ref, err := findByID(graph, id, refs)
	return Choice{Ref: ref, ID: ref.ID}, err
}

func findByID(graph, id string, refs []SnapshotRef) (SnapshotRef, error) {
	var matches []SnapshotRef
	for _, ref := range refs {
		if ref.ID == id {
			return ref, nil
		}
		if strings.HasPrefix(ref.ID, id) {
			matches = append(matches, ref)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return SnapshotRef{}, fmt.Errorf("graph %q has no snapshot %q: %w", graph, id, ErrSnapshotMissing.With(graph, problem.ListSnapshots))
	}
	return SnapshotRef{}, fmt.Errorf("snapshot %q of graph %q is ambiguous: %d snapshots start with it", id, graph, len(matches))
}

func sortRefs(refs []SnapshotRef) {
	slices.SortFunc(refs, func(a, b SnapshotRef) int {
		if c := strings.Compare(a.Graph, b.Graph); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// newest picks the most recent of refs (one graph's, sorted by id).
func (r *Repository) newest(ctx context.Context, refs []SnapshotRef) (SnapshotRef, error) {
	best := refs[len(refs)-1]
	err := r.newestFirst(ctx, refs, func(m *Manifest) bool {
		best = m.Ref()
		return false
	})
	return best, err
}

// newestFirst calls visit with the manifests of refs (one graph's, sorted
// by id) newest first, until visit returns false; manifests forgotten
// since the listing are skipped. Ids carry whole seconds and a random
// suffix, so the snapshots of one second are ordered by their manifests'
// times; only as many manifests are read as visit needs.
func (r *Repository) newestFirst(ctx context.Context, refs []SnapshotRef, visit func(*Manifest) bool) error {
	for end := len(refs); end > 0; {
		second := refs[end-1].ID[:strings.IndexByte(refs[end-1].ID, '-')+1]
		start := end - 1
		for start > 0 && strings.HasPrefix(refs[start-1].ID, second) {
			start--
		}
		group := make([]*Manifest, 0, end-start)
		for _, ref := range refs[start:end] {
			m, err := r.cache.Manifest(ctx, ref)
			if errors.Is(err, ErrSnapshotMissing) {
				continue
			}
			if err != nil {
				return err
			}
			group = append(group, m)
		}
		slices.SortStableFunc(group, func(a, b *Manifest) int {
			if c := b.Time.Compare(a.Time); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		for _, m := range group {
			if !visit(m) {
				return nil
			}
		}
		end = start
	}
	return nil
}

// Latest returns graph's newest snapshot; ok is false when it has none.
func (r *Repository) Latest(ctx context.Context, graph string, refs []SnapshotRef) (ref SnapshotRef, ok bool, err error) {
	var mine []SnapshotRef
	for _, s := range refs {
		if s.Graph == graph {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return SnapshotRef{}, false, nil
	}
	ref, err = r.newest(ctx, mine)
	return ref, err == nil, err
}

// ErrUnknownGraph: a graph that has no snapshot and is not configured.
var ErrUnknownGraph = problem.New(problem.NotFound, "not_found", "unknown graph")

// CheckGraph returns nil when graph has snapshots or is one of configured;
// otherwise an ErrUnknownGraph error listing the graphs that are known.
// An empty graph means every graph and is always fine.
func (r *Repository) CheckGraph(ctx context.Context, graph string, configured []string) error {
	if graph == "" {
		return nil
	}
	if err := CheckGraphID(graph); err != nil {
		return err
	}
	known := map[string]bool{}
	for _, g := range configured {
		known[g] = true
	}
	if known[graph] {
		return nil
	}
	// One small request in the common case: the graph has snapshots.
	objs, _, err := r.store.List(ctx, blob.ListOptions{Prefix: SnapshotPrefix + graph + "/", PageSize: 1})
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(objs) > 0 {
		return nil
	}
	refs, err := r.ListSnapshots(ctx, "")
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if ref.Graph == graph {
			return nil
		}
		known[ref.Graph] = true
	}
	names := make([]string, 0, len(known))
	for g := range known {
		names = append(names, g)
	}
	slices.Sort(names)
	list := "none: the repository holds no snapshots and no graph is configured"
	if len(names) > 0 {
		list = strings.Join(names, ", ")
	}
	return fmt.Errorf("graph %q: %w (it has no snapshots and is not configured); known graphs: %s", graph, ErrUnknownGraph, list)
}
