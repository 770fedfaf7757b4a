package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/graphkeep/graphkeep/api"
	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/providers"
)

// fileConfig is the YAML configuration file. Unknown keys are refused.
type fileConfig struct {
	Repo         string            `yaml:"repo"`
	GraphsRoot   string            `yaml:"graphs_root"`
	Graphs       map[string]string `yaml:"graphs"`
	PasswordFile string            `yaml:"password_file"`
	CacheDir     string            `yaml:"cache_dir"`
	Retention    retention.Policy  `yaml:"retention"`
	// Consistency tunes how a backup waits for a quiet, consistent moment.
	Consistency consistencyConfig `yaml:"consistency"`
	// LightRAG names the LightRAG servers writing the graphs.
	LightRAG lightragConfig `yaml:"lightrag"`
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

type lightragGraph struct {
	URL       string `yaml:"url"`
	Workspace string `yaml:"workspace"`
}

// globals are the flags every command takes.
type globals struct {
	repo         string
	graphsRoot   string
	graphs       []string // ID=DIR
	configFile   string
	passwordFile string
	cacheDir     string
	json         bool
	quietWindow  string
	maxWait      string
	lightragURL  string

	file          fileConfig
	redirectNoted bool
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
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&g.file); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %v", path, err)
	}
	return nil
}

func (g *globals) repoURL() (string, error) {
	u := firstNonEmpty(g.repo, os.Getenv("GRAPHKEEP_REPO"), g.file.Repo)
	if u == "" {
		return "", errors.New("no repository: give --repo URL, set GRAPHKEEP_REPO, or set repo: in the config file")
	}
	// A failover recorded on this machine moves the primary.
	to, r, err := recovery.Resolve(recovery.StateDir(), u)
	if err != nil {
		return "", err
	}
	if r != nil && !g.redirectNoted {
		g.redirectNoted = true
		fmt.Fprintf(os.Stderr, "graphkeep: %s failed over to %s at %s; using it\n", providers.Redact(u), providers.Redact(to), r.Time.Format(time.RFC3339))
	}
	return to, nil
}

// password: --password-file, then GRAPHKEEP_PASSWORD, then
// GRAPHKEEP_PASSWORD_FILE, then password_file in the config file (flags
// win over the environment, which wins over the file).
func (g *globals) password() (string, error) {
	path := g.passwordFile
	if path == "" {
		if p := os.Getenv("GRAPHKEEP_PASSWORD"); p != "" {
			return p, nil
		}
		path = firstNonEmpty(os.Getenv("GRAPHKEEP_PASSWORD_FILE"), g.file.PasswordFile)
	}
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	p := strings.TrimRight(string(data), "\r\n")
	if p == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return p, nil
}

func (g *globals) cache() string {
	return firstNonEmpty(g.cacheDir, os.Getenv("GRAPHKEEP_CACHE_DIR"), g.file.CacheDir)
}

// openStore opens the repository's storage.
func (g *globals) openStore(ctx context.Context) (blob.Store, error) {
	u, err := g.repoURL()
	if err != nil {
		return nil, err
	}
	s, err := providers.Open(ctx, u, providers.Options{})
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("%w\n(to create a new repository there, run 'graphkeep init'; if the primary was lost, 'graphkeep failover --target ID' promotes a replica)", err)
	}
	return s, err
}

// openRepo opens the repository.
func (g *globals) openRepo(ctx context.Context) (*repo.Repository, error) {
	store, err := g.openStore(ctx)
	if err != nil {
		return nil, err
	}
	pw, err := g.password()
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, store, repo.OpenOptions{Password: pw, CacheDir: g.cache()})
	if err != nil {
		_ = store.Close()
		return nil, primaryHint(err)
	}
	return r, nil
}

