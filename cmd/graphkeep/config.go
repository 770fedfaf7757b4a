package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/api"
	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/core/service"
	"github.com/graphkeep/graphkeep/providers"
)

// fileConfig is the YAML configuration file. Unknown keys are refused.
type fileConfig struct {
	Repo         string            `yaml:"repo"`
	GraphsRoot   string            `yaml:"graphs_root"`
	Graphs       map[string]string `yaml:"graphs"`
	PasswordFile string            `yaml:"password_file"`
	// PasswordCommand prints the password on its standard output.
	PasswordCommand string `yaml:"password_command"`
	CacheDir        string `yaml:"cache_dir"`
	// KeyCache is how long the key derived from the password stays in the
	// user's kernel keyring (Linux) for later runs; 0 keeps none.
	KeyCache  *time.Duration   `yaml:"key_cache"`
	Retention retention.Policy `yaml:"retention"`
	// Consistency tunes how a backup waits for a quiet, consistent moment.
	Consistency consistencyConfig `yaml:"consistency"`
	// LightRAG names the LightRAG servers writing the graphs.
	LightRAG lightragConfig `yaml:"lightrag"`
	// Postgres is a database whose LightRAG workspaces are graphs.
	Postgres postgresConfig `yaml:"postgres"`
	// BackupInterval is how often graphs should be backed up (health calls
	// a graph stale after two intervals).
	BackupInterval time.Duration `yaml:"backup_interval"`
	// Server, Schedule and AutoFailover configure `graphkeep serve`.
	Server       serverConfig         `yaml:"server"`
	Schedule     api.Schedule         `yaml:"schedule"`
	AutoFailover *recovery.AutoPolicy `yaml:"auto_failover"`
}

type consistencyConfig struct {
	QuietWindow *time.Duration `yaml:"quiet_window"`
	MaxWait     time.Duration  `yaml:"max_wait"`
}

// lightragConfig: url for every graph, or per graph.
type lightragConfig struct {
	URL        string                   `yaml:"url"`
	APIKeyFile string                   `yaml:"api_key_file"`
	Graphs     map[string]lightragGraph `yaml:"graphs"`
}

// postgresConfig: every LightRAG workspace of the database at url is a
// graph (libpq conventions: the password from PGPASSWORD or PGPASSFILE
// rather than the URL).
type postgresConfig struct {
	URL string `yaml:"url"`
}

type lightragGraph struct {
	URL       string `yaml:"url"`
	Workspace string `yaml:"workspace"`
}

// globals are the flags every command takes.
type globals struct {
	repo            string
	graphsRoot      string
	graphs          []string // ID=DIR
	configFile      string
	passwordFile    string
	passwordCommand string
	cacheDir        string
	json            bool
	quietWindow     string
	maxWait         string
	lightragURL     string
	postgresURL     string

	// skippedWorkspaces are PostgreSQL workspaces whose names are no
	// valid graph id (sources fills it).
	skippedWorkspaces []string
	// The workspaces last listed (listWorkspaces).
	workspacesMu  sync.Mutex
	workspaces    []string
	workspacesURL string
	workspacesAt  time.Time

	file fileConfig
	svc  *service.Service
	// restoreRoots confine API restores (serve); embedded marks the
	// zero-configuration server.
	restoreRoots []string
	embedded     bool
}

// load reads the config file, if any. Flags win over the environment, which
// wins over the file.
func (g *globals) load() error {
	path := firstNonEmpty(g.configFile, os.Getenv("GRAPHKEEP_CONFIG"))
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return parseConfig(path, data, &g.file)
}

// repoURL is the repository URL as configured (a failover recorded on
// this machine may redirect it; the service follows it).
func (g *globals) repoURL() (string, error) {
	u := firstNonEmpty(g.repo, os.Getenv("GRAPHKEEP_REPO"), g.file.Repo)
	if u == "" {
		return "", service.ErrNoRepository
	}
	return u, nil
}

