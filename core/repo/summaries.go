package repo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/graphkeep/graphkeep/blob"
)

// SnapshotInfo is what listing a snapshot needs of its manifest: its list
// entry and its totals, without its files.
type SnapshotInfo struct {
	Summary Summary `json:"summary"`
	Totals  Totals  `json:"totals"`
}

// Info returns m's SnapshotInfo.
func (m *Manifest) Info() SnapshotInfo { return SnapshotInfo{Summary: m.Summary(), Totals: m.Totals} }

// infosFile keeps, beside the cached manifests, the SnapshotInfo of every
// snapshot listed so far (JSON, by SnapshotRef.Key()): listing 10,000
// snapshots decodes one small file instead of 10,000 manifests with all
// their files. Manifests never change, so an entry is right or absent; any
// damage only costs reading the manifests again.
// (v2: summaries say whether a snapshot is resumable, and its state; v3:
// its source, tables, the stores it lacks, and whether it is an undo copy.)
const infosFile = "infos-v3.json"

// Infos returns the SnapshotInfo of each of refs, in order, reading
// manifests (through the cache) only for snapshots not listed before. refs
// is a whole listing of the graphs it names: entries of those graphs it
// lacks (forgotten snapshots) are dropped. A snapshot forgotten since the
// listing is left out.
func (c *Cache) Infos(ctx context.Context, refs []SnapshotRef) ([]SnapshotInfo, error) {
	c.infosMu.Lock()
	defer c.infosMu.Unlock()
	if c.infos == nil {
		c.infos = c.loadInfos()
	}
	kept := c.infos
	out := make([]SnapshotInfo, 0, len(refs))
	listed := make(map[string]bool, len(refs))
	graphs := map[string]bool{}
	changed := false
	for _, ref := range refs {
		listed[ref.Key()], graphs[ref.Graph] = true, true
		if info, ok := kept[ref.Key()]; ok {
			out = append(out, info)
			continue
		}
		m, err := c.Manifest(ctx, ref)
		if errors.Is(err, ErrSnapshotMissing) || errors.Is(err, blob.ErrNotFound) {
			continue // forgotten since the listing
		}
		if err != nil {
			return nil, err
		}
		info := m.Info()
		kept[ref.Key()] = info
		out = append(out, info)
		changed = true
	}
	for key, info := range kept {
		if graphs[info.Summary.Graph] && !listed[key] {
			delete(kept, key)
			changed = true
		}
	}
	if changed {
		c.saveInfos(kept)
	}
	return out, nil
}

func (c *Cache) infosPath() string { return filepath.Join(c.dir, infosFile) }

func (c *Cache) loadInfos() map[string]SnapshotInfo {
	kept := map[string]SnapshotInfo{}
	data, err := os.ReadFile(c.infosPath())
	if err != nil {
		return kept
	}
	if json.Unmarshal(data, &kept) != nil {
		return map[string]SnapshotInfo{} // damaged: read the manifests again
	}
	return kept
}

// saveInfos writes the infos atomically; a cache that cannot be written
// only costs speed.
func (c *Cache) saveInfos(kept map[string]SnapshotInfo) {
	data, err := json.Marshal(kept)
	if err != nil {
		return
	}
	c.writeAtomically(c.infosPath(), data)
}
