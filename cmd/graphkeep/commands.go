package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/service"
)

func initCmd(g *globals) *cobra.Command {
	var opts service.InitOptions
	var lockMode, lockRetention string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repository (encrypted when a password is given)",
		Args:  cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			if lockMode != "" || lockRetention != "" {
				p, err := lockPolicy(lockMode, lockRetention)
				if err != nil {
					return err
				}
				opts.Lock = p
			}
			res, err := svc.Init(ctx, opts)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, res)
			}
			enc := "not encrypted (set GRAPHKEEP_PASSWORD or --password-file at init to encrypt)"
			if res.Encrypted {
				enc = "encrypted: keep the password safe, the data cannot be read without it"
			}
			fmt.Printf("created repository %s at %s, %s\n", res.ID, res.Location, enc)
			if l := res.Lock; l != nil {
				from := ""
				if opts.Lock == nil {
					from = " (the bucket's default retention)"
				}
				fmt.Printf("object lock%s: every object is written locked (%s) for %s; run 'graphkeep lock extend' at least every %s so what is still needed stays locked\n",
					from, l.Mode, humanDuration(l.Retention()), humanDuration(l.Retention()/3))
			}
			return nil
		}),
	}
	cmd.Flags().IntVar(&opts.AvgChunkSize, "avg-chunk-size", 1<<20, "average chunk size in bytes (a power of two, 4 KiB to 64 MiB)")
	cmd.Flags().StringVar(&opts.Compression, "compression", "s2", "s2 (fast), zstd (smaller) or none")
	cmd.Flags().StringVar(&opts.CompressionLevel, "compression-level", "fastest", "fastest, default or better")
	cmd.Flags().Var(packSizeFlag{&opts.PackSize}, "pack-size", "MiB of stored chunks per object (1 to 256; 0: each chunk an object of its own, format 1, which releases from before packs read)")
	cmd.Flags().StringVar(&lockMode, "object-lock", "", "make the repository immutable on an S3 bucket created with object lock: governance or compliance")
	cmd.Flags().StringVar(&lockRetention, "retention", "", "with --object-lock: how long each object stays locked, such as 30d or 720h")
	return cmd
}

// packSizeFlag reads --pack-size MiB into InitOptions.PackSize (0 there
// is the default, a negative size no packs).
type packSizeFlag struct{ size *int }

func (f packSizeFlag) String() string {
	if f.size == nil || *f.size == 0 {
		return strconv.Itoa(repo.DefaultPackSize >> 20)
	}
	if *f.size < 0 {
		return "0"
	}
	return strconv.Itoa(*f.size >> 20)
}

func (f packSizeFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > repo.MaxPackSize>>20 {
		return fmt.Errorf("%q is not a pack size: give MiB from 1 to %d, or 0 to store each chunk as an object of its own", s, repo.MaxPackSize>>20)
	}
	*f.size = n << 20
	if n == 0 {
		*f.size = -1
	}
	return nil
}

func (f packSizeFlag) Type() string { return "MiB" }

// lockPolicy reads --object-lock and --retention.
func lockPolicy(mode, retention string) (*repo.LockPolicy, error) {
	if mode == "" || retention == "" {
		return nil, fmt.Errorf("give both --object-lock governance|compliance and --retention DURATION (such as 30d)")
	}
	d, err := parseDays(retention)
	if err != nil {
		return nil, fmt.Errorf("--retention %q: %w", retention, err)
	}
	p := &repo.LockPolicy{Mode: strings.ToLower(mode), RetentionSeconds: int64(d / time.Second)}
	return p, p.Validate()
}

// parseDays reads a positive duration ("30d", "720h").
func parseDays(s string) (time.Duration, error) {
	d, err := duration.Parse(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("give a positive duration, such as 30d or 720h")
	}
	return d, nil
}