// password: --password-file or --password-command, then GRAPHKEEP_PASSWORD,
// GRAPHKEEP_PASSWORD_COMMAND, GRAPHKEEP_PASSWORD_FILE, then password_command
// or password_file in the config file (flags win over the environment,
// which wins over the file).
func (g *globals) password() (string, error) {
	if g.passwordFile != "" && g.passwordCommand != "" {
		return "", fmt.Errorf("give the password one way: --password-file or --password-command, not both")
	}
	switch {
	case g.passwordFile != "":
		return readSecretFile("password file", g.passwordFile)
	case g.passwordCommand != "":
		return runSecretCommand("password command", g.passwordCommand)
	}
	if p := os.Getenv("GRAPHKEEP_PASSWORD"); p != "" {
		return p, nil
	}
	if c := os.Getenv("GRAPHKEEP_PASSWORD_COMMAND"); c != "" {
		return runSecretCommand("GRAPHKEEP_PASSWORD_COMMAND", c)
	}
	if f := os.Getenv("GRAPHKEEP_PASSWORD_FILE"); f != "" {
		return readSecretFile("password file", f)
	}
	if g.file.PasswordCommand != "" {
		return runSecretCommand("password_command", g.file.PasswordCommand)
	}
	if g.file.PasswordFile != "" {
		return readSecretFile("password file", g.file.PasswordFile)
	}
	return "", nil
}

// readSecretFile reads a password from path (one trailing newline dropped).
func readSecretFile(what, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	p := strings.TrimRight(string(data), "\r\n")
	if p == "" {
		return "", fmt.Errorf("%s %s is empty", what, path)
	}
	return p, nil
}

// runSecretCommand runs command with sh -c and takes its standard output
// (one trailing newline dropped) as the password, as restic does. Its
// standard error goes to ours, so a prompt or an error shows.
func runSecretCommand(what, command string) (string, error) {
	cmd := exec.Command("sh", "-c", command)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %q failed: %w", what, command, err)
	}
	p := strings.TrimRight(string(out), "\r\n")
	if p == "" {
		return "", fmt.Errorf("%s %q printed no password", what, command)
	}
	return p, nil
}

// cache is the manifest cache directory: --cache-dir, GRAPHKEEP_CACHE_DIR,
// cache_dir in the config file, else the user cache dir.
func (g *globals) cache() string {
	return firstNonEmpty(g.cacheDir, os.Getenv("GRAPHKEEP_CACHE_DIR"), g.file.CacheDir)
}

// defaultKeyCache: a command run within ten minutes of another does not
// derive the key again (a tenth of a second of CPU and 32 MiB each time).
const defaultKeyCache = 10 * time.Minute

// keyCache is where derived keys are kept between runs:
// GRAPHKEEP_KEY_CACHE, else key_cache, else ten minutes ("0" or "off":
// nowhere).
func (g *globals) keyCache() (repo.KeyCache, error) {
	ttl := defaultKeyCache
	if g.file.KeyCache != nil {
		ttl = *g.file.KeyCache
	}
	if v := os.Getenv("GRAPHKEEP_KEY_CACHE"); v != "" {
		d, err := duration.Parse(v)
		switch {
		case v == "0" || v == "off":
			ttl = 0
		case err != nil || d < 0:
			return nil, fmt.Errorf("GRAPHKEEP_KEY_CACHE=%q: want how long derived keys stay cached, like 10m, or 0 or off for never", v)
		default:
			ttl = d
		}
	}
	if ttl < 0 {
		return nil, fmt.Errorf("key_cache: %s is negative: want how long derived keys stay cached, like 10m, or 0 for never", ttl)
	}
	return repo.KernelKeyring(ttl), nil
}

// stateDir records failovers and the targets last seen:
// GRAPHKEEP_STATE_DIR, else <user config dir>/graphkeep.
func stateDir() string {
	if d := os.Getenv("GRAPHKEEP_STATE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "graphkeep")
	}
	return filepath.Join(os.TempDir(), "graphkeep-state")
}

// openStore opens a repository's or a target's storage.
func openStore(ctx context.Context, url string) (blob.Store, error) {
	s, err := providers.Open(ctx, url, providers.Options{})
	if err == nil {
		openedMu.Lock()
		opened = append(opened, s)
		openedMu.Unlock()
	}
	return s, err
}

var (
	openedMu sync.Mutex
	opened   []blob.Store // every store this run opened, for writeRequestStats
)

