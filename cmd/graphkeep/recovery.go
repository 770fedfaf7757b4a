package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/service"
	"github.com/graphkeep/graphkeep/providers"
)

func checkpointCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "checkpoint", Short: "Recovery checkpoints: one consistent set of snapshots across graphs"}
	var note string
	create := &cobra.Command{
		Use:   "create [GRAPH...]",
		Short: "Snapshot the graphs (default all), then write a checkpoint naming those snapshots",
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			cp, err := svc.CreateCheckpoint(ctx, args, note, nil)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, cp)
			}
			fmt.Printf("checkpoint %s: %d graphs\n", cp.ID, len(cp.Snapshots))
			printCheckpoint(cp)
			return nil
		}),
	}
	create.Flags().StringVar(&note, "note", "", "a note to keep with the checkpoint")

	list := &cobra.Command{
		Use:   "list",
		Short: "List checkpoints, newest first, with where they were last found restorable",
		Args:  cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			cps, err := svc.Checkpoints(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, cps)
			}
			if len(cps) == 0 {
				fmt.Println("no checkpoints; create one with 'graphkeep checkpoint create'")
				return nil
			}
			tw := newTable("CHECKPOINT\tTIME\tGRAPHS\tRESTORABLE AT\tVALIDATED\tNOTE")
			for _, l := range cps {
				where, when := "-", "never"
				if l.LastValidation != nil {
					where = strings.Join(l.LastValidation.RestorableAt(), ",")
					if where == "" {
						where = "nowhere"
					}
					when = l.LastValidation.Time.Local().Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", l.ID, l.Time.Local().Format("2006-01-02 15:04:05"), len(l.Snapshots), where, when, l.Note)
			}
			return tw.Flush()
		}),
	}
	show := &cobra.Command{
		Use:   "show ID|latest",
		Short: "Show a checkpoint's snapshots and LightRAG counts",
		Args:  cobra.ExactArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			cp, err := svc.Checkpoint(ctx, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, cp)
			}
			fmt.Printf("checkpoint %s, %s %s\n", cp.ID, cp.Time.Local().Format(time.RFC3339), cp.Note)
			printCheckpoint(cp.Checkpoint)
			return nil
		}),
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a checkpoint (its snapshots are no longer pinned)",
		Args:  cobra.ExactArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			if err := svc.DeleteCheckpoint(ctx, args[0]); err != nil {
				return err
			}
			fmt.Printf("checkpoint %s deleted; its snapshots are no longer pinned\n", args[0])
			return nil
		}),
	}
	var readData bool
	validate := &cobra.Command{
		Use:   "validate ID|latest [--read-data]",
		Short: "Check on the primary and on every target whether the checkpoint can be restored",
		Args:  cobra.ExactArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			v, err := svc.ValidateCheckpoint(ctx, args[0], readData)
			if v == nil {
				return err
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "graphkeep: warning: %v\n", err)
			}
			if g.json {
				if err := printJSON(os.Stdout, v); err != nil {
					return err
				}
			} else {
				tw := newTable("LOCATION\tSTATE\tMISSING\tDAMAGED\tURL\tDETAIL")
				for _, l := range v.Locations {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", l.Location, l.State, l.MissingObjects, l.Damaged, providers.Redact(l.URL), l.Error)
				}
				_ = tw.Flush()
			}
			if len(v.RestorableAt()) == 0 {
				if !g.json {
					fmt.Fprintf(os.Stderr, "graphkeep: checkpoint %s is restorable nowhere\n", v.Checkpoint)
				}
				return errReported
			}
			return nil
		}),
	}
	validate.Flags().BoolVar(&readData, "read-data", false, "download, decode and hash every chunk")
	cmd.AddCommand(create, list, show, del, validate)
	return cmd
}

func printCheckpoint(cp *repo.Checkpoint) {
	tw := newTable("  GRAPH\tSNAPSHOT\tLIGHTRAG")
	for _, s := range cp.Snapshots {
		fmt.Fprintf(tw, "  %s\t%s\t%v\n", s.Graph, s.ID, s.LightRAG)
	}
	_ = tw.Flush()
}

