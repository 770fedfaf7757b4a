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
	// BackupInterval is how often graphs should be backed up (health calls
	// a graph stale after two intervals).
	BackupInterval time.Duration `yaml:"backup_interval"`
	// Server, Schedule and AutoFailover configure `graphkeep serve`.
	Server       serverConfig         `yaml:"server"`
	Schedule     api.Schedule         `yaml:"schedule"`
	AutoFailover *recovery.AutoPolicy `yaml:"auto_failover"`
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

func (g *globals) password() (string, error) {
	if p := os.Getenv("GRAPHKEEP_PASSWORD"); p != "" {
		return p, nil
	}
	path := firstNonEmpty(g.passwordFile, os.Getenv("GRAPHKEEP_PASSWORD_FILE"), g.file.PasswordFile)
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
	return providers.Open(ctx, u, providers.Options{})
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
		return nil, err
	}
	return r, nil
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
	out := make([]backup.Source, 0, len(byID))
	for _, s := range byID {
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
