package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

func initCmd(g *globals) *cobra.Command {
	var avgChunk int
	var compression, level string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repository (encrypted when a password is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			u, err := g.repoURL()
			if err != nil {
				return err
			}
			if pu, err := parseFileURL(u); err == nil && pu != "" {
				if err := os.MkdirAll(pu, 0o755); err != nil {
					return fmt.Errorf("create repository directory: %w", err)
				}
			}
			store, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			pw, err := g.password()
			if err != nil {
				return err
			}
			r, err := repo.Init(ctx, store, repo.InitOptions{Password: pw, AvgChunkSize: avgChunk, Compression: compression, CompressionLevel: level})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, map[string]any{"id": r.ID(), "location": store.Location(), "encrypted": r.Encrypted()})
			}
			enc := "not encrypted (set GRAPHKEEP_PASSWORD or --password-file at init to encrypt)"
			if r.Encrypted() {
				enc = "encrypted: keep the password safe, the data cannot be read without it"
			}
			fmt.Printf("created repository %s at %s, %s\n", r.ID(), store.Location(), enc)
			return nil
		},
	}
	cmd.Flags().IntVar(&avgChunk, "avg-chunk-size", 1<<20, "average chunk size in bytes (a power of two, 4 KiB to 64 MiB)")
	cmd.Flags().StringVar(&compression, "compression", "zstd", "zstd or none")
	cmd.Flags().StringVar(&level, "compression-level", "fastest", "fastest, default or better")
	return cmd
}

// backupLine is one graph's result in `backup --json`.
type backupLine struct {
	Graph       string          `json:"graph"`
	ID          string          `json:"id,omitempty"`
	Files       int             `json:"files"`
	SizeBytes   int64           `json:"size_bytes"`
	AddedBytes  int64           `json:"added_bytes"`
	StoredBytes int64           `json:"stored_bytes"`
	DurationMS  int64           `json:"duration_ms"`
	LightRAG    *lightrag.Stats `json:"lightrag,omitempty"`
	// Consistent and MidIngestion: see repo.Consistency.
	Consistent   bool              `json:"consistent"`
	MidIngestion bool              `json:"mid_ingestion"`
	Consistency  *repo.Consistency `json:"consistency,omitempty"`
	Error        string            `json:"error,omitempty"`
}

func backupCmd(g *globals) *cobra.Command {
	var all, replicate bool
	cmd := &cobra.Command{
		Use:   "backup GRAPH... | --all",
		Short: "Snapshot graphs into the repository",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if all == (len(args) > 0) {
				return errors.New("name the graphs to back up, or give --all")
			}
			var sources []backup.Source
			if all {
				var err error
				if sources, err = g.sources(); err != nil {
					return err
				}
				if root := g.graphsRootDir(); root != "" {
					skipped, _ := backup.Skipped(root)
					for _, name := range skipped {
						fmt.Fprintf(os.Stderr, "graphkeep: warning: skipping folder %q in %s: not a valid graph id (letters, digits, _ and -, at most 64); back it up with --graph ID=%s\n",
							name, root, filepath.Join(root, name))
					}
				}
				if len(sources) == 0 {
					return fmt.Errorf("nothing to back up: %s", knownGraphs(nil, g.graphsRootDir()))
				}
			}
			for _, id := range args {
				s, err := g.source(id)
				if err != nil {
					return err
				}
				sources = append(sources, s)
			}
			r, err := g.openRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Store().Close()
			opts, err := g.backupOptions()
			if err != nil {
				return err
			}
			lease := opts.Lease
			bar := newProgress(g.json)
			var lines []backupLine
			failed := 0
			for _, src := range sources {
				opts.Progress = bar.update("backup")
				res, err := backup.Create(ctx, r, src, opts)
				bar.done()
				if err != nil {
					failed++
					lines = append(lines, backupLine{Graph: src.Graph, Error: err.Error()})
					if !g.json {
						fmt.Fprintf(os.Stderr, "graphkeep: backup %s: %v\n", src.Graph, err)
					}
					continue
				}
				m := res.Manifest
				line := backupLine{Graph: m.Graph, ID: m.ID, Files: m.Totals.Files, SizeBytes: m.Totals.SizeBytes,
					AddedBytes: m.Totals.AddedBytes, StoredBytes: m.Totals.StoredBytes, DurationMS: res.Duration.Milliseconds(), LightRAG: m.LightRAG,
					Consistent: m.Consistency.Consistent, MidIngestion: m.MidIngestion(), Consistency: m.Consistency}
				lines = append(lines, line)
				if !g.json {
					flag := "; " + consistencyLine(m.Consistency)
					if m.Flagged() {
						flag = "  FLAGGED: " + strings.Join(m.LightRAG.Problems, "; ")
					}
					fmt.Printf("%s: snapshot %s  %d files, %s; new %s, stored %s; %d unchanged files reused; %s%s\n",
						m.Graph, m.ID, m.Totals.Files, humanBytes(m.Totals.SizeBytes), humanBytes(m.Totals.AddedBytes),
						humanBytes(m.Totals.StoredBytes), res.ReusedFiles, res.Duration.Round(time.Millisecond), flag)
				}
			}
			if g.json {
				if err := printJSON(os.Stdout, lines); err != nil {
					return err
				}
			}
			if replicate && failed < len(sources) {
				// The snapshots are committed; a target outage is reported,
				// never a failed backup.
				results, err := replication.RunOnce(ctx, r, openTarget, replication.WatchOptions{
					Replicate: replication.Options{Lease: lease, CacheDir: g.cache()}})
				for _, res := range results {
					if !g.json {
						printResult(res)
					}
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "graphkeep: warning: replication after backup: %v; the backup succeeded, 'graphkeep replicate' (or replicate --watch) will catch up\n", err)
				}
			}
			if failed > 0 {
				if g.json {
					return errFound
				}
				return fmt.Errorf("%d of %d graphs failed to back up", failed, len(sources))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "back up every known graph")
	cmd.Flags().BoolVar(&replicate, "replicate", false, "then replicate to every target (a target outage is a warning, never a failed backup)")
	return cmd
}

func snapshotsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots [GRAPH]",
		Short: "List snapshots",
		Args:  cobra.MaximumNArgs(1),
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, args []string) error {
			graph := ""
			if len(args) == 1 {
				graph = args[0]
			}
			if err := g.checkGraph(ctx, r, graph); err != nil {
				return err
			}
			refs, err := r.ListSnapshots(ctx, graph)
			if err != nil {
				return err
			}
			lines := make([]repo.Summary, 0, len(refs))
			for _, ref := range refs {
				m, err := r.Cache().Manifest(ctx, ref)
				if err != nil {
					return err
				}
				lines = append(lines, m.Summary())
			}
			if g.json {
				return printJSON(os.Stdout, lines)
			}
			if len(lines) == 0 {
				fmt.Println("no snapshots")
				return nil
			}
			tw := newTable("GRAPH\tSNAPSHOT\tTIME\tSIZE\tFILES\tNODES\tEDGES\tDOCS\tCHUNKS\tVECTORS\tSTATUS")
			for _, l := range lines {
				st := l.LightRAG
				if st == nil {
					st = &lightrag.Stats{}
				}
				status := snapshotStatus(l)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", l.Graph, l.ID, l.Time.Local().Format("2006-01-02 15:04:05"),
					humanBytes(l.SizeBytes), l.Files, st.Nodes, st.Edges, st.Docs, st.Chunks, st.VectorRows, status)
			}
			return tw.Flush()
		}),
	}
}

