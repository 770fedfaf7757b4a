package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers"
)

func checkpointCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "checkpoint", Short: "Recovery checkpoints: one consistent set of snapshots across graphs"}
	var note string
	create := &cobra.Command{
		Use:   "create [GRAPH...]",
		Short: "Snapshot the graphs (default all), then write a checkpoint naming those snapshots",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			sources, err := g.sources()
			if err != nil {
				return err
			}
			if len(args) > 0 {
				sources = nil
				for _, id := range args {
					s, err := g.source(id)
					if err != nil {
						return err
					}
					sources = append(sources, s)
				}
			}
			if len(sources) == 0 {
				return fmt.Errorf("nothing to checkpoint: %s", knownGraphs(nil, g.graphsRootDir()))
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
			cp, err := recovery.CreateCheckpoint(ctx, r, sources, recovery.CreateOptions{Note: note, Backup: opts})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, cp)
			}
			fmt.Printf("checkpoint %s: %d graphs\n", cp.ID, len(cp.Snapshots))
			printCheckpoint(cp)
			return nil
		},
	}
	create.Flags().StringVar(&note, "note", "", "a note to keep with the checkpoint")

	list := &cobra.Command{
		Use:   "list",
		Short: "List checkpoints, newest first, with where they were last found restorable",
		Args:  cobra.NoArgs,
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, _ []string) error {
			cps, err := recovery.Checkpoints(ctx, r)
			if err != nil {
				return err
			}
			type line struct {
				*repo.Checkpoint
				Validation *recovery.Validation `json:"last_validation,omitempty"`
			}
			lines := []line{}
			for _, cp := range cps {
				v, _ := recovery.LastValidation(ctx, r, cp.ID)
				lines = append(lines, line{cp, v})
			}
			if g.json {
				return printJSON(os.Stdout, lines)
			}
			if len(lines) == 0 {
				fmt.Println("no checkpoints; create one with 'graphkeep checkpoint create'")
				return nil
			}
			tw := newTable("CHECKPOINT\tTIME\tGRAPHS\tRESTORABLE AT\tVALIDATED\tNOTE")
			for _, l := range lines {
				where, when := "-", "never"
				if l.Validation != nil {
					where = strings.Join(l.Validation.RestorableAt(), ",")
					if where == "" {
						where = "nowhere"
					}
					when = l.Validation.Time.Local().Format("2006-01-02 15:04:05")
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
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, args []string) error {
			cp, err := recovery.Find(ctx, r, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, cp)
			}
			fmt.Printf("checkpoint %s, %s %s\n", cp.ID, cp.Time.Local().Format(time.RFC3339), cp.Note)
			printCheckpoint(cp)
			return nil
		}),
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a checkpoint (its snapshots are no longer pinned)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, args []string) error {
			if err := recovery.DeleteCheckpoint(ctx, r, args[0]); err != nil {
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
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, args []string) error {
			cp, err := recovery.Find(ctx, r, args[0])
			if err != nil {
				return err
			}
			locs, err := recovery.Locations(ctx, r, openTarget)
			if err != nil {
				return err
			}
			defer func() {
				for _, l := range locs[1:] {
					if l.Store != nil {
						l.Store.Close()
					}
				}
			}()
			v := recovery.Validate(ctx, r, cp, locs, readData)
			if err := recovery.SaveValidation(ctx, r, v); err != nil {
				fmt.Fprintf(os.Stderr, "graphkeep: warning: could not store the result: %v\n", err)
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
					fmt.Fprintf(os.Stderr, "graphkeep: checkpoint %s is restorable nowhere\n", cp.ID)
				}
				return errFound
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
	var target, checkpoint string
	var restore, dryRun, force, auto bool
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if auto {
				policy.Restore, policy.GraphsRoot = restore, g.graphsRootDir()
				return autoFailover(ctx, g, policy)
			}
			if target == "" {
				return fmt.Errorf("give --target ID (or the target's URL)")
			}
			from, err := g.repoURL()
			if err != nil {
				return err
			}
			pw, err := g.password()
			if err != nil {
				return err
			}
			octx, cancel := context.WithTimeout(ctx, 20*time.Second)
			primary, primaryErr := g.openRepo(octx)
			cancel()
			if primary != nil {
				defer primary.Store().Close()
			}
			t, err := resolveTarget(ctx, g, primary, from, target)
			if err != nil && primary != nil && !dryRun {
				// Run again after it completed? The switch is recorded in
				// the primary now in use.
				if sw, ferr := recovery.FindCompleted(ctx, primary, from, target); ferr == nil && sw != nil {
					return failoverAlreadyDone(ctx, g, primary, sw, restore)
				}
			}
			if err != nil {
				return err
			}
			dst, err := openTarget(ctx, t.URL)
			if err != nil {
				return fmt.Errorf("target %s: %w", t.ID, err)
			}
			defer dst.Close()
			replica, err := repo.Open(ctx, dst, repo.OpenOptions{Password: pw, CacheDir: g.cache()})
			if err != nil {
				return targetHint(t.ID, err)
			}
			if primary != nil && primary.ID() != replica.ID() {
				return fmt.Errorf("target %s holds repository %s, the primary is %s", t.ID, replica.ID(), primary.ID())
			}
			opts := recovery.FailoverOptions{Checkpoint: checkpoint, Restore: restore, GraphsRoot: g.graphsRootDir(), DryRun: dryRun, Force: force}
			if restore && opts.GraphsRoot == "" {
				return fmt.Errorf("--restore needs --graphs-root (where the graphs go)")
			}
			plan, err := recovery.PlanFailover(ctx, primary, replica, t, from, opts)
			if err != nil {
				return err
			}
			if !g.json {
				printPlan(plan, primaryErr)
			}
			out, err := recovery.Failover(ctx, replica, plan, opts)
			if g.json {
				_ = printJSON(os.Stdout, out)
			}
			if err != nil {
				return err
			}
			if dryRun {
				if !g.json {
					fmt.Println("dry run: nothing changed")
				}
				return nil
			}
			if err := recovery.SaveRedirect(recovery.StateDir(), from, t.URL, replica.ID()); err != nil {
				return fmt.Errorf("the switch is recorded in the new primary, but this machine could not remember it: %w; use --repo %s from now on", err, providers.Redact(t.URL))
			}
			if !g.json {
				fmt.Printf("failover done: the primary is now %s (recorded in %s)\n", providers.Redact(t.URL), recovery.StateDir())
				for _, res := range out.Restored {
					fmt.Printf("restored %s/%s into %s: %d files, %v\n", res.Snapshot.Graph, res.Snapshot.ID, res.Dest, res.Files, res.LightRAG)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "the target to promote (id, or its URL when the primary is gone)")
	f.StringVar(&checkpoint, "checkpoint", "", "checkpoint to promote with (default: the newest on the target)")
	f.BoolVar(&restore, "restore", false, "restore every graph of the checkpoint into the graphs root")
	f.BoolVar(&dryRun, "dry-run", false, "show what would happen, change nothing")
	f.BoolVar(&force, "force", false, "promote even when the target is behind or does not hold the checkpoint whole")
	f.BoolVar(&auto, "auto", false, "keep running: fail over automatically by the policy below (opt-in)")
	f.DurationVar(&policy.After, "after", 5*time.Minute, "with --auto: how long the primary must be unreachable")
	f.DurationVar(&policy.MinInterval, "min-interval", time.Hour, "with --auto: at most one automatic failover per this")
	f.DurationVar(&policy.Interval, "interval", 15*time.Second, "with --auto: how often the primary is probed")
	f.BoolVar(&policy.AllowDataLoss, "allow-data-loss", false, "with --auto: promote a target that lacks the primary's newest snapshots")
	return cmd
}

// failoverAlreadyDone reports a failover found completed, finishing its
// restores when asked (graphs whose directories are missing).
func failoverAlreadyDone(ctx context.Context, g *globals, primary *repo.Repository, sw *recovery.Switch, restore bool) error {
	done := &recovery.Completed{Switch: *sw}
	if restore {
		if g.graphsRootDir() == "" {
			return fmt.Errorf("--restore needs --graphs-root (where the graphs go)")
		}
		var err error
		if done, err = recovery.FinishRestores(ctx, primary, sw, g.graphsRootDir()); err != nil {
			return err
		}
	}
	if g.json {
		return printJSON(os.Stdout, done)
	}
	fmt.Printf("failover to %s already done at %s: the primary is %s\n", sw.Target, sw.Time.Local().Format(time.RFC3339), providers.Redact(sw.To))
	for _, res := range done.Restored {
		fmt.Printf("restored %s/%s into %s (it was missing): %d files, %v\n", res.Snapshot.Graph, res.Snapshot.ID, res.Dest, res.Files, res.LightRAG)
	}
	if len(done.Present) > 0 {
		fmt.Printf("already in place: %s\n", strings.Join(done.Present, ", "))
	}
	return nil
}

// autoFailover runs the automatic failover monitor until interrupted.
func autoFailover(ctx context.Context, g *globals, policy recovery.AutoPolicy) error {
	from, err := g.repoURL()
	if err != nil {
		return err
	}
	pw, err := g.password()
	if err != nil {
		return err
	}
	m := &recovery.Monitor{
		Policy:     policy,
		PrimaryURL: from,
		Open:       openTarget,
		OpenRepo: func(ctx context.Context, s blob.Store) (*repo.Repository, error) {
			return repo.Open(ctx, s, repo.OpenOptions{Password: pw, CacheDir: g.cache()})
		},
		OnSwitch: func(from, to, id string) error { return recovery.SaveRedirect(recovery.StateDir(), from, to, id) },
		OnEvent: func(e recovery.AutoEvent) {
			if g.json {
				_ = json.NewEncoder(os.Stdout).Encode(e)
				return
			}
			fmt.Printf("%s %s: %s\n", e.Time.Local().Format("15:04:05"), e.Kind, e.Message)
		},
	}
	fmt.Fprintf(os.Stderr, "watching %s: automatic failover after %s unreachable (at most one per %s); stop with Ctrl-C\n",
		providers.Redact(from), policy.After, policy.MinInterval)
	return m.Run(ctx)
}

func printPlan(p *recovery.Plan, primaryErr error) {
	fmt.Printf("failover from %s to %s (target %s)\n", providers.Redact(p.From), providers.Redact(p.To), p.Target)
	if !p.PrimaryReachable {
		fmt.Printf("  the primary does not answer (%v): what it held after the target's newest snapshots is lost\n", primaryErr)
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
}

// resolveTarget finds target id: in the primary's meta, else (primary
// gone) in the targets this machine last saw, else id is taken as a URL.
func resolveTarget(ctx context.Context, g *globals, primary *repo.Repository, from, id string) (replication.Target, error) {
	if strings.Contains(id, "://") {
		return replication.Target{ID: "promoted", URL: id}, nil
	}
	if primary != nil {
		t, err := replication.GetTarget(ctx, primary, id)
		if err == nil {
			rememberTargets(ctx, primary, from)
		}
		return t, err
	}
	for _, t := range rememberedTargets(from) {
		if t.ID == id {
			return t, nil
		}
	}
	return replication.Target{}, fmt.Errorf("the primary does not answer and this machine has not seen target %q; give its URL: --target s3://bucket/prefix", id)
}

func rememberedTargetsFile(primaryURL string) string {
	sum := sha256.Sum256([]byte(primaryURL))
	return filepath.Join(recovery.StateDir(), "targets-"+hex.EncodeToString(sum[:8])+".json")
}

// rememberTargets keeps a local copy of the primary's targets, so that a
// failover can find them when the primary is gone.
func rememberTargets(ctx context.Context, r *repo.Repository, primaryURL string) {
	targets, err := replication.ListTargets(ctx, r)
	if err != nil {
		return
	}
	data, _ := json.Marshal(targets)
	_ = os.MkdirAll(recovery.StateDir(), 0o700)
	_ = os.WriteFile(rememberedTargetsFile(primaryURL), data, 0o600)
}

func rememberedTargets(primaryURL string) []replication.Target {
	var out []replication.Target
	if data, err := os.ReadFile(rememberedTargetsFile(primaryURL)); err == nil {
		_ = json.Unmarshal(data, &out)
	}
	return out
}

func healthCmd(g *globals) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Overall HEALTHY / DEGRADED / CRITICAL with the reasons (exit 1 when CRITICAL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			url, err := g.repoURL()
			if err != nil {
				return err
			}
			var h *recovery.Health
			octx, cancel := context.WithTimeout(ctx, 20*time.Second)
			r, err := g.openRepo(octx)
			cancel()
			if err != nil {
				h = recovery.PrimaryDown(providers.Redact(url), err)
			} else {
				defer r.Store().Close()
				rememberTargets(ctx, r, url)
				var graphs []string
				if sources, err := g.sources(); err == nil {
					for _, s := range sources {
						graphs = append(graphs, s.Graph)
					}
				}
				if interval == 0 {
					interval = g.file.BackupInterval
				}
				h, err = recovery.SystemHealth(ctx, r, openTarget, recovery.HealthOptions{BackupInterval: interval, Graphs: graphs})
				if err != nil {
					return err
				}
			}
			if g.json {
				if err := printJSON(os.Stdout, h); err != nil {
					return err
				}
			} else {
				fmt.Printf("%s\n", h.Status)
				for _, reason := range h.Reasons {
					fmt.Printf("  - %s\n", reason)
				}
				if h.Checkpoint != nil {
					fmt.Printf("latest checkpoint %s, %s old, restorable at: %s\n", h.Checkpoint.ID,
						(time.Duration(h.Checkpoint.AgeSeconds) * time.Second).Round(time.Second), strings.Join(h.Checkpoint.RestorableAt, ", "))
				}
			}
			if h.Status == recovery.StateCritical {
				return errFound
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&interval, "backup-interval", 0, "how often graphs should be backed up (default: backup_interval from the config, else 24h)")
	return cmd
}

func recoveryStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "recovery", Short: "Recovery status"}
	status := &cobra.Command{
		Use:   "status",
		Short: "Latest checkpoint, achievable RPO per location, failover history",
		Args:  cobra.NoArgs,
		RunE: g.withRepo(func(ctx context.Context, r *repo.Repository, _ []string) error {
			h, err := recovery.SystemHealth(ctx, r, openTarget, recovery.HealthOptions{BackupInterval: g.file.BackupInterval})
			if err != nil {
				return err
			}
			type location struct {
				Location   string  `json:"location"`
				RPOSeconds float64 `json:"rpo_seconds"`
				Status     string  `json:"status"`
			}
			out := struct {
				Checkpoint *recovery.CheckpointHealth `json:"latest_checkpoint"`
				Locations  []location                 `json:"locations"`
				Failovers  []recovery.Switch          `json:"failovers"`
			}{Checkpoint: h.Checkpoint, Locations: []location{{Location: recovery.PrimaryName, Status: "HEALTHY"}}, Failovers: h.Failovers}
			for _, t := range h.Targets {
				out.Locations = append(out.Locations, location{Location: t.ID, RPOSeconds: t.RPOSeconds, Status: t.Status})
			}
			if out.Failovers == nil {
				out.Failovers = []recovery.Switch{}
			}
			if g.json {
				return printJSON(os.Stdout, out)
			}
			if out.Checkpoint != nil {
				fmt.Printf("latest checkpoint %s (%s old), restorable at: %s\n", out.Checkpoint.ID,
					(time.Duration(out.Checkpoint.AgeSeconds) * time.Second).Round(time.Second), strings.Join(out.Checkpoint.RestorableAt, ", "))
			} else {
				fmt.Println("no checkpoint")
			}
			tw := newTable("LOCATION\tSTATUS\tRPO")
			for _, l := range out.Locations {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Location, l.Status, (time.Duration(l.RPOSeconds) * time.Second).String())
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
