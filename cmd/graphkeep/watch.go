package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/core/service"
)

func watchCmd(g *globals) *cobra.Command {
	var all bool
	var minInterval, rescan, poll time.Duration
	var p retention.Policy
	cmd := &cobra.Command{
		Use:   "watch GRAPH... | --all",
		Short: "Continuous protection: snapshot every settled state of the graphs as LightRAG writes them",
		Long: `watch notices changes to the graphs (file system events, and a rescan every
--rescan for file systems without them; a graph in PostgreSQL is asked every --poll
whether its workspace changed), waits for each graph to settle (the quiet
window, LightRAG's pipeline when --lightrag-url is set) and backs up every settled
state; deduplication keeps each snapshot cheap. At most one backup of a graph per
--min-interval. With --keep-* rules (keep_within suits it: --keep-within 24h) each
graph's snapshots are forgotten by that policy after each backup, and unreferenced
chunks are pruned hourly; a graph's newest good snapshot is always kept. The log says
what each snapshot holds and its RPO: the time from LightRAG's last write of the stored
state to its snapshot being committed. Ctrl-C stops it cleanly: a backup in progress
commits nothing.`,
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			if all == (len(args) > 0) {
				return errors.New("name the graphs to watch, or give --all")
			}
			if minInterval <= 0 || rescan <= 0 || poll <= 0 {
				return errors.New("--min-interval, --rescan and --poll must be positive durations like 10s")
			}
			var policy *retention.Policy
			if !p.Empty() {
				policy = &p
			}
			var handler slog.Handler = slog.NewTextHandler(os.Stderr, nil)
			if g.json {
				handler = slog.NewJSONHandler(os.Stdout, nil)
			}
			return svc.Watch(ctx, service.WatchRequest{Graphs: args, All: all, MinInterval: minInterval, Rescan: rescan, Poll: poll,
				Retention: policy, Logger: slog.New(handler)})
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "watch every known graph")
	durationVar(f, &minInterval, "min-interval", 10*time.Second, "at most one backup of a graph this often")
	durationVar(f, &rescan, "rescan", 30*time.Second, "look at the graphs this often even without file system events")
	durationVar(f, &poll, "poll", time.Second, "ask a graph in PostgreSQL this often whether its workspace changed (one cheap query)")
	f.IntVar(&p.KeepLast, "keep-last", 0, "after each backup, keep the newest N snapshots")
	f.Var(&p.KeepWithin, "keep-within", "after each backup, keep snapshots taken within this long of the newest (e.g. 1d or 24h)")
	f.IntVar(&p.KeepHourly, "keep-hourly", 0, "after each backup, keep the last snapshot of each of N hours")
	f.IntVar(&p.KeepDaily, "keep-daily", 0, "after each backup, keep the last snapshot of each of N days")
	return cmd
}
