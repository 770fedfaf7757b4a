package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	refs, err := c.repo.ListSnapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	kept, err := c.loadIndex()
	if err != nil {
		return c.rebuild(ctx, refs)
	}
	live := make(map[string]bool, len(refs))
	for _, ref := range refs {
		live[ref.Key()] = true
	}
	for key := range kept.covered {
		if !live[key] {
			return c.rebuild(ctx, refs)
		}
	}
	added := false
	for _, ref := range refs {
		if kept.covered[ref.Key()] {
			continue
		}
		m, err := c.Manifest(ctx, ref)
		if errors.Is(err, ErrSnapshotMissing) {
			continue // forgotten since the listing
		}
		if err != nil {
			return nil, err
		}
		kept.add(ref, m)
		added = true
	}
	if added {
		c.saveIndex(kept)
	}
	return kept.index(refs), nil
}

// Rebuild is Index reading every manifest (through the cache), whatever the
// kept index says: for prune, which deletes what no manifest names.
func (c *Cache) Rebuild(ctx context.Context) (*Index, error) {
	refs, err := c.repo.ListSnapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	return c.rebuild(ctx, refs)
}

func (c *Cache) rebuild(ctx context.Context, refs []SnapshotRef) (*Index, error) {
	kept := newKeptIndex()
	live := make(map[string]bool, len(refs))
	for _, ref := range refs {
		m, err := c.Manifest(ctx, ref)
		if errors.Is(err, ErrSnapshotMissing) {
			continue // forgotten since the listing
		}
		if err != nil {
			return nil, err
		}
		live[c.path(ref)] = true
		kept.add(ref, m)
	}
	c.dropExcept(live)
	c.saveIndex(kept)
	return kept.index(refs), nil
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