// durationVar defines a duration flag read by core/duration, so that days
// and weeks ("7d", "2w") work in every flag as in the config file.
func durationVar(f *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	f.Var((*duration.Duration)(p), name, usage)
}

func backupCmd(g *globals) *cobra.Command {
	var req service.BackupRequest
	cmd := &cobra.Command{
		Use:   "backup GRAPH... | --all",
		Short: "Snapshot graphs into the repository",
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			if req.All == (len(args) > 0) {
				return errors.New("name the graphs to back up, or give --all")
			}
			req.Graphs = args
			bar := newProgress(g.json)
			update := bar.update("backup") // one line for the graphs backed up together
			req.Progress = func(string) func(backup.Progress) { return update }
			report, err := svc.Backup(ctx, req)
			bar.done()
			if report == nil {
				return err
			}
			for _, name := range report.Skipped {
				root := g.graphsRootDir()
				fmt.Fprintf(os.Stderr, "graphkeep: warning: skipping folder %q in %s: not a valid graph id (letters, digits, _ and -, at most 64); back it up with --graph ID=%s\n",
					name, root, filepath.Join(root, name))
			}
			for _, ws := range g.skippedWorkspaces {
				fmt.Fprintf(os.Stderr, "graphkeep: warning: skipping PostgreSQL workspace %q: not a valid graph id (letters, digits, _ and -, at most 64); back it up with --graph ID=%s\n",
					ws, g.workspaceSpec(ws))
			}
			if g.json {
				if perr := printJSON(os.Stdout, report.Results); perr != nil {
					return perr
				}
			} else {
				printBackups(report)
			}
			if report.ReplicationError != "" {
				fmt.Fprintf(os.Stderr, "graphkeep: warning: replication after backup: %s; the backup succeeded, 'graphkeep replicate' (or replicate --watch) will catch up\n", report.ReplicationError)
			}
			if err != nil && g.json {
				return errReported
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&req.All, "all", false, "back up every known graph")
	cmd.Flags().BoolVar(&req.Replicate, "replicate", false, "then replicate to every target (a target outage is a warning, never a failed backup)")
	return cmd
}

func printBackups(report *service.BackupReport) {
	for _, res := range report.Results {
		if res.Error != "" {
			fmt.Fprintf(os.Stderr, "graphkeep: backup %s: %s\n", res.Graph, res.Error)
			continue
		}
		flag := "; " + consistencyLine(res.Consistency)
		if res.Flagged {
			flag = "  FLAGGED: " + strings.Join(res.LightRAG.Problems, "; ")
		}
		what := fmt.Sprintf("%d files", res.Files)
		switch {
		case res.Source == "postgres":
			what = fmt.Sprintf("%d tables", res.Tables)
		case res.Tables > 0:
			what = fmt.Sprintf("%d tables and %d files", res.Tables, res.Files)
		}
		fmt.Printf("%s: snapshot %s  %s, %s; new %s, stored %s; %d unchanged files reused; %s%s\n",
			res.Graph, res.ID, what, humanBytes(res.SizeBytes), humanBytes(res.AddedBytes),
			humanBytes(res.StoredBytes), res.ReusedFiles, (time.Duration(res.DurationMS) * time.Millisecond), flag)
		for _, st := range res.Missing {
			fmt.Fprintf(os.Stderr, "graphkeep: warning: %s: the snapshot lacks the workspace's %s store: %s\n", res.Graph, strings.ReplaceAll(st.Kind, "_", " "), st.Detail)
		}
	}
	for _, res := range report.Replication {
		printResult(res)
	}
}

func snapshotsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots [GRAPH]",
		Short: "List snapshots",
		Args:  cobra.MaximumNArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			graph := ""
			if len(args) == 1 {
				graph = args[0]
			}
			lines, err := svc.Snapshots(ctx, graph)
			if err != nil {
				return err
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
					st = &repo.GraphCounts{}
				}
				files := fmt.Sprint(l.Files)
				switch {
				case l.Tables > 0 && l.Files == 0:
					files = fmt.Sprintf("%d tables", l.Tables)
				case l.Tables > 0:
					files = fmt.Sprintf("%d + %d tables", l.Files, l.Tables)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", l.Graph, l.ID, l.Time.Local().Format("2006-01-02 15:04:05"),
					humanBytes(l.SizeBytes), files, st.Nodes, st.Edges, st.Docs, st.Chunks, st.VectorRows, snapshotStatus(l))
			}
			return tw.Flush()
		}),
	}
}