// writeRequestStats writes, for GRAPHKEEP_REQUEST_STATS=FILE, the requests
// this run sent to each store it opened, by location (JSON): what the
// benchmarks report as a command's requests.
func writeRequestStats(path string) error {
	openedMu.Lock()
	defer openedMu.Unlock()
	out := map[string]blob.RequestStats{}
	for _, s := range opened {
		if st, ok := blob.StatsOf(s); ok {
			sum := out[s.Location()]
			sum.Puts += st.Puts
			sum.Gets += st.Gets
			sum.Stats += st.Stats
			sum.Lists += st.Lists
			sum.Deletes += st.Deletes
			sum.Copies += st.Copies
			sum.BytesUp += st.BytesUp
			sum.BytesDown += st.BytesDown
			out[s.Location()] = sum
		}
	}
	data, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("GRAPHKEEP_REQUEST_STATS: %w", err)
	}
	return nil
}

// service builds the application layer from the flags, the environment and
// the config file, once per run.
func (g *globals) service() (*service.Service, error) {
	if g.svc != nil {
		return g.svc, nil
	}
	pw, err := g.password()
	if err != nil {
		return nil, err
	}
	bopts, err := g.backupOptions()
	if err != nil {
		return nil, err
	}
	url, _ := g.repoURL() // none: the use cases that need one say so
	var graphRetention map[string]retention.Policy
	for id, gs := range g.file.Schedule.Graphs {
		if gs.Retention != nil {
			if graphRetention == nil {
				graphRetention = map[string]retention.Policy{}
			}
			graphRetention[id] = *gs.Retention
		}
	}
	sched := service.Schedule{ReplicationInterval: g.file.Schedule.ReplicationInterval,
		CleanupInterval: g.file.Schedule.CleanupInterval, CheckpointInterval: g.file.Schedule.CheckpointInterval}
	for id, gs := range g.file.Schedule.Graphs {
		if gs.BackupInterval > 0 {
			if sched.GraphIntervals == nil {
				sched.GraphIntervals = map[string]time.Duration{}
			}
			sched.GraphIntervals[id] = gs.BackupInterval
		}
	}
	keyCache, err := g.keyCache()
	if err != nil {
		return nil, err
	}
	g.svc = service.New(service.Config{
		Schedule:   sched,
		PrimaryURL: url, Open: openStore, Password: pw, KeyCache: keyCache, CacheDir: g.cache(), StateDir: stateDir(),
		Lease: bopts.Lease, Backup: bopts, Sources: g.sources, GraphsRoot: g.graphsRootDir(),
		BackupInterval: firstDuration(g.file.Schedule.BackupInterval, g.file.BackupInterval),
		Retention:      g.file.Retention, GraphRetention: graphRetention, Redact: providers.Redact, RestoreRoots: g.restoreRoots,
	})
	if url != "" {
		if to, r, err := g.svc.PrimaryURL(); err == nil && r != nil {
			fmt.Fprintf(os.Stderr, "graphkeep: %s failed over to %s at %s; using it\n", providers.Redact(url), providers.Redact(to), r.Time.Format(time.RFC3339))
		}
	}
	return g.svc, nil
}

// run adapts a command body to the service: it builds the service, runs
// the body and closes the repository afterwards.
func (g *globals) run(body func(ctx context.Context, svc *service.Service, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		svc, err := g.service()
		if err != nil {
			return err
		}
		defer svc.Close()
		return body(cmd.Context(), svc, args)
	}
}

// graphsRoot is the configured root, or "".
func (g *globals) graphsRootDir() string {
	return firstNonEmpty(g.graphsRoot, os.Getenv("GRAPHKEEP_GRAPHS_ROOT"), g.file.GraphsRoot)
}

