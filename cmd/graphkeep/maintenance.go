package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/repo"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/retention"
)

func forgetCmd(g *globals) *cobra.Command {
	var p retention.Policy
	var dryRun, prune bool
	cmd := &cobra.Command{
		Use:   "forget [GRAPH] --keep-...",
		Short: "Forget snapshots a retention policy does not keep (chunks go with prune)",
		Long: `forget applies a retention policy to each graph's snapshots (or GRAPH's) and deletes
the manifests of the snapshots it does not keep. A snapshot is kept when any rule keeps
it; snapshots pinned by a recovery checkpoint are always kept. The policy comes from the
--keep-* flags, or from retention: in the config file when no flag is given.
Add --prune to delete the chunks no snapshot names any more.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if p.Empty() {
				p = g.file.Retention
			}
			if err := p.Validate(); err != nil {
				return err
			}
			graph := ""
			if len(args) == 1 {
				graph = args[0]
			}
			r, err := g.openRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Store().Close()
			if err := g.checkGraph(ctx, r, graph); err != nil {
				return err
			}
			res, err := retention.Forget(ctx, r, graph, p, dryRun)
			if err != nil {
				return err
			}
			out := map[string]any{"forget": res}
			if prune && !dryRun {
				lease, err := leaseOptions()
				if err != nil {
					return err
				}
				pr, err := retention.Prune(ctx, r, retention.PruneOptions{Lease: lease})
				if err != nil {
					return err
				}
				out["prune"] = pr
				if !g.json {
					defer printPrune(pr)
				}
			}
			if g.json {
				return printJSON(os.Stdout, out)
			}
			tw := newTable("GRAPH\tSNAPSHOT\tDECISION\tWHY")
			for _, d := range res.Decisions {
				decision := "keep"
				if !d.Keep {
					decision = "forget"
					if dryRun {
						decision = "would forget"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Snapshot.Graph, d.Snapshot.ID, decision, strings.Join(d.Reasons, ", "))
			}
			_ = tw.Flush()
			fmt.Printf("policy: %s; %d snapshots forgotten%s\n", p, res.Removed, map[bool]string{true: " (dry run)"}[dryRun])
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.KeepLast, "keep-last", 0, "keep the newest N snapshots")
	f.IntVar(&p.KeepHourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours that have one")
	f.IntVar(&p.KeepDaily, "keep-daily", 0, "... of each of the last N days")
	f.IntVar(&p.KeepWeekly, "keep-weekly", 0, "... of each of the last N ISO weeks")
	f.IntVar(&p.KeepMonthly, "keep-monthly", 0, "... of each of the last N months")
	f.IntVar(&p.KeepYearly, "keep-yearly", 0, "... of each of the last N years")
	f.DurationVar(&p.KeepWithin, "keep-within", 0, "keep snapshots taken within this long of the newest (e.g. 72h)")
	f.BoolVar(&dryRun, "dry-run", false, "show what would be forgotten, change nothing")
	f.BoolVar(&prune, "prune", false, "prune unreferenced chunks afterwards")
	return cmd
}

func pruneCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete chunks that no snapshot names",
		Long: `prune lists chunks/ and deletes those no snapshot names. It holds the repository's
exclusive lease: it waits for running backups to finish, and backups wait for it.
A prune killed midway leaves nothing broken; its lease expires within minutes.`,
		Args: cobra.NoArgs,
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, _ []string) error {
			lease, err := leaseOptions()
			if err != nil {
				return err
			}
			res, err := retention.Prune(ctx, r, retention.PruneOptions{DryRun: dryRun, Lease: lease})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, res)
			}
			printPrune(res)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be deleted, delete nothing")
	return cmd
}

func printPrune(res *retention.PruneResult) {
	if res.DryRun {
		fmt.Printf("prune (dry run): %d of %d stored chunks unreferenced (%s) would be deleted\n",
			res.Unreferenced, res.Stored, humanBytes(res.UnreferencedSz))
		return
	}
	fmt.Printf("prune: deleted %d unreferenced chunks (%s); %d chunks referenced\n", res.Deleted, humanBytes(res.UnreferencedSz), res.Referenced)
}

func statsCmd(g *globals) *cobra.Command {
	var noList bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show what the repository holds and what deduplication saves",
		Args:  cobra.NoArgs,
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, _ []string) error {
			s, err := backup.Stats(ctx, r, !noList)
			if err != nil {
				return err
			}
			requests, _ := blob.StatsOf(r.Store())
			if g.json {
				return printJSON(os.Stdout, map[string]any{"repository": s, "requests": requests})
			}
			fmt.Printf("repository %s at %s (encrypted: %v)\n", s.ID, s.Location, s.Encrypted)
			fmt.Printf("%d snapshots of %d graphs; %s of files in all snapshots\n", s.Snapshots, len(s.Graphs), humanBytes(s.LogicalBytes))
			fmt.Printf("%d unique chunks, %s before compression", s.UniqueChunks, humanBytes(s.UniqueBytes))
			if s.StoredBytes != nil {
				fmt.Printf("; %s stored in %d chunk objects", humanBytes(*s.StoredBytes), *s.StoredChunks)
			}
			fmt.Printf("; %.1fx smaller than full copies\n", s.DedupRatio)
			tw := newTable("GRAPH\tSNAPSHOTS\tLATEST\tSIZE\tFLAGGED")
			for _, gs := range s.Graphs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\n", gs.Graph, gs.Snapshots, gs.Latest, humanBytes(gs.LatestSize), gs.Flagged)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&noList, "no-list", false, "skip listing chunks/ (no stored size)")
	return cmd
}

func checkCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check a storage location: write, read back and delete a probe object",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			s, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			key := fmt.Sprintf("health/check-%d", time.Now().UnixNano())
			payload := []byte("graphkeep storage check")
			if err := blob.PutBytes(ctx, s, key, payload, nil); err != nil {
				return fmt.Errorf("write a probe object: %w", err)
			}
			got, err := blob.ReadAll(ctx, s, key)
			if err != nil {
				return fmt.Errorf("read the probe object back: %w", err)
			}
			if string(got) != string(payload) {
				return fmt.Errorf("the probe object read back differs from what was written")
			}
			if err := s.Delete(ctx, key); err != nil {
				return fmt.Errorf("delete the probe object: %w", err)
			}
			fmt.Printf("%s: ok (write, read, delete)\n", s.Location())
			return nil
		},
	}
}