func restoreCmd(g *globals) *cobra.Command {
	var to, toWorkspace string
	var all, allowFlagged, force, outsideLinks, dryRun bool
	cmd := &cobra.Command{
		Use:   "restore GRAPH SNAPSHOT|latest | --all",
		Short: "Restore a snapshot, verified, swapped into place atomically",
		Long: `Restore writes the snapshot into a temporary directory beside the destination,
checks every file's SHA-256 and the LightRAG counts, then swaps it into place by
rename (one atomic exchange where the kernel offers it). The directory that was
there is kept beside it as .graphkeep-previous-<name>-<time>, one per restore,
until 'graphkeep previous remove DIR --all' deletes it. A restore killed mid-way is
finished (or undone) by the next restore or backup of that directory, and what it
left behind is removed. A --to directory that holds files but no LightRAG data is
refused unless --force, and so is a directory that holds another graph's data (another
graph's directory, or a copy of it by its snapshots' files). The destination is the
graph's directory, or --to DIR; a new directory of the graphs root becomes a graph of its
own, and restore says so. With --all, every
graph's latest snapshot is restored (into --to DIR/GRAPH, or the graphs root).

A graph in PostgreSQL is restored in one transaction: every LightRAG table's rows
of the workspace are deleted and the snapshot's loaded, counted and checked, then
committed; readers see the old state or the new, never a mix, and a failure or a
crash changes nothing. Its current state is first kept as a snapshot (the undo
snapshot, named in the output); the restore is refused while LightRAG's pipeline is
busy. --to-workspace NAME clones it into another workspace, --to postgres://...
into another database (missing tables are created from the snapshot's definitions),
and --dry-run prints per table how many rows would be added, removed and changed.

"latest" is the newest snapshot that is neither flagged (a file did not parse)
nor mid-ingestion (LightRAG's stores disagreed when it was cut); restore says
which newer ones it passed over. Such a snapshot is restored only by its id
with --allow-flagged.`,
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			if all != (len(args) == 0) || (!all && len(args) != 2) {
				return errors.New("give GRAPH and SNAPSHOT (or latest), or --all")
			}
			req := service.RestoreRequest{All: all, To: to, AllowNotGood: allowFlagged, Force: force, AllowOutsideLinks: outsideLinks,
				ToWorkspace: toWorkspace, DryRun: dryRun}
			if !all {
				req.Graph, req.Snapshot = args[0], args[1]
			}
			plan, err := svc.PrepareRestore(ctx, req)
			if err != nil {
				return err
			}
			if !g.json {
				for _, it := range plan.Items {
					for _, p := range it.Choice.Passed {
						fmt.Printf("%s: passed over snapshot %s, %s\n", it.Choice.Ref.Graph, p.ID, p.Reason)
					}
				}
			}
			bar := newProgress(g.json)
			results, err := svc.RunRestore(ctx, plan, func(string) func(backup.Progress) { return bar.update("restore") })
			bar.done()
			if !g.json {
				for _, res := range results {
					printRestore(res)
				}
			}
			if err != nil {
				return err
			}
			if g.json {
				if all {
					return printJSON(os.Stdout, results)
				}
				return printJSON(os.Stdout, results[0])
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&to, "to", "", "restore into this directory instead of the graph's own (with --all: DIR/GRAPH); a graph in PostgreSQL: into this database, postgres://USER@HOST/DB")
	cmd.Flags().StringVar(&toWorkspace, "to-workspace", "", "a graph in PostgreSQL: restore into this workspace (of its database, or of --to) instead of its own")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "a graph in PostgreSQL: print per table how many rows the restore would add, remove and change, and change nothing")
	cmd.Flags().BoolVar(&all, "all", false, "restore every graph's latest snapshot")
	cmd.Flags().BoolVar(&outsideLinks, "allow-outside-links", false, "restore symlinks that point outside the graph directory (LightRAG never writes links; refused without this)")
	cmd.Flags().BoolVar(&allowFlagged, "allow-flagged", false, "restore a snapshot that is flagged or mid-ingestion (named by its id)")
	cmd.Flags().BoolVar(&force, "force", false, "restore into a directory that holds files but no LightRAG data, or another graph's (it is kept as an undo copy)")
	return cmd
}

