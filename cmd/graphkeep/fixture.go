package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
)

// fixtureCmd generates LightRAG-shaped workspaces for the demo, benchmarks
// and trying graphkeep out. The spec of each graph is kept beside it in
// ROOT/.fixture-GRAPH.json so that grow can add documents later.
func fixtureCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fixture",
		Short: "Generate LightRAG-shaped test workspaces (demo and benchmarks)",
	}
	var graphs string
	var size int64
	var seed uint64
	var dim int
	gen := &cobra.Command{
		Use:   "generate ROOT",
		Short: "Write one workspace per graph under ROOT",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for i, id := range strings.Split(graphs, ",") {
				if err := repo.CheckGraphID(id); err != nil {
					return err
				}
				spec := fixture.Spec{EmbeddingDim: dim, Seed: seed + uint64(i)}
				spec.ApplyDefaults()
				spec.Docs = max(1, int(size/spec.BytesPerDoc()))
				if err := fixture.Generate(filepath.Join(args[0], id), spec); err != nil {
					return err
				}
				if err := saveSpec(args[0], id, spec); err != nil {
					return err
				}
				fmt.Printf("generated graph %s: %d documents\n", id, spec.Docs)
			}
			return nil
		},
	}
	gen.Flags().StringVar(&graphs, "graphs", "alpha,beta,gamma", "graph ids, comma separated")
	gen.Flags().Int64Var(&size, "size", 20<<20, "approximate bytes per graph")
	gen.Flags().Uint64Var(&seed, "seed", 1, "random seed")
	gen.Flags().IntVar(&dim, "dim", 1024, "embedding dimension")

	var docs int
	var percent float64
	grow := &cobra.Command{
		Use:   "grow ROOT GRAPH",
		Short: "Ingest more documents into a generated graph, rewriting its files as LightRAG does",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, id := args[0], args[1]
			data, err := os.ReadFile(specPath(root, id))
			if err != nil {
				return fmt.Errorf("graph %s was not made by 'fixture generate': %w", id, err)
			}
			var spec fixture.Spec
			if err := json.Unmarshal(data, &spec); err != nil {
				return err
			}
			more := docs
			if more == 0 {
				more = max(1, int(float64(spec.Docs)*percent/100+0.5))
			}
			spec, err = fixture.Grow(filepath.Join(root, id), spec, more)
			if err != nil {
				return err
			}
			fmt.Printf("graph %s grew by %d documents to %d\n", id, more, spec.Docs)
			return saveSpec(root, id, spec)
		},
	}
	grow.Flags().IntVar(&docs, "docs", 0, "documents to add")
	grow.Flags().Float64Var(&percent, "percent", 2, "documents to add, as a percentage (when --docs is 0)")
	cmd.AddCommand(gen, grow)
	return cmd
}

func specPath(root, id string) string { return filepath.Join(root, ".fixture-"+id+".json") }

func saveSpec(root, id string, spec fixture.Spec) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(specPath(root, id), data, 0o644)
}