// sources lists the graphs graphkeep knows: those under the graphs root,
// then --graph and config entries (which win on the same id).
func (g *globals) sources() ([]backup.Source, error) {
	byID := map[string]backup.Source{}
	if root := g.graphsRootDir(); root != "" {
		found, err := backup.Discover(root)
		if err != nil {
			return nil, err
		}
		for _, s := range found {
			byID[s.Graph] = s
		}
	}
	if err := g.postgresSources(byID); err != nil {
		return nil, err
	}
	// --graph and config entries: ID=DIR, ID=postgres://...?workspace=W,
	// or both for one id (a graph split between them).
	explicit := map[string][]string{}
	for id, spec := range g.file.Graphs {
		explicit[id] = append(explicit[id], spec)
	}
	for _, spec := range g.graphs {
		id, where, ok := strings.Cut(spec, "=")
		if !ok || where == "" {
			return nil, fmt.Errorf("--graph %q: use --graph ID=DIR or --graph ID=postgres://USER@HOST/DB?workspace=W", spec)
		}
		explicit[id] = append(explicit[id], where)
	}
	for id, wheres := range explicit {
		if err := repo.CheckGraphID(id); err != nil {
			return nil, err
		}
		src := backup.Source{Graph: id}
		for _, where := range wheres {
			if postgres.IsURL(where) {
				loc, err := postgres.ParseURL(where)
				if err != nil {
					return nil, fmt.Errorf("graph %s: %w", id, err)
				}
				if loc.Workspace == "" {
					loc.Workspace = id
				}
				src.Postgres = &loc
				continue
			}
			abs, err := filepath.Abs(where)
			if err != nil {
				return nil, err
			}
			src.Dir = abs
		}
		byID[id] = src
	}
	for id := range g.file.LightRAG.Graphs {
		if _, ok := byID[id]; !ok {
			return nil, fmt.Errorf("config file: lightrag.graphs names graph %q, which is not a known graph", id)
		}
	}
	out := make([]backup.Source, 0, len(byID))
	for _, s := range byID {
		p, err := g.pipeline(s.Graph)
		if err != nil {
			return nil, err
		}
		s.Pipeline = p
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Graph < out[j].Graph })
	return out, nil
}

// postgresSources adds the LightRAG workspaces of the configured database
// (--postgres, GRAPHKEEP_POSTGRES, postgres.url) to byID: a workspace is
// the graph of its name, split with the graphs root's directory of that
// name when there is one (LightRAG keeps the stores it does not keep in
// PostgreSQL in working_dir/workspace).
func (g *globals) postgresSources(byID map[string]backup.Source) error {
	u := firstNonEmpty(g.postgresURL, os.Getenv("GRAPHKEEP_POSTGRES"), g.file.Postgres.URL)
	if u == "" {
		return nil
	}
	loc, err := postgres.ParseURL(u)
	if err != nil {
		return err
	}
	workspaces := []string{loc.Workspace}
	if loc.Workspace == "" {
		if workspaces, err = g.listWorkspaces(loc.URL); err != nil {
			return fmt.Errorf("find the LightRAG workspaces: %w", err)
		}
	}
	var skipped []string
	defer func() {
		g.workspacesMu.Lock()
		g.skippedWorkspaces = skipped
		g.workspacesMu.Unlock()
	}()
	for _, ws := range workspaces {
		if !repo.ValidGraphID(ws) {
			skipped = append(skipped, ws)
			continue
		}
		src := byID[ws]
		src.Graph = ws
		src.Postgres = &postgres.Location{URL: loc.URL, Workspace: ws}
		byID[ws] = src
	}
	return nil
}