func failoverCmd(g *globals) *cobra.Command {
	var req service.FailoverRequest
	var auto bool
	var policy recovery.AutoPolicy
	cmd := &cobra.Command{
		Use:   "failover --target ID|URL [--checkpoint ID] [--restore] [--dry-run] [--force]",
		Short: "Make a replica the primary, optionally restoring every graph of a checkpoint",
		Long: `failover promotes a target to be the primary. It refuses (without --force) when
the target does not hold the checkpoint whole, or when it is behind a primary that
still answers (it says how much would be lost). It records the switch in the new
primary, makes every later graphkeep command on this machine use it, and registers
the old primary as target "old-primary" so that replication catches it up when it
returns (failback: later, 'failover --target old-primary'). --restore restores
every graph of the checkpoint into the graphs root, each atomically. --dry-run
shows the plan and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			if auto {
				policy.Restore = req.Restore
				return autoFailover(ctx, g, svc, policy)
			}
			if req.Target == "" {
				return fmt.Errorf("give --target ID (or the target's URL)")
			}
			out, err := svc.Failover(ctx, req)
			if g.json && out != nil {
				_ = printJSON(os.Stdout, out)
			}
			if !g.json && out != nil {
				printFailover(out, req.DryRun)
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Target, "target", "", "the target to promote (id, or its URL when the primary is gone)")
	f.StringVar(&req.Checkpoint, "checkpoint", "", "checkpoint to promote with (default: the newest on the target)")
	f.BoolVar(&req.Restore, "restore", false, "restore every graph of the checkpoint into the graphs root")
	f.BoolVar(&req.DryRun, "dry-run", false, "show what would happen, change nothing")
	f.BoolVar(&req.Force, "force", false, "promote even when the target is behind or does not hold the checkpoint whole")
	f.BoolVar(&auto, "auto", false, "keep running: fail over automatically by the policy below (opt-in)")
	durationVar(f, &policy.After, "after", 5*time.Minute, "with --auto: how long the primary must be unreachable")
	durationVar(f, &policy.MinInterval, "min-interval", time.Hour, "with --auto: at most one automatic failover per this")
	durationVar(f, &policy.Interval, "interval", 15*time.Second, "with --auto: how often the primary is probed")
	f.BoolVar(&policy.AllowDataLoss, "allow-data-loss", false, "with --auto: promote a target that lacks the primary's newest snapshots")
	return cmd
}

// printFailover says what a failover did, or found done before.
func printFailover(out *service.FailoverResult, dryRun bool) {
	if done := out.AlreadyDone; done != nil {
		sw := done.Switch
		fmt.Printf("failover to %s already done at %s: the primary is %s\n", sw.Target, sw.Time.Local().Format(time.RFC3339), providers.Redact(sw.To))
		for _, res := range done.Restored {
			fmt.Printf("restored %s/%s into %s (it was missing): %d files, %v\n", res.Snapshot.Graph, res.Snapshot.ID, res.Dest, res.Files, res.LightRAG)
		}
		if len(done.Present) > 0 {
			fmt.Printf("already in place: %s\n", strings.Join(done.Present, ", "))
		}
		return
	}
	if out.Outcome == nil {
		return
	}
	p := out.Plan
	fmt.Printf("failover from %s to %s (target %s)\n", providers.Redact(p.From), providers.Redact(p.To), p.Target)
	if !p.PrimaryReachable {
		fmt.Printf("  the primary does not answer (%s): what it held after the target's newest snapshots is lost\n", out.PrimaryError)
	} else if p.Loss != nil {
		fmt.Printf("  the target is %d snapshots (%s) behind the primary\n", p.Loss.Snapshots, humanBytes(p.Loss.Bytes))
	}
	if p.Checkpoint != nil {
		fmt.Printf("  checkpoint %s (%s) on the target: %s\n", p.Checkpoint.ID, p.Checkpoint.Time.Local().Format(time.RFC3339), p.OnTarget.State)
	}
	for i, s := range p.Steps {
		fmt.Printf("  %d. %s\n", i+1, s)
	}
	for _, b := range p.Blockers {
		fmt.Printf("  BLOCKER: %s\n", b)
	}
	switch {
	case dryRun && !out.Possible:
		fmt.Println("dry run: not possible now because of the blockers above (--force would go ahead anyway); nothing changed")
	case dryRun:
		fmt.Println("dry run: possible; nothing changed")
	case out.Switch != nil:
		fmt.Printf("failover done: the primary is now %s (recorded in %s)\n", providers.Redact(p.To), out.RecordedIn)
		for _, res := range out.Restored {
			fmt.Printf("restored %s/%s into %s: %d files, %v\n", res.Snapshot.Graph, res.Snapshot.ID, res.Dest, res.Files, res.LightRAG)
			if res.Resume != nil {
				fmt.Printf("  resumable: when it starts, LightRAG processes again %s\n", res.Resume)
			}
		}
	}
}

// autoFailover runs the automatic failover monitor until interrupted.
func autoFailover(ctx context.Context, g *globals, svc *service.Service, policy recovery.AutoPolicy) error {
	from, _, err := svc.PrimaryURL()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "watching %s: automatic failover after %s unreachable (at most one per %s); stop with Ctrl-C\n",
		providers.Redact(from), policy.After, policy.MinInterval)
	return svc.AutoFailover(ctx, policy, func(e recovery.AutoEvent) {
		if g.json {
			_ = json.NewEncoder(os.Stdout).Encode(e)
			return
		}
		fmt.Printf("%s %s: %s\n", e.Time.Local().Format("15:04:05"), e.Kind, e.Message)
	})
}

func healthCmd(g *globals) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Overall HEALTHY / DEGRADED / CRITICAL with the reasons (exit 1 when CRITICAL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval > 0 {
				g.file.BackupInterval, g.file.Schedule.BackupInterval = interval, 0
			}
			return g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
				h, err := svc.Health(ctx)
				if err != nil {
					return err
				}
				if g.json {
					if err := printJSON(os.Stdout, h); err != nil {
						return err
					}
				} else {
					printHealth(os.Stdout, h)
				}
				if h.Status == recovery.StateCritical {
					return errReported
				}
				return nil
			})(cmd, nil)
		},
	}
	durationVar(cmd.Flags(), &interval, "backup-interval", 0, "how often graphs should be backed up (default: backup_interval from the config, else 24h)")
	return cmd
}

func recoveryStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "recovery", Short: "Recovery status"}
	status := &cobra.Command{
		Use:   "status",
		Short: "Latest checkpoint, achievable RPO per location, failover history",
		Args:  cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			out, err := svc.RecoveryStatus(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, out)
			}
			if out.Checkpoint != nil {
				fmt.Printf("latest checkpoint %s (%s old), %s\n", out.Checkpoint.ID,
					duration.Age(secondsDuration(out.Checkpoint.AgeSeconds)), whereRestorable(out.Checkpoint.RestorableAt, out.Checkpoint.ValidatedAt))
			} else {
				fmt.Println("no checkpoint")
			}
			tw := newTable("LOCATION\tSTATUS\tRPO")
			for _, l := range out.Locations {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Location, l.Status, duration.Age(secondsDuration(l.RPOSeconds)))
			}
			_ = tw.Flush()
			for _, s := range out.Failovers {
				fmt.Printf("failover %s: %s -> %s (checkpoint %s, forced %v)\n", s.Time.Local().Format(time.RFC3339), providers.Redact(s.From), providers.Redact(s.To), s.Checkpoint, s.Forced)
			}
			return nil
		}),
	}
	cmd.AddCommand(status)
	return cmd
}

// whereRestorable says where a checkpoint was last found restorable, or
// that it has not been validated.
func whereRestorable(at []string, validated time.Time) string {
	switch {
	case validated.IsZero():
		return "not validated yet, so where it restores is unknown"
	case len(at) == 0:
		return fmt.Sprintf("restorable nowhere when validated at %s", validated.Local().Format(time.RFC3339))
	}
	return fmt.Sprintf("restorable at %s (validated %s ago)", strings.Join(at, ", "), duration.Age(time.Since(validated)))
}

// secondsDuration is an age given in seconds (as JSON carries it).
func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// printHealth writes h as the health command shows it: the state, each
// finding with what to run about it, and the latest checkpoint.
func printHealth(w io.Writer, h *recovery.Health) {
	fmt.Fprintf(w, "%s\n", h.Status)
	for _, f := range h.Findings {
		line := f.Reason
		if hint := remedyHint(f.Remedy, f.Object); hint != "" {
			line += " (" + hint + ")"
		}
		fmt.Fprintf(w, "  - %s\n", line)
	}
	if c := h.Checkpoint; c != nil {
		fmt.Fprintf(w, "latest checkpoint %s, %s old, %s\n", c.ID, duration.Age(secondsDuration(c.AgeSeconds)), whereRestorable(c.RestorableAt, c.ValidatedAt))
	}
}