func restoreCmd(g *globals) *cobra.Command {
	var to string
	var all, allowFlagged, force bool
	cmd := &cobra.Command{
		Use:   "restore GRAPH SNAPSHOT|latest | --all",
		Short: "Restore a snapshot, verified, swapped into place atomically",
		Long: `Restore writes the snapshot into a temporary directory beside the destination,
checks every file's SHA-256 and the LightRAG counts, then swaps it into place by
rename (one atomic exchange where the kernel offers it). The directory that was
there is kept beside it as .graphkeep-previous-<name>-<time>, one per restore,
until 'graphkeep previous remove' deletes it. A restore killed mid-way is
finished (or undone) by the next restore or backup of that directory, and what it
left behind is removed. A --to directory that holds files but no LightRAG data is
refused unless --force. The destination is the graph's directory, or --to DIR. With --all, every
graph's latest snapshot is restored (into --to DIR/GRAPH, or the graphs root).

"latest" is the newest snapshot that is neither flagged (a file did not parse)
nor mid-ingestion (LightRAG's stores disagreed when it was cut); restore says
which newer ones it passed over. Such a snapshot is restored only by its id
with --allow-flagged.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if all != (len(args) == 0) || (!all && len(args) != 2) {
				return errors.New("give GRAPH and SNAPSHOT (or latest), or --all")
			}
			r, err := g.openRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Store().Close()
			var choices []repo.Choice
			if all {
				snaps, err := r.ListSnapshots(ctx, "")
				if err != nil {
					return err
				}
				seen := map[string]bool{}
				for _, s := range snaps {
					if !seen[s.Graph] {
						seen[s.Graph] = true
						c, _, err := r.LatestGood(ctx, s.Graph, snaps)
						if err != nil {
							return notGoodHint(err)
						}
						choices = append(choices, c)
					}
				}
				if len(choices) == 0 {
					return errors.New("the repository holds no snapshots")
				}
			} else {
				if err := g.checkGraph(ctx, r, args[0]); err != nil {
					return err
				}
				c, err := r.Resolve(ctx, args[0], args[1])
				if err != nil {
					return notGoodHint(err)
				}
				choices = []repo.Choice{c}
			}
			var results []*backup.RestoreResult
			for _, c := range choices {
				ref := c.Ref
				dest, err := restoreDest(g, ref.Graph, to, all)
				if err != nil {
					return err
				}
				if !g.json {
					for _, p := range c.Passed {
						fmt.Printf("%s: passed over snapshot %s, %s\n", ref.Graph, p.ID, p.Reason)
					}
				}
				bar := newProgress(g.json)
				res, err := backup.Restore(ctx, r, ref, dest, backup.RestoreOptions{Progress: bar.update("restore"), AllowNotGood: allowFlagged, Force: force})
				bar.done()
				if err != nil {
					return notGoodHint(err)
				}
				res.PassedOver = c.Passed
				results = append(results, res)
				if !g.json {
					fmt.Printf("restored %s/%s into %s: %d files, %s, %v, verified\n", ref.Graph, ref.ID, res.Dest, res.Files,
						humanBytes(res.Bytes), res.LightRAG)
					if res.Recovered != "" {
						fmt.Printf("%s\n", res.Recovered)
					}
					if res.Previous != "" {
						fmt.Printf("the previous directory is kept at %s ('graphkeep previous list %s' lists the undo copies, 'graphkeep previous remove %s' deletes them)\n",
							res.Previous, res.Dest, res.Dest)
					}
				}
			}
			if g.json {
				if all {
					return printJSON(os.Stdout, results)
				}
				return printJSON(os.Stdout, results[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "restore into this directory instead of the graph's own (with --all: DIR/GRAPH)")
	cmd.Flags().BoolVar(&all, "all", false, "restore every graph's latest snapshot")
	cmd.Flags().BoolVar(&allowFlagged, "allow-flagged", false, "restore a snapshot that is flagged or mid-ingestion (named by its id)")
	cmd.Flags().BoolVar(&force, "force", false, "restore into a directory that holds files but no LightRAG data (it is kept as an undo copy)")
	return cmd
}

// notGoodHint adds the CLI's way out to a refusal to restore a snapshot
// that is not good.
func notGoodHint(err error) error {
	if errors.Is(err, backup.ErrNotAGraph) {
		return fmt.Errorf("%w\n(add --force to restore there anyway, or give --to a new directory)", err)
	}
	if errors.Is(err, repo.ErrNotGood) {
		return fmt.Errorf("%w\n(to restore such a snapshot anyway, name its id and add --allow-flagged; 'graphkeep snapshots GRAPH' lists them)", err)
	}
	return err
}

// consistencyLine says in a few words how a snapshot was cut.
func consistencyLine(c *repo.Consistency) string {
	switch {
	case c == nil:
		return "consistency not recorded"
	case c.MidIngestion:
		var broken []string
		for _, iv := range lightrag.Broken(c.Invariants) {
			broken = append(broken, iv.String())
		}
		return fmt.Sprintf("MID-INGESTION (%s): %s", c.Reason, strings.Join(broken, "; "))
	}
	return fmt.Sprintf("consistent, quiet %s, waited %s, cut in %s (%d attempts)",
		time.Duration(c.QuietMS)*time.Millisecond, time.Duration(c.WaitedMS)*time.Millisecond, time.Duration(c.CutMS)*time.Millisecond, c.Attempts)
}

// snapshotStatus is the STATUS column of snapshots.
func snapshotStatus(l repo.Summary) string {
	switch {
	case l.Flagged:
		return "FLAGGED: " + strings.Join(l.LightRAG.Problems, "; ")
	case l.MidIngestion:
		var broken []string
		for _, iv := range lightrag.Broken(l.Consistency.Invariants) {
			broken = append(broken, iv.String())
		}
		return "MID-INGESTION: " + strings.Join(broken, "; ")
	case l.Consistency != nil:
		return "consistent"
	}
	return "ok"
}

// restoreDest is where a graph is restored: --to (DIR/GRAPH with --all),
// else the graph's known directory, else GRAPHS_ROOT/GRAPH.
func restoreDest(g *globals, graph, to string, all bool) (string, error) {
	switch {
	case to != "" && all:
		return filepath.Join(to, graph), nil
	case to != "":
		return to, nil
	}
	if s, err := g.source(graph); err == nil {
		return s.Dir, nil
	}
	if root := g.graphsRootDir(); root != "" {
		return filepath.Join(root, graph), nil
	}
	return "", fmt.Errorf("where to? give --to DIR, or --graphs-root so graph %q restores to ROOT/%s", graph, graph)
}

func verifyCmd(g *globals) *cobra.Command {
	var readData bool
	cmd := &cobra.Command{
		Use:   "verify [GRAPH [SNAPSHOT]]",
		Short: "Check that every chunk of the snapshots exists (and, with --read-data, is intact)",
		Args:  cobra.MaximumNArgs(2),
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, args []string) error {
			var refs []repo.SnapshotRef
			var err error
			if len(args) > 0 {
				if err := g.checkGraph(ctx, r, args[0]); err != nil {
					return err
				}
			}
			switch len(args) {
			case 2:
				ref, err := r.FindSnapshot(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				refs = []repo.SnapshotRef{ref}
			case 1:
				refs, err = r.ListSnapshots(ctx, args[0])
			default:
				refs, err = r.ListSnapshots(ctx, "")
			}
			if err != nil {
				return err
			}
			res, err := backup.Verify(ctx, r, refs, backup.VerifyOptions{ReadData: readData})
			if err != nil {
				return err
			}
			if g.json {
				if err := printJSON(os.Stdout, res); err != nil {
					return err
				}
			} else {
				how := "present"
				if readData {
					how = fmt.Sprintf("intact (%s read)", humanBytes(res.BytesRead))
				}
				if res.OK() {
					fmt.Printf("verified %d snapshots: all %d chunks %s\n", res.Snapshots, res.Chunks, how)
				}
				for _, d := range res.Damaged {
					fmt.Printf("DAMAGED chunk %s: %s; used by %s\n", d.Chunk, d.Problem, strings.Join(d.UsedBy, ", "))
				}
				for _, u := range res.Unsafe {
					fmt.Printf("UNSAFE %s %s: %s\n", u.Snapshot, u.Path, u.Problem)
				}
			}
			if !res.OK() {
				if !g.json {
					if len(res.Damaged) > 0 {
						fmt.Fprintf(os.Stderr, "graphkeep: %d of %d chunks damaged; restore the affected snapshots from a replica, or back up again\n", len(res.Damaged), res.Chunks)
					}
					if len(res.Unsafe) > 0 {
						fmt.Fprintf(os.Stderr, "graphkeep: %d unsafe manifest entries: such snapshots were not written by graphkeep as they are; forget them ('graphkeep forget' or DELETE the snapshot) after a look\n", len(res.Unsafe))
					}
				}
				return errFound
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "download, decode and hash every chunk")
	return cmd
}

// parseFileURL returns the directory of a file:// URL or bare path, "" for
// other schemes.
func parseFileURL(u string) (string, error) {
	if strings.HasPrefix(u, "/") {
		return u, nil
	}
	if rest, ok := strings.CutPrefix(u, "file://"); ok {
		path, _, _ := strings.Cut(rest, "?")
		return path, nil
	}
	return "", nil
}
