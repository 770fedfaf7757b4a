package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Cache keeps decoded manifests on local disk, per repository id. Manifests
// are immutable, so a cached copy is either right or absent. The set of
// chunks a repository holds is derived from the manifests that exist now,
// never from listing chunks/ (which costs money and grows without bound).
type Cache struct {
	dir  string
	repo *Repository

	infosMu sync.Mutex
	infos   map[string]SnapshotInfo // infosFile as loaded and since added to; nil: not loaded
}

// Manifest returns ref's manifest, from the cache when it has it.
func (c *Cache) Manifest(ctx context.Context, ref SnapshotRef) (*Manifest, error) {
	if plain, err := os.ReadFile(c.path(ref)); err == nil {
		if m, err := parseManifest(plain, ref); err == nil {
			return m, nil
		}
		_ = os.Remove(c.path(ref)) // a damaged cache entry: fetch again
	}
	m, err := c.repo.LoadManifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	if plain, err := jsonMarshal(m); err == nil {
		c.store(ref, plain)
	}
	return m, nil
}

// Index is what a repository holds, as its manifests say.
type Index struct {
	Snapshots []SnapshotRef
	// Chunks holds every chunk a manifest names, with its plaintext size.
	Chunks *ChunkSet
}

// Index lists the snapshots (all graphs) and returns what their manifests
// name. The result of the last call is kept on local disk (indexFile), so
// only manifests new since then are read: a backup's cost does not grow with
// the repository's history. When a snapshot it covered is gone (forgotten),
// the index is rebuilt from every manifest, as Rebuild does.
func (c *Cache) Index(ctx context.Context) (*Index, error) {
	kept, idx, changed, err := c.listed(ctx, nil)
	if err != nil {
		return nil, err
	}
	if changed {
		c.saveIndex(kept)
	}
	return idx, nil
}

// Known is the Index a writer deduplicates against, given the sweep log it
// read after taking its lease. When the kept index accounts for every sweep
// that has ended, none is open, and it was checked against the listing
// within indexTrusted, every chunk it names is stored (only sweeps delete
// chunks): Known returns it as kept and lists nothing, however long the
// history. Otherwise it is Index, and the check is recorded. Snapshots
// forgotten since the last check may still be in it (their manifests
// missing); snapshots other hosts made since may not be.
func (c *Cache) Known(ctx context.Context, log SweepLog) (*Index, error) {
	kept, err := c.loadIndex()
	if err == nil && kept.trusted(log, time.Now()) {
		return kept.index(kept.refs()), nil
	}
	if err != nil {
		kept = nil
	}
	// Brought up to the listing from the copy just read: at a million
	// chunks a second read would hold the index twice (46 MiB more).
	kept, idx, _, err := c.listed(ctx, kept)
	if err != nil {
		return nil, err
	}
	// The listing came after the log was read: the chunks every sweep it
	// names ended had deleted were out of it.
	kept.checked = log.Read
	kept.ended = make(map[string]bool, len(log.Ended))
	for _, id := range log.Ended {
		kept.ended[id] = true
	}
	c.saveIndex(kept)
	return idx, nil
}

// Add puts snapshots just committed into the kept index, so that a Known
// that does not list has them: the parent of the graph's next backup and
// chunks to deduplicate against. Their chunks are stored, whatever the
// index was checked against. Without a kept index it does nothing.
func (c *Cache) Add(ms ...*Manifest) {
	if len(ms) == 0 {
		return
	}
	unlock := c.lockIndex()
	defer unlock()
	index, err := os.Stat(c.indexPath())
	if err != nil {
		return
	}
	size, err := c.appendJournal(ms)
	if err != nil || size < max(journalMinCompact, index.Size()/4) {
		return
	}
	if kept, err := c.loadIndex(); err == nil {
		c.writeIndex(kept)
	}
}

// listed is the kept index (read from the file when loaded is nil)
// brought up to the listing: new snapshots' manifests added, rebuilt when
// one it covered is gone. changed reports that it differs from the file.
func (c *Cache) listed(ctx context.Context, loaded *keptIndex) (kept *keptIndex, idx *Index, changed bool, err error) {
	refs, err := c.repo.ListSnapshots(ctx, "")
	if err != nil {
		return nil, nil, false, err
	}
	kept = loaded
	if kept == nil {
		kept, err = c.loadIndex()
	}
	if err != nil {
		kept, idx, err := c.rebuild(ctx, refs)
		return kept, idx, true, err
	}
	live := make(map[string]bool, len(refs))
	for _, ref := range refs {
		live[ref.Key()] = true
	}
	for _, key := range kept.sortedKeys() {
		if !live[key] {
			kept, idx, err := c.rebuild(ctx, refs)
			return kept, idx, true, err
		}
	}
	for _, ref := range refs {
		if kept.has(ref.Key()) {
			continue
		}
		m, err := c.Manifest(ctx, ref)
		if errors.Is(err, ErrSnapshotMissing) {
			continue // forgotten since the listing
		}
		if err != nil {
			return nil, nil, false, err
		}
		kept.add(ref, m)
		changed = true
	}
	return kept, kept.index(refs), changed, nil
}

// Rebuild is Index reading every manifest (through the cache), whatever the
// kept index says: for prune, which deletes what no manifest names.
func (c *Cache) Rebuild(ctx context.Context) (*Index, error) {
	refs, err := c.repo.ListSnapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	kept, idx, err := c.rebuild(ctx, refs)
	if err != nil {
		return nil, err
	}
	c.saveIndex(kept)
	return idx, nil
}

// rebuild indexes every manifest in refs afresh (not yet checked against
// a sweep log) and drops the cached manifests of snapshots not in refs.
func (c *Cache) rebuild(ctx context.Context, refs []SnapshotRef) (*keptIndex, *Index, error) {
	kept := newKeptIndex()
	live := make(map[string]bool, len(refs))
	for _, ref := range refs {
		m, err := c.Manifest(ctx, ref)
		if errors.Is(err, ErrSnapshotMissing) {
			continue // forgotten since the listing
		}
		if err != nil {
			return nil, nil, err
		}
		live[c.path(ref)] = true
		kept.add(ref, m)
	}
	c.dropExcept(live)
	return kept, kept.index(refs), nil
}

func (c *Cache) path(ref SnapshotRef) string {
	return filepath.Join(c.dir, "snapshots", ref.Graph, ref.ID+".json")
}

// store writes a manifest's plaintext atomically; a cache that cannot be
// written only costs speed.
func (c *Cache) store(ref SnapshotRef, plain []byte) {
	p := c.path(ref)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(plain)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		_ = os.Remove(tmp.Name())
	}
}

func (c *Cache) forget(ref SnapshotRef) { _ = os.Remove(c.path(ref)) }

// dropExcept removes cached manifests not in live.
func (c *Cache) dropExcept(live map[string]bool) {
	root := filepath.Join(c.dir, "snapshots")
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		if !live[p] {
			_ = os.Remove(p)
		}
		return nil
	})
}

// Dir is the cache's directory, for messages.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) String() string { return fmt.Sprintf("manifest cache at %s", c.dir) }