// listWorkspaces lists the workspaces of the database at url, at most
// once per workspacesFresh (the server asks for its graphs on many
// requests).
func (g *globals) listWorkspaces(url string) ([]string, error) {
	g.workspacesMu.Lock()
	defer g.workspacesMu.Unlock()
	if g.workspacesURL == url && time.Since(g.workspacesAt) < workspacesFresh {
		return g.workspaces, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, err := postgres.ListWorkspaces(ctx, url)
	if err != nil {
		return nil, err
	}
	g.workspaces, g.workspacesURL, g.workspacesAt = ws, url, time.Now()
	return ws, nil
}

// workspacesFresh is how long a list of PostgreSQL workspaces is used.
const workspacesFresh = 5 * time.Second

// workspaceSpec is the --graph value naming workspace ws of the
// configured database.
func (g *globals) workspaceSpec(ws string) string {
	return postgres.WorkspaceURL(firstNonEmpty(g.postgresURL, os.Getenv("GRAPHKEEP_POSTGRES"), g.file.Postgres.URL), ws)
}

// leaseOptions reads GRAPHKEEP_LEASE_TTL and GRAPHKEEP_LEASE_WAIT
// (durations such as 2m): how long a dead process's lease keeps blocking
// others, and how long to wait for conflicting work.
func leaseOptions() (repo.LeaseOptions, error) {
	var o repo.LeaseOptions
	for _, v := range []struct {
		env string
		dst *time.Duration
	}{{"GRAPHKEEP_LEASE_TTL", &o.TTL}, {"GRAPHKEEP_LEASE_WAIT", &o.Wait}} {
		if s := os.Getenv(v.env); s != "" {
			d, err := duration.Parse(s)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("%s=%q is not a positive duration like 2m", v.env, s)
			}
			*v.dst = d
		}
	}
	if o.TTL > 0 && o.TTL < 10*time.Second {
		o.Skew, o.Poll = time.Second, 200*time.Millisecond
	}
	return o, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// pipeline is the LightRAG server writing graph, or nil: --lightrag-url
// (env GRAPHKEEP_LIGHTRAG_URL) for every graph, else the config file's
// lightrag.graphs entry, else its lightrag.url. The API key comes from
// GRAPHKEEP_LIGHTRAG_API_KEY or lightrag.api_key_file.
func (g *globals) pipeline(graph string) (*lightrag.Pipeline, error) {
	per := g.file.LightRAG.Graphs[graph]
	u := firstNonEmpty(g.lightragURL, os.Getenv("GRAPHKEEP_LIGHTRAG_URL"), per.URL, g.file.LightRAG.URL)
	if u == "" {
		return nil, nil
	}
	if err := lightrag.CheckURL(u); err != nil {
		return nil, err
	}
	key := os.Getenv("GRAPHKEEP_LIGHTRAG_API_KEY")
	if key == "" && g.file.LightRAG.APIKeyFile != "" {
		data, err := os.ReadFile(g.file.LightRAG.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("lightrag.api_key_file: %w", err)
		}
		key = strings.TrimSpace(string(data))
	}
	return &lightrag.Pipeline{URL: u, APIKey: key, Workspace: per.Workspace}, nil
}

// backupOptions are the settings every backup takes: the quiet window and
// maximum wait (flags, then GRAPHKEEP_QUIET_WINDOW / GRAPHKEEP_MAX_WAIT,
// then the config file's consistency section) and the lease.
func (g *globals) backupOptions() (backup.Options, error) {
	var o backup.Options
	lease, err := leaseOptions()
	if err != nil {
		return o, err
	}
	o.Lease = lease
	quiet := firstNonEmpty(g.quietWindow, os.Getenv("GRAPHKEEP_QUIET_WINDOW"))
	switch {
	case quiet != "":
		d, err := duration.Parse(quiet)
		if err != nil || d < 0 {
			return o, fmt.Errorf("quiet window %q is not a duration like 2s (0 cuts at once)", quiet)
		}
		o.Quiet = d
	case g.file.Consistency.QuietWindow != nil:
		if *g.file.Consistency.QuietWindow < 0 {
			return o, errors.New("config file: consistency.quiet_window must not be negative (0 cuts at once)")
		}
		o.Quiet = *g.file.Consistency.QuietWindow
	default:
		quiet = "flush" // none given: cut when no flush is in progress (backup.Options.Quiet zero)
	}
	if quiet != "flush" && o.Quiet == 0 {
		o.Quiet = -1 // a window of 0 given: cut at once (backup.Options: negative)
	}
	if wait := firstNonEmpty(g.maxWait, os.Getenv("GRAPHKEEP_MAX_WAIT")); wait != "" {
		d, err := duration.Parse(wait)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("maximum wait %q is not a positive duration like 30s", wait)
		}
		o.MaxWait = d
	} else if g.file.Consistency.MaxWait != 0 {
		if g.file.Consistency.MaxWait < 0 {
			return o, errors.New("config file: consistency.max_wait must be positive")
		}
		o.MaxWait = g.file.Consistency.MaxWait
	}
	return o, nil
}