func printRestore(res *backup.RestoreResult) {
	if pg := res.Postgres; pg != nil {
		printPostgresRestore(res, pg)
		return
	}
	fmt.Printf("restored %s/%s into %s: %d files, %s, %v, verified\n", res.Snapshot.Graph, res.Snapshot.ID, res.Dest, res.Files,
		humanBytes(res.Bytes), res.LightRAG)
	if res.Recovered != "" {
		fmt.Printf("%s\n", res.Recovered)
	}
	if res.Resume != nil {
		fmt.Printf("the snapshot is resumable: when it starts, LightRAG processes again %s\n", res.Resume)
	}
	if res.NewGraph != "" {
		fmt.Printf("%s is a directory of the graphs root, so it is now graph %s: backups, listings and checkpoints take it in (restore into a directory outside the graphs root to look at a snapshot without that)\n",
			res.Dest, res.NewGraph)
	}
	if res.Previous != "" {
		fmt.Printf("the previous directory is kept at %s ('graphkeep previous list %s' lists the undo copies, 'graphkeep previous remove %s --all' deletes them)\n",
			res.Previous, res.Dest, res.Dest)
	}
}

func printPostgresRestore(res *backup.RestoreResult, pg *backup.PostgresResult) {
	if pg.DryRun {
		fmt.Printf("dry run: restoring %s/%s into %s would change, per table:\n", res.Snapshot.Graph, res.Snapshot.ID, res.Dest)
		for _, d := range pg.Diff {
			fmt.Printf("  %-40s %8d added %8d removed %8d changed %8d unchanged\n", d.Table, d.Added, d.Removed, d.Changed, d.Same)
		}
		for _, t := range pg.Created {
			fmt.Printf("  table %s does not exist there: it would be created\n", t)
		}
		fmt.Println("nothing was changed")
		return
	}
	fmt.Printf("restored %s/%s into %s: %d tables, %d rows, %s, %v, verified, committed in one transaction\n",
		res.Snapshot.Graph, res.Snapshot.ID, res.Dest, len(pg.Tables), pg.Rows, humanBytes(res.Bytes), res.LightRAG)
	for _, t := range pg.Created {
		fmt.Printf("created table %s\n", t)
	}
	if res.Files > 0 {
		fmt.Printf("and %d files into the graph's directory\n", res.Files)
	}
	if res.Undo != "" {
		fmt.Printf("the state it replaced is kept as snapshot %s/%s (restore it by its id to undo)\n", res.UndoGraph, res.Undo)
	}
	if res.Resume != nil {
		fmt.Printf("the snapshot is resumable: when it starts, LightRAG processes again %s\n", res.Resume)
	}
	if res.Previous != "" {
		fmt.Printf("the previous directory is kept at %s\n", res.Previous)
	}
}

