package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
)

// ErrOtherGraph: a restore would replace another graph's data with this
// graph's snapshot.
var ErrOtherGraph = &problem.Error{Kind: problem.NeedsForce, Code: "other_graph", Remedy: problem.ForceOrNewDest,
	Msg: "the destination holds another graph's data"}

// historyDepth is how many of a graph's newest snapshots a destination's
// files are compared with to tell whose data it holds.
const historyDepth = 8

// destOwner names the graph, other than graph, whose data dest holds: a
// graph this machine knows there (under the graphs root or named
// explicitly), or a graph whose recent snapshots hold files of exactly the
// size and modification time of dest's LightRAG files (a restored copy of
// it, say), unless graph's own snapshots do too. "" when dest is graph's own
// or nobody's.
func (s *Service) destOwner(ctx context.Context, r *repo.Repository, graph, dest string) (owner, why string, err error) {
	real, err := resolveExisting(dest)
	if err != nil {
		return "", "", nil // not there to be anybody's
	}
	sources, err := s.cfg.Sources()
	if err != nil {
		return "", "", err
	}
	for _, src := range sources {
		if dir, err := resolveExisting(src.Dir); err == nil && dir == real {
			if src.Graph == graph {
				return "", "", nil
			}
			return src.Graph, "it is that graph's directory", nil
		}
	}
	files := lightragFiles(real)
	if len(files) == 0 {
		return "", "", nil
	}
	snaps, err := r.ListSnapshots(ctx, "")
	if err != nil {
		return "", "", err
	}
	byGraph := map[string][]repo.SnapshotRef{}
	for _, ref := range snaps {
		byGraph[ref.Graph] = append(byGraph[ref.Graph], ref)
	}
	// score is how many of dest's LightRAG files one of g's recent
	// snapshots holds as they are (size and modification time), at best.
	score := func(g string) (int, string, error) {
		refs := byGraph[g]
		sort.Slice(refs, func(i, j int) bool { return refs[i].ID > refs[j].ID })
		best, where := 0, ""
		for _, ref := range refs[:min(len(refs), historyDepth)] {
			m, err := r.Cache().Manifest(ctx, ref)
			if err != nil {
				if errors.Is(err, blob.ErrNotFound) {
					continue // forgotten meanwhile
				}
				return 0, "", err
			}
			n := 0
			for _, f := range m.Files {
				if info, ok := files[f.Path]; ok && info.Size() == f.Size && info.ModTime().Equal(f.MTime) {
					n++
				}
			}
			if n > best {
				best, where = n, ref.Graph+"/"+ref.ID
			}
		}
		return best, where, nil
	}
	own, _, err := score(graph)
	if err != nil {
		return "", "", err
	}
	graphs := make([]string, 0, len(byGraph))
	for g := range byGraph {
		if g != graph {
			graphs = append(graphs, g)
		}
	}
	sort.Strings(graphs)
	bestScore := 0
	for _, g := range graphs {
		n, where, err := score(g)
		if err != nil {
			return "", "", err
		}
		// Most of its LightRAG files, and more of them than graph's own
		// history holds: files written in one clock tick may agree by chance.
		if n > bestScore && n > own && 2*n >= len(files) {
			bestScore = n
			owner, why = g, fmt.Sprintf("%d of its %d LightRAG files are those of snapshot %s", n, len(files), where)
		}
	}
	return owner, why, nil
}

// checkDestOwner refuses, unless forced, a restore of graph over another
// graph's data.
func (s *Service) checkDestOwner(ctx context.Context, r *repo.Repository, graph, dest string, force bool) error {
	if force {
		return nil
	}
	owner, why, err := s.destOwner(ctx, r, graph, dest)
	if err != nil || owner == "" {
		return err
	}
	return fmt.Errorf("restore destination %s holds graph %s's data (%s): restoring graph %s there would replace graph %s: %w",
		dest, owner, why, graph, owner, ErrOtherGraph.With(owner, problem.ForceOrNewDest))
}

// newGraphAt is the graph a restore of graph into dest creates: dest is a
// directory of the graphs root that is no graph yet, named like a graph
// (the next backup, listing and checkpoint take it in). "" otherwise.
func (s *Service) newGraphAt(graph, dest string) string {
	if s.cfg.GraphsRoot == "" {
		return ""
	}
	root, err1 := resolveExisting(s.cfg.GraphsRoot)
	real, err2 := resolveExisting(dest)
	if err1 != nil || err2 != nil || filepath.Dir(real) != root {
		return ""
	}
	name := filepath.Base(real)
	if name == graph || repo.CheckGraphID(name) != nil {
		return ""
	}
	if _, err := s.Source(name); err == nil {
		return "" // an existing graph: destOwner speaks of it
	}
	return name
}

// lightragFiles are dest's LightRAG store files by name.
func lightragFiles(dir string) map[string]os.FileInfo {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[string]os.FileInfo{}
	for _, e := range entries {
		if !e.Type().IsRegular() || lightrag.KindOf(e.Name()) == "" {
			continue
		}
		if info, err := e.Info(); err == nil && info.Size() > 0 {
			out[path.Clean(e.Name())] = info
		}
	}
	return out
}
