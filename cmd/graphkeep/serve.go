package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/api"
	"github.com/graphkeep/graphkeep/providers"
)

// serverConfig is the server: section of the config file.
type serverConfig struct {
	Listen      string      `yaml:"listen"`
	Tokens      []api.Token `yaml:"tokens"`
	TLSCert     string      `yaml:"tls_cert"`
	TLSKey      string      `yaml:"tls_key"`
	MetricsOpen bool        `yaml:"metrics_open"`
	// AppendOnly refuses every route that takes data away, whatever the
	// token (also --append-only).
	AppendOnly  bool   `yaml:"append_only"`
	RestoreRoot string `yaml:"restore_root"`
	// Jobs: max_running_jobs, max_queued_jobs, kept_jobs.
	Jobs api.JobLimits `yaml:",inline"`
}

func serveCmd(g *globals) *cobra.Command {
	var listen string
	var appendOnly bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the REST API, the scheduler and the metrics endpoint",
		Long: `serve runs graphkeep as a server. With no configuration at all it uses the
embedded default: a file repository under ./.graphkeep/repo (created), graphs
root ./graphs (created), listening on 127.0.0.1:8080 without tokens. Listening on
anything but loopback needs at least one token (GRAPHKEEP_ADMIN_TOKEN,
GRAPHKEEP_BACKUP_TOKEN, GRAPHKEEP_READ_TOKEN, or server.tokens in the config).
Roles: read sees everything; backup also backs up, checkpoints, verifies and
replicates, and never forgets, prunes, restores, removes targets or fails over;
admin does everything. --append-only (server.append_only) refuses forget, cleanup,
target removal and failover whatever the token, and refuses to start with a
scheduled cleanup or automatic failover configured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if appendOnly {
				g.file.Server.AppendOnly = true
			}
			return serve(cmd.Context(), g, listen)
		},
	}
	cmd.Flags().BoolVar(&appendOnly, "append-only", false, "refuse every route that takes data away (forget, cleanup, target removal, failover), whatever the token")
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (env GRAPHKEEP_LISTEN; default 127.0.0.1:8080)")
	return cmd
}

func serve(ctx context.Context, g *globals, listen string) error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	sc := g.file.Server
	listen = firstNonEmpty(listen, os.Getenv("GRAPHKEEP_LISTEN"), sc.Listen, "127.0.0.1:8080")
	tokens, err := serverTokens(sc.Tokens)
	if err != nil {
		return err
	}
	if err := checkExposure(listen, tokens); err != nil {
		return err
	}
	if err := checkAppendOnly(sc.AppendOnly, g.file.Schedule, g.file.AutoFailover != nil); err != nil {
		return err
	}
	// What can fail without writing anything is tried first: a busy port
	// or unreadable TLS files leave no repository or graphs root behind.
	var tlsConfig *tls.Config
	if sc.TLSCert != "" || sc.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey)
		if err != nil {
			return fmt.Errorf("server.tls_cert %q and server.tls_key %q: %w", sc.TLSCert, sc.TLSKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running there? choose another address with --listen or GRAPHKEEP_LISTEN)", listen, err)
	}
	defer ln.Close()
	if err := g.embeddedDefault(ctx, log); err != nil {
		return err
	}
	if sc.RestoreRoot != "" {
		g.restoreRoots = []string{sc.RestoreRoot}
	}
	svc, err := g.service()
	if err != nil {
		return err
	}
	defer svc.Close()
	if g.embedded {
		res, err := svc.EnsureRepository(ctx)
		if err != nil {
			return err
		}
		if res != nil {
			log.Info("created the embedded default repository", "location", res.Location, "encrypted", res.Encrypted)
		}
	}
	if _, err := svc.Primary(ctx); err != nil {
		return err
	}
	location, _, _ := svc.PrimaryURL()
	s := api.New(api.Deps{Service: svc, Tokens: tokens, OpenMetrics: sc.MetricsOpen, AppendOnly: sc.AppendOnly, Jobs: sc.Jobs, Logger: log})
	if sc.AppendOnly {
		log.Info("append-only: forget, cleanup, target removal and failover are refused whatever the token")
	}
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go s.RefreshLoop(bg)
	go api.NewScheduler(s, g.file.Schedule).Run(bg)
	if g.file.Schedule.Continuous {
		go func() {
			if err := s.Watch(bg, g.file.Schedule); err != nil {
				log.Error("continuous protection stopped", "error", err)
			}
		}()
	}
	if ap := g.file.AutoFailover; ap != nil {
		go s.AutoFailover(bg, *ap)
	}

	srv := &http.Server{Addr: listen, Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig}
	log.Info("graphkeep serving", "listen", ln.Addr().String(), "tls", sc.TLSCert != "", "repository", providers.Redact(location),
		"graphs_root", g.graphsRootDir(), "tokens", len(tokens))
	if len(tokens) == 0 {
		log.Warn("no API tokens configured: listening on loopback only, and anyone on this machine can use the API")
	}
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests and jobs (30s at most)")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	stopBackground()
	s.Shutdown(30 * time.Second)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serverTokens merges config tokens with GRAPHKEEP_ADMIN_TOKEN and
// GRAPHKEEP_READ_TOKEN, and refuses weak or malformed ones.
func serverTokens(cfg []api.Token) ([]api.Token, error) {
	tokens := append([]api.Token(nil), cfg...)
	if t := os.Getenv("GRAPHKEEP_ADMIN_TOKEN"); t != "" {
		tokens = append(tokens, api.Token{Name: "env-admin", Token: t, Role: "admin"})
	}
	if t := os.Getenv("GRAPHKEEP_BACKUP_TOKEN"); t != "" {
		tokens = append(tokens, api.Token{Name: "env-backup", Token: t, Role: "backup"})
	}
	if t := os.Getenv("GRAPHKEEP_READ_TOKEN"); t != "" {
		tokens = append(tokens, api.Token{Name: "env-read", Token: t, Role: "read"})
	}
	for i, t := range tokens {
		if t.Role != "admin" && t.Role != "backup" && t.Role != "read" {
			return nil, fmt.Errorf("token %d (%q): role must be admin, backup or read, not %q", i+1, t.Name, t.Role)
		}
		if len(t.Token) < 16 {
			return nil, fmt.Errorf("token %d (%q) is shorter than 16 characters: use a long random string (openssl rand -hex 32)", i+1, t.Name)
		}
	}
	return tokens, nil
}

// checkAppendOnly refuses an append-only server whose own schedule would
// take data away: it would be refused every time, silently.
func checkAppendOnly(appendOnly bool, sched api.Schedule, autoFailover bool) error {
	if !appendOnly {
		return nil
	}
	if sched.CleanupInterval > 0 {
		return fmt.Errorf("append-only server with schedule.cleanup_interval %s: an append-only server never forgets or prunes; remove cleanup_interval and run cleanup where deleting is allowed (graphkeep forget --prune with the repository's credentials)", sched.CleanupInterval)
	}
	if autoFailover {
		return fmt.Errorf("append-only server with auto_failover: an append-only server never fails over; remove auto_failover or drop --append-only")
	}
	return nil
}

// checkExposure refuses to listen beyond loopback without a token.
func checkExposure(listen string, tokens []api.Token) error {
	if len(tokens) > 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %v (use host:port)", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without an API token: set GRAPHKEEP_ADMIN_TOKEN (and GRAPHKEEP_READ_TOKEN) or server.tokens, or listen on 127.0.0.1", listen)
}

// embeddedDefault sets up the zero-configuration server: a file repository
// under ./.graphkeep/repo and graphs root ./graphs, created when missing
// (the repository itself is created by the service).
func (g *globals) embeddedDefault(ctx context.Context, log *slog.Logger) error {
	if _, err := g.repoURL(); err == nil {
		return nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	dir := filepath.Join(wd, ".graphkeep", "repo")
	g.repo, g.embedded = "file://"+dir, true
	if g.graphsRootDir() == "" {
		g.graphsRoot = filepath.Join(wd, "graphs")
	}
	if err := os.MkdirAll(g.graphsRoot, 0o755); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

func firstDuration(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}