// consistencyLine says in a few words how a snapshot was cut.
func consistencyLine(c *repo.Consistency) string {
	switch {
	case c == nil:
		return "consistency not recorded"
	case c.MidIngestion:
		return fmt.Sprintf("MID-INGESTION (%s): %s", c.Reason, strings.Join(c.Broken(), "; "))
	}
	attempts := "1 attempt"
	if c.Attempts != 1 {
		attempts = fmt.Sprintf("%d attempts", c.Attempts)
	}
	state := "consistent"
	switch {
	case c.Resumable:
		state = "RESUMABLE (LightRAG takes up again " + c.Resume.String() + ")"
	case !c.Consistent && c.Reason != "":
		state = strings.ToUpper(c.Reason[:1]) + c.Reason[1:]
	}
	return fmt.Sprintf("%s, last written %s before the cut, waited %s, cut in %s (%s)", state,
		duration.Age(time.Duration(c.QuietMS)*time.Millisecond), duration.Age(time.Duration(c.WaitedMS)*time.Millisecond),
		duration.Age(time.Duration(c.CutMS)*time.Millisecond), attempts)
}

// snapshotStatus is the STATUS column of snapshots.
func snapshotStatus(l repo.Summary) string {
	switch {
	case l.Flagged:
		return "FLAGGED: " + strings.Join(l.LightRAG.Problems, "; ")
	case l.MidIngestion:
		return "MID-INGESTION: " + strings.Join(l.Consistency.Broken(), "; ")
	case l.State == repo.StatePartial:
		var kinds []string
		for _, m := range l.Missing {
			kinds = append(kinds, strings.ReplaceAll(m.Kind, "_", " "))
		}
		return "PARTIAL: the workspace keeps its " + strings.Join(kinds, ", ") + " store elsewhere" + undoNote(l)
	case l.Resumable:
		return "resumable: LightRAG resumes " + l.Consistency.Resume.String() + undoNote(l)
	case l.Consistency != nil:
		return "consistent" + undoNote(l)
	}
	return "ok"
}

func undoNote(l repo.Summary) string {
	if l.UndoOf == "" {
		return ""
	}
	return " (undo copy, taken before restoring " + l.UndoOf + ")"
}

func verifyCmd(g *globals) *cobra.Command {
	var readData bool
	cmd := &cobra.Command{
		Use:   "verify [GRAPH [SNAPSHOT]]",
		Short: "Check that every chunk of the snapshots exists (and, with --read-data, is intact)",
		Args:  cobra.MaximumNArgs(2),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			req := service.VerifyRequest{ReadData: readData}
			if len(args) > 0 {
				req.Graph = args[0]
			}
			if len(args) > 1 {
				req.Snapshot = args[1]
			}
			res, err := svc.Verify(ctx, req)
			if res == nil {
				return err
			}
			if g.json {
				if perr := printJSON(os.Stdout, res); perr != nil {
					return perr
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
					where := "object " + d.Object
					if d.Length > 0 {
						where = fmt.Sprintf("pack %s, bytes %d-%d", d.Object, d.Offset, d.Offset+int64(d.Length)-1)
					}
					fmt.Printf("DAMAGED chunk %s (in %s): %s; used by %s\n", d.Chunk, where, d.Problem, strings.Join(d.UsedBy, ", "))
				}
				for _, u := range res.Unsafe {
					fmt.Printf("UNSAFE %s %s: %s\n", u.Snapshot, u.Path, u.Problem)
				}
			}
			if err == nil {
				return nil
			}
			if !g.json {
				if len(res.Damaged) > 0 {
					fmt.Fprintf(os.Stderr, "graphkeep: %d of %d chunks damaged; %s\n", len(res.Damaged), res.Chunks, remedyHint(problem.RestoreFromReplica, ""))
				}
				if len(res.Unsafe) > 0 {
					fmt.Fprintf(os.Stderr, "graphkeep: %d unsafe manifest entries: %s\n", len(res.Unsafe), remedyHint(problem.RemoveDamaged, ""))
				}
			}
			return errReported
		}),
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "download, decode and hash every chunk")
	return cmd
}
