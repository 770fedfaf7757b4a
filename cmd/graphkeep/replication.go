package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/service"
	"github.com/graphkeep/graphkeep/providers"
)

func targetsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "targets", Short: "Manage replication targets"}
	var graphs, lockMode, lockRetention string
	var mirror bool
	add := &cobra.Command{
		Use:   "add ID URL",
		Short: "Register a bucket (any provider) that receives a replica",
		Args:  cobra.ExactArgs(2),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			t := replication.Target{ID: args[0], URL: args[1], MirrorDeletes: mirror}
			if graphs != "" {
				t.Graphs = strings.Split(graphs, ",")
			}
			if lockMode != "" || lockRetention != "" {
				p, err := lockPolicy(lockMode, lockRetention)
				if err != nil {
					return err
				}
				t.Lock = p
			}
			if _, err := svc.AddTarget(ctx, t); err != nil {
				return err
			}
			fmt.Printf("target %s added: %s; run 'graphkeep replicate --target %s' to fill it\n", t.ID, providers.Redact(t.URL), t.ID)
			return nil
		}),
	}
	add.Flags().StringVar(&graphs, "graphs", "", "replicate only these graphs (comma separated; default all)")
	add.Flags().BoolVar(&mirror, "mirror-deletes", false, "also remove from the target the snapshots forgotten on the primary")
	add.Flags().StringVar(&lockMode, "object-lock", "", "lock everything replicated there (an S3 bucket created with object lock): governance or compliance")
	add.Flags().StringVar(&lockRetention, "retention", "", "with --object-lock: how long each replicated object stays locked, such as 90d")

	list := &cobra.Command{
		Use:   "list",
		Short: "List targets with their last known status and lag",
		Args:  cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			return showTargets(ctx, g, svc, "", false)
		}),
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Stop replicating to a target (its bucket is left as it is)",
		Args:  cobra.ExactArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			if err := svc.RemoveTarget(ctx, args[0]); err != nil {
				return err
			}
			fmt.Printf("target %s removed\n", args[0])
			return nil
		}),
	}
	health := &cobra.Command{
		Use:   "health [ID]",
		Short: "Probe targets now (write, read, delete) and show their health and lag",
		Args:  cobra.MaximumNArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return showTargets(ctx, g, svc, id, true)
		}),
	}
	cmd.AddCommand(add, list, remove, health)
	return cmd
}

// showTargets prints targets; with probe it probes each first and records
// the outcome.
func showTargets(ctx context.Context, g *globals, svc *service.Service, only string, probe bool) error {
	lines, err := svc.Targets(ctx, only, probe)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(os.Stdout, lines)
	}
	if len(lines) == 0 {
		fmt.Println("no targets; add one with 'graphkeep targets add ID URL'")
		return nil
	}
	tw := newTable("TARGET\tSTATUS\tLAG\tRPO\tLAST SUCCESS\tURL\tLAST ERROR")
	for _, l := range lines {
		last := "never"
		if l.LastSuccess != nil {
			last = l.LastSuccess.Local().Format("2006-01-02 15:04:05")
		}
		lag, rpo := "unknown", "unknown"
		if l.LagSnapshots != nil {
			lag = fmt.Sprintf("%d snapshots, %s", *l.LagSnapshots, humanBytes(*l.LagBytes))
			rpo = duration.Age(secondsDuration(*l.RPOSeconds))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Status, lag, rpo, last, l.URL, l.LastError)
	}
	return tw.Flush()
}

func replicateCmd(g *globals) *cobra.Command {
	var graph, target string
	var watch bool
	var interval, probeTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "replicate [--graph G] [--target ID] [--watch]",
		Short: "Copy what targets lack; with --watch keep reconciling and probing",
		Long: `replicate brings each target (or --target) up to date: chunks first, then manifests,
then checkpoints and meta, so a target is a consistent repository at every moment.
Only objects a target lacks move; a run that is stopped resumes where it stopped.
With --watch it keeps running: it probes every target each --interval and marks
them HEALTHY, DEGRADED or UNREACHABLE (with hysteresis), and catches up every
target that answers, backing off from those that do not. Exit status 1 when a
one-shot run could not bring every target up to date.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			if watch {
				fmt.Fprintf(os.Stderr, "replicating every %s; stop with Ctrl-C\n", interval)
				return svc.WatchReplication(ctx, service.WatchReplicationOptions{Target: target, Graph: graph, Interval: interval,
					ProbeTimeout: probeTimeout, OnEvent: func(e replication.Event) { printEvent(g.json, e) }})
			}
			results, err := svc.Replicate(ctx, target, graph)
			if g.json {
				if perr := printJSON(os.Stdout, results); perr != nil {
					return perr
				}
			} else {
				for _, res := range results {
					printResult(res)
				}
			}
			return err
		}),
	}
	cmd.Flags().StringVar(&graph, "graph", "", "replicate only this graph")
	cmd.Flags().StringVar(&target, "target", "", "replicate only to this target")
	cmd.Flags().BoolVar(&watch, "watch", false, "keep running: probe and reconcile every --interval")
	durationVar(cmd.Flags(), &interval, "interval", 10*time.Second, "time between rounds with --watch")
	durationVar(cmd.Flags(), &probeTimeout, "probe-timeout", 5*time.Second, "how long a probe may take")
	return cmd
}

func printResult(res *replication.Result) {
	fmt.Printf("%s: up to date; copied %d snapshots, %d chunks, %s, %d checkpoints in %s\n", res.Target, res.Snapshots,
		res.Chunks, humanBytes(res.Bytes), res.Checkpoints, res.Duration.Round(time.Millisecond))
}

func printEvent(jsonOut bool, e replication.Event) {
	if jsonOut {
		line := map[string]any{"time": e.Time, "target": e.Target, "kind": e.Kind, "state": e.State, "result": e.Result}
		if e.Err != nil {
			line["error"] = e.Err.Error()
		}
		_ = json.NewEncoder(os.Stdout).Encode(line)
		return
	}
	switch e.Kind {
	case "state":
		why := ""
		if e.Err != nil {
			why = ": " + e.Err.Error()
		}
		fmt.Printf("%s %s is %s%s\n", e.Time.Local().Format("15:04:05"), e.Target, e.State, why)
	case "replicated":
		if e.Result.Snapshots > 0 || e.Result.Chunks > 0 || e.Result.Deleted > 0 {
			fmt.Print(e.Time.Local().Format("15:04:05"), " ")
			printResult(e.Result)
		}
	case "failed":
		fmt.Printf("%s %s: replication failed: %v (will retry)\n", e.Time.Local().Format("15:04:05"), e.Target, e.Err)
	}
}

func replicationStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "replication", Short: "Replication status"}
	status := &cobra.Command{
		Use:   "status [GRAPH]",
		Short: "Which targets hold each graph's latest snapshot",
		Args:  cobra.MaximumNArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			graph := ""
			if len(args) == 1 {
				graph = args[0]
			}
			rows, err := svc.ReplicationStatus(ctx, graph)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, rows)
			}
			tw := newTable("GRAPH\tLATEST\tTARGET\tHOLDS LATEST\tTARGET'S LATEST")
			for _, row := range rows {
				for _, tgt := range row.Targets {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", row.Graph, row.Latest, tgt.Target, tgt.HoldsLatest, tgt.Latest)
				}
				if len(row.Targets) == 0 {
					fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\n", row.Graph, row.Latest)
				}
			}
			return tw.Flush()
		}),
	}
	cmd.AddCommand(status)
	return cmd
}
