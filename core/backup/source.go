// Package backup turns a graph's directory into a snapshot and back:
// Create (walk, chunk, deduplicate, upload, commit the manifest last),
// Restore (into a sibling temporary directory, verified, swapped in by
// rename) and Verify.
package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Source is a graph and where it lives: a directory, a workspace in
// PostgreSQL, or both (LightRAG keeps in working_dir/workspace the stores
// it does not keep in PostgreSQL).
type Source struct {
	Graph string `json:"graph"`
	Dir   string `json:"dir,omitempty"`
	// Postgres is the graph's workspace in PostgreSQL, or nil.
	Postgres *postgres.Location `json:"-"`
	// Pipeline, when set, is the LightRAG server writing this graph: the
	// backup waits until its pipeline is not busy before the cut.
	Pipeline *lightrag.Pipeline `json:"lightrag,omitempty"`
}

// DefaultGraph is the graph id of a graphs root that is itself a LightRAG
// working directory (LightRAG without workspaces).
const DefaultGraph = "default"

// Discover lists the graphs under root: every subdirectory whose name is a
// valid graph id (hidden directories, graphkeep's own restore and undo
// directories among them, are skipped). A root that itself holds LightRAG
// files is the single graph "default".
func Discover(root string) ([]Source, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, problem.Errorf(problem.Invalid, problem.SetGraphsRoot, abs, "graphs root %s does not exist", abs)
	}
	if err != nil {
		return nil, fmt.Errorf("read graphs root: %w", err)
	}
	// A graph whose restore was killed between its two renames is missing
	// from the root until the swap is finished: finish it first.
	for _, e := range entries {
		if graph, ok := swapJournalGraph(e.Name()); ok && !e.IsDir() {
			if _, err := FinishInterruptedSwap(filepath.Join(abs, graph)); err != nil {
				return nil, err
			}
		}
	}
	if entries, err = os.ReadDir(abs); err != nil {
		return nil, fmt.Errorf("read graphs root: %w", err)
	}
	var sources []Source
	for _, e := range entries {
		if !e.IsDir() && lightrag.KindOf(e.Name()) != "" {
			return []Source{{Graph: DefaultGraph, Dir: abs}}, nil
		}
	}
	for _, e := range entries {
		if e.IsDir() && repo.ValidGraphID(e.Name()) {
			sources = append(sources, Source{Graph: e.Name(), Dir: filepath.Join(abs, e.Name())})
		}
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].Graph < sources[j].Graph })
	return sources, nil
}

// Skipped lists the subdirectories of root that Discover passes over
// because their names are not valid graph ids (hidden directories, ours
// among them, are not listed).
func Skipped(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !repo.ValidGraphID(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
