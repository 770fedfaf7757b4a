// Command graphkeep backs up, replicates and recovers knowledge-graph
// workspaces (LightRAG working directories) on object storage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/repo"
)

func main() {
	os.Exit(run())
}

func run() int {
	// Keep memory bounded whatever the data size: a soft limit makes the
	// garbage collector work harder before the heap grows past it. GOMEMLIMIT
	// overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
	if path := os.Getenv("GRAPHKEEP_CPU_PROFILE"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "graphkeep:", err)
			return 1
		}
		defer stopProfile()
	}
	if point := os.Getenv("GRAPHKEEP_TEST_KILL_AT"); point != "" {
		// Fault injection for the end-to-end tests: kill -9 this process at
		// a restore's crash point ("moved-aside" exists on the two-rename
		// swap only, so it takes that one), the key cache's or a pack
		// compaction's.
		crash := func(at string) {
			if at == point {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
		backup.InjectFaults(crash, point == "moved-aside")
		repo.InjectFaults(crash)
	}
	if path := os.Getenv("GRAPHKEEP_REQUEST_STATS"); path != "" {
		defer func() {
			if err := writeRequestStats(path); err != nil {
				fmt.Fprintln(os.Stderr, "graphkeep:", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, g := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		switch {
		case errors.Is(err, errReported):
		case g.json:
			// Scripts read one shape on stdout, as from the API.
			_ = printJSON(os.Stdout, map[string]any{"error": map[string]string{"code": errorCode(err), "message": err.Error()}})
		default:
			fmt.Fprintln(os.Stderr, "graphkeep:", explain(err))
		}
		return 1
	}
	return 0
}

// startCPUProfile writes a CPU profile of this run to path, for developers
// measuring where time goes (go tool pprof).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("GRAPHKEEP_CPU_PROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("GRAPHKEEP_CPU_PROFILE: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func newRoot() (*cobra.Command, *globals) {
	g := &globals{}
	root := &cobra.Command{
		Use:   "graphkeep",
		Short: "Backup, replication and recovery for knowledge-graph workspaces",
		Long: `graphkeep backs up LightRAG working directories (one subdirectory per graph)
into a deduplicated, optionally encrypted repository on a local folder, S3/MinIO,
Google Cloud Storage or Azure Blob, and restores them verified and atomically.

Repository URLs: file:///abs/dir, mem://name,
  s3://bucket/prefix?endpoint=...&region=...&use_path_style=true,
  gs://bucket/prefix, azblob://container/prefix`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.load()
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.repo, "repo", "", "repository URL (env GRAPHKEEP_REPO)")
	f.StringVar(&g.graphsRoot, "graphs-root", "", "directory whose subdirectories are graphs: LightRAG's working_dir (env GRAPHKEEP_GRAPHS_ROOT)")
	f.StringArrayVar(&g.graphs, "graph", nil, "a graph outside the root, as ID=DIR or ID=postgres://USER@HOST/DB?workspace=W; both for one ID: a graph split between them (repeatable)")
	f.StringVar(&g.postgresURL, "postgres", "", "PostgreSQL database whose LightRAG workspaces are graphs, as postgres://USER@HOST:PORT/DB (password from PGPASSWORD or ~/.pgpass; env GRAPHKEEP_POSTGRES)")
	f.StringVar(&g.configFile, "config", "", "YAML configuration file (env GRAPHKEEP_CONFIG)")
	f.StringVar(&g.passwordFile, "password-file", "", "file holding the repository password (env GRAPHKEEP_PASSWORD_FILE; or the password itself in GRAPHKEEP_PASSWORD)")
	f.StringVar(&g.passwordCommand, "password-command", "", "command printing the repository password, run with sh -c (env GRAPHKEEP_PASSWORD_COMMAND)")
	f.StringVar(&g.cacheDir, "cache-dir", "", "local manifest cache (env GRAPHKEEP_CACHE_DIR; default: the user cache dir)")
	f.BoolVar(&g.json, "json", false, "print JSON")
	f.StringVar(&g.quietWindow, "quiet-window", "", "wait until a graph has gone unwritten this long (and LightRAG's pipeline is idle) before a backup cuts it (env GRAPHKEEP_QUIET_WINDOW; default: only until no flush is in progress; 0: at once)")
	f.StringVar(&g.maxWait, "max-wait", "", "longest a backup waits for a quiet moment in which LightRAG's stores agree; then it stores the cut marked mid-ingestion (env GRAPHKEEP_MAX_WAIT; default 30s)")
	f.StringVar(&g.lightragURL, "lightrag-url", "", "LightRAG server writing the graphs: backups wait until its pipeline is not busy (env GRAPHKEEP_LIGHTRAG_URL; key in GRAPHKEEP_LIGHTRAG_API_KEY)")

	root.AddCommand(
		initCmd(g), backupCmd(g), watchCmd(g), snapshotsCmd(g), restoreCmd(g), previousCmd(g), verifyCmd(g),
		forgetCmd(g), pruneCmd(g), statsCmd(g), checkCmd(g), fixtureCmd(),
		targetsCmd(g), replicateCmd(g), replicationStatusCmd(g),
		checkpointCmd(g), failoverCmd(g), healthCmd(g), recoveryStatusCmd(g), serveCmd(g), monitoringCmd(), keyCmd(g), leasesCmd(g), undeleteCmd(g), lockCmd(g),
	)
	requireSubcommands(root)
	return root, g
}

// requireSubcommands makes a command that only groups others ("targets",
// "monitoring") refuse a missing or unknown subcommand with an error that
// names the ones it has, instead of printing its help and succeeding.
func requireSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		requireSubcommands(c)
		if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
			continue
		}
		var names []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%s has no subcommand %q: use one of %s", cmd.CommandPath(), args[0], strings.Join(names, ", "))
			}
			return fmt.Errorf("%s needs a subcommand: one of %s (%s --help explains them)", cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
		}
	}
}