// primaryHint says what helps when the primary repository cannot be
// opened.
func primaryHint(err error) error {
	switch {
	case errors.Is(err, repo.ErrConfigLost):
		return fmt.Errorf("%w\n(never 'graphkeep init' here: copy graphkeep.repo from a replica (any target of this repository holds the same one) into the repository, or make a replica the primary with 'graphkeep failover --target ID')", err)
	case errors.Is(err, repo.ErrNotARepository):
		return fmt.Errorf("%w\n(check --repo / GRAPHKEEP_REPO; to create a repository here, run 'graphkeep init'; for a local folder that does not exist yet, create it or add ?create=true; if the primary was lost, 'graphkeep failover --target ID' promotes a replica)", err)
	}
	return err
}

// targetHint says what helps when a target's repository cannot be opened.
func targetHint(id string, err error) error {
	switch {
	case errors.Is(err, repo.ErrNotARepository):
		return fmt.Errorf("target %s: %w\n(a target is filled by replication, never by 'graphkeep init': 'graphkeep replicate --target %s' copies the repository there)", id, err, id)
	case errors.Is(err, repo.ErrConfigLost):
		return fmt.Errorf("target %s: %w\n(copy graphkeep.repo from the primary or another replica into it, then 'graphkeep replicate --target %s')", id, err, id)
	}
	return fmt.Errorf("target %s: %w", id, err)
}

// withRepo adapts a command body that needs the open repository: it opens
// it with the command's context and closes it afterwards.
func (g *globals) withRepo(run func(ctx context.Context, r *repo.Repository, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		r, err := g.openRepo(ctx)
		if err != nil {
			return err
		}
		defer r.Store().Close()
		return run(ctx, r, args)
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
	explicit := map[string]string{}
	for id, dir := range g.file.Graphs {
		explicit[id] = dir
	}
	for _, spec := range g.graphs {
		id, dir, ok := strings.Cut(spec, "=")
		if !ok || dir == "" {
			return nil, fmt.Errorf("--graph %q: use --graph ID=DIR", spec)
		}
		explicit[id] = dir
	}
	for id, dir := range explicit {
		if err := repo.CheckGraphID(id); err != nil {
			return nil, err
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		byID[id] = backup.Source{Graph: id, Dir: abs}
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

// source finds one graph by id.
func (g *globals) source(id string) (backup.Source, error) {
	if err := repo.CheckGraphID(id); err != nil {
		return backup.Source{}, err
	}
	all, err := g.sources()
	if err != nil {
		return backup.Source{}, err
	}
	for _, s := range all {
		if s.Graph == id {
			return s, nil
		}
	}
	return backup.Source{}, fmt.Errorf("graph %q is unknown: %s", id, knownGraphs(all, g.graphsRootDir()))
}

func knownGraphs(all []backup.Source, root string) string {
	if len(all) == 0 {
		if root == "" {
			return "no graphs are configured; give --graphs-root DIR (LightRAG's working_dir) or --graph ID=DIR"
		}
		return "the graphs root " + root + " holds no graph directories"
	}
	var ids []string
	for _, s := range all {
		ids = append(ids, s.Graph)
	}
	return "known graphs: " + strings.Join(ids, ", ")
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
			d, err := time.ParseDuration(s)
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
		d, err := time.ParseDuration(quiet)
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
		o.Quiet = backup.DefaultQuiet
	}
	if o.Quiet == 0 {
		o.Quiet = -1 // backup.Options: negative means no wait
	}
	if wait := firstNonEmpty(g.maxWait, os.Getenv("GRAPHKEEP_MAX_WAIT")); wait != "" {
		d, err := time.ParseDuration(wait)
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

// checkGraph refuses a graph that is neither configured nor in r.
func (g *globals) checkGraph(ctx context.Context, r *repo.Repository, graph string) error {
	var ids []string
	if sources, err := g.sources(); err == nil {
		for _, s := range sources {
			ids = append(ids, s.Graph)
		}
	}
	return r.CheckGraph(ctx, graph, ids)
}
