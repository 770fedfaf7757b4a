package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/cost"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/core/service"
)

func forgetCmd(g *globals) *cobra.Command {
	var p retention.Policy
	var dryRun, prune bool
	cmd := &cobra.Command{
		Use:   "forget [GRAPH] --keep-... | forget GRAPH SNAPSHOT...",
		Short: "Forget snapshots a retention policy does not keep, or the ones named (chunks go with prune)",
		Long: `forget applies a retention policy to each graph's snapshots (or GRAPH's) and deletes
the manifests of the snapshots it does not keep. A snapshot is kept when any rule keeps
it; snapshots pinned by a recovery checkpoint are always kept. The policy comes from the
--keep-* flags, or from retention: in the config file when no flag is given.
Add --prune to delete the chunks no snapshot names any more.

With snapshot ids after GRAPH, forget deletes exactly those (a damaged snapshot
after a look, say); a snapshot a checkpoint pins is refused.`,
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			if len(args) > 1 {
				if !p.Empty() {
					return fmt.Errorf("give either snapshot ids or --keep-* rules, not both")
				}
				return forgetNamed(ctx, svc, g, args[0], args[1:], dryRun)
			}
			req := service.CleanupRequest{DryRun: dryRun, Prune: prune && !dryRun}
			if !p.Empty() {
				req.Policy = &p
			}
			if len(args) == 1 {
				req.Graph = args[0]
			}
			out, err := svc.Cleanup(ctx, req)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, out)
			}
			res := out.Forget
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
			used := g.file.Retention
			if req.Policy != nil {
				used = p
			}
			fmt.Printf("policy: %s; %d snapshots forgotten%s\n", used, res.Removed, map[bool]string{true: " (dry run)"}[dryRun])
			if res.Locked > 0 {
				fmt.Printf("%d more snapshots the policy drops are kept by the object lock until it lapses (see their lines)\n", res.Locked)
			}
			if out.Prune != nil {
				printPrune(out.Prune)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&p.KeepLast, "keep-last", 0, "keep the newest N snapshots")
	f.IntVar(&p.KeepHourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours that have one")
	f.IntVar(&p.KeepDaily, "keep-daily", 0, "... of each of the last N days")
	f.IntVar(&p.KeepWeekly, "keep-weekly", 0, "... of each of the last N ISO weeks")
	f.IntVar(&p.KeepMonthly, "keep-monthly", 0, "... of each of the last N months")
	f.IntVar(&p.KeepYearly, "keep-yearly", 0, "... of each of the last N years")
	f.Var(&p.KeepWithin, "keep-within", "keep snapshots taken within this long of the newest (e.g. 7d or 72h)")
	f.BoolVar(&dryRun, "dry-run", false, "show what would be forgotten, change nothing")
	f.BoolVar(&prune, "prune", false, "prune unreferenced chunks afterwards")
	return cmd
}

// forgetNamed forgets the snapshots named, one by one.
func forgetNamed(ctx context.Context, svc *service.Service, g *globals, graph string, ids []string, dryRun bool) error {
	var forgotten []string
	for _, id := range ids {
		snap, err := svc.Snapshot(ctx, graph, id)
		if err == nil && !dryRun {
			err = svc.DeleteSnapshot(ctx, graph, snap.Snapshot.ID)
		}
		if err != nil {
			return fmt.Errorf("forget %s/%s: %w (forgotten before it: %d)", graph, id, err, len(forgotten))
		}
		forgotten = append(forgotten, snap.Snapshot.ID)
	}
	if g.json {
		return printJSON(os.Stdout, map[string]any{"graph": graph, "forgotten": forgotten, "dry_run": dryRun})
	}
	for _, id := range forgotten {
		verb := "forgot"
		if dryRun {
			verb = "would forget"
		}
		fmt.Printf("%s %s/%s\n", verb, graph, id)
	}
	fmt.Println("its chunks are deleted by the next prune")
	return nil
}

func pruneCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete chunks that no snapshot names",
		Long: `prune lists chunks/ and deletes the objects no snapshot names, and rewrites each pack
a quarter or more of which no snapshot names with only the rest. Backups go on while it
runs: it waits for the backups already running before it deletes, and backups that start
meanwhile store again what it may delete. A prune killed midway leaves nothing broken;
its lease expires within minutes.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			res, err := svc.Prune(ctx, dryRun)
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
		if res.Compactable > 0 {
			fmt.Printf("prune (dry run): %d packs hold %s no snapshot names and would be compacted\n", res.Compactable, humanBytes(res.CompactableSz))
		}
		return
	}
	fmt.Printf("prune: deleted %d unreferenced chunks (%s); %d chunks referenced\n", res.Deleted, humanBytes(res.UnreferencedSz), res.Referenced)
	if res.Compacted > 0 {
		fmt.Printf("prune: compacted %d packs, freeing %s no snapshot named\n", res.Compacted, humanBytes(res.CompactedSz))
	}
	if res.Rescued > 0 {
		fmt.Printf("prune: kept %d chunks that snapshots committed during the prune named again\n", res.Rescued)
	}
	if res.Recent > 0 {
		fmt.Printf("prune: left %d unreferenced chunks written since the oldest running backup began (it may still name them); a later prune decides\n", res.Recent)
	}
	if res.Locked > 0 {
		fmt.Printf("prune: %d unreferenced chunks are still locked (the first lapses %s): a later prune deletes them\n", res.Locked, res.LockedUntil.Local().Format(time.DateTime))
	}
	if res.StaleTemps > 0 {
		fmt.Printf("prune: removed %d temporary files that writes killed over an hour ago left\n", res.StaleTemps)
	}
	if res.DeadSweeps > 0 {
		fmt.Printf("prune: removed the records of %d prunes that died\n", res.DeadSweeps)
	}
}

func statsCmd(g *globals) *cobra.Command {
	var noList bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show what the repository holds and what deduplication saves",
		Args:  cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			st, err := svc.Stats(ctx, !noList)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, st)
			}
			s := st.Repository
			fmt.Printf("repository %s at %s (encrypted: %v)\n", s.ID, s.Location, s.Encrypted)
			fmt.Printf("%d snapshots of %d graphs; %s of files in all snapshots\n", s.Snapshots, len(s.Graphs), humanBytes(s.LogicalBytes))
			fmt.Printf("%d unique chunks in %d objects, %s before compression", s.UniqueChunks, s.Objects, humanBytes(s.UniqueBytes))
			if s.StoredBytes != nil {
				fmt.Printf("; %s stored in %d objects under chunks/", humanBytes(*s.StoredBytes), *s.StoredChunks)
			}
			fmt.Printf("; %.1fx smaller than full copies\n", s.DedupRatio)
			tw := newTable("GRAPH\tSNAPSHOTS\tLATEST\tSIZE\tSTORED\tDEDUP\tADDED PER BACKUP\tFLAGGED")
			for _, gs := range s.Graphs {
				dedup, added := "-", "-"
				if gs.DedupRatio > 0 {
					dedup = fmt.Sprintf("%.1fx", gs.DedupRatio)
				}
				if gs.AddedBytes != nil {
					added = humanBytes(*gs.AddedBytes)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\n", gs.Graph, gs.Snapshots, gs.Latest, humanBytes(gs.LatestSize),
					humanBytes(gs.StoredBytes), dedup, added, gs.Flagged)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Println("(STORED: what the chunks a graph's snapshots name take in storage; a chunk two graphs share counts for both)")
			printEstimate(st.Monthly)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&noList, "no-list", false, "skip listing chunks/ (no stored size)")
	return cmd
}

// printEstimate prints a month of the schedule: requests per operation
// kind, and the bill at each provider's list prices.
func printEstimate(e *cost.Estimate) {
	if e == nil || len(e.Operations) == 0 {
		return
	}
	fmt.Println("\nA month of the schedule (the config file's schedule:, else a backup of each graph every backup_interval):")
	tw := newTable("OPERATION\tRUNS/MONTH\tWRITES+LISTS/RUN\tREADS/RUN\tDELETES/RUN\tREQUESTS/MONTH")
	for _, op := range e.Operations {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\n", op.Kind, op.RunsPerMonth, op.PerRun.Writes, op.PerRun.Reads, op.PerRun.Deletes,
			op.PerMonth.Writes+op.PerMonth.Reads+op.PerMonth.Deletes)
	}
	_ = tw.Flush()
	fmt.Printf("\nEstimated monthly cost at list prices (%s stored, replicas included):\n", humanBytes(e.StoredBytes))
	tw = newTable("PROVIDER\tCLASS\tREQUESTS\tSTORAGE\tTOTAL")
	for _, b := range e.Bills {
		fmt.Fprintf(tw, "%s\t%s\t$%.2f\t$%.2f\t$%.2f\n", b.Provider, b.Class, b.Requests, b.Storage, b.Total)
	}
	_ = tw.Flush()
}

func checkCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check a storage location: write, read back and delete a probe object",
		Args:  cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			location, err := svc.CheckStorage(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("%s: ok (write, read, delete)\n", location)
			return nil
		}),
	}
}
