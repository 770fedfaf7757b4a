package service

import (
	"cmp"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
)

// ErrPipelineBusy: LightRAG is ingesting into the workspace a restore
// would replace.
var ErrPipelineBusy = problem.New(problem.Conflict, "pipeline_busy", "LightRAG's pipeline is busy")

// ErrWorkspaceInUse: the workspace a clone would write holds another
// graph's rows.
var ErrWorkspaceInUse = &problem.Error{Kind: problem.NeedsForce, Code: "workspace_in_use", Remedy: problem.Force,
	Msg: "the destination workspace holds rows"}

// postgresDest resolves where a snapshot of a graph in PostgreSQL goes:
// the graph's own workspace (as configured here, else as the snapshot
// recorded it, the password then coming from PGPASSWORD or PGPASSFILE),
// another workspace of it (ToWorkspace), or another database (To).
func (s *Service) postgresDest(ctx context.Context, c repo.Choice, m *repo.Manifest, req RestoreRequest) (RestoreItem, error) {
	it := RestoreItem{Choice: c}
	own := postgres.Location{URL: m.Postgres.Database, Workspace: m.Postgres.Workspace}
	src, srcErr := s.Source(c.Ref.Graph)
	if srcErr == nil && src.Postgres != nil {
		own = *src.Postgres
	}
	dest := own
	split := m.SourceKind() != "postgres"
	switch {
	case postgres.IsURL(req.To) && req.Confined:
		return it, problem.Errorf(problem.Invalid, problem.NoRemedy, c.Ref.Graph, "a restore requested over the network goes to the graph's own workspace or another workspace of its database, never to a database it names")
	case postgres.IsURL(req.To):
		loc, err := postgres.ParseURL(req.To)
		if err != nil {
			return it, err
		}
		dest = postgres.Location{URL: loc.URL, Workspace: cmp.Or(loc.Workspace, req.ToWorkspace, m.Postgres.Workspace)}
		if split {
			return it, problem.Errorf(problem.Invalid, problem.NoRemedy, c.Ref.Graph, "graph %s keeps stores in files as well: restore its tables into another workspace of its database (and its files into a directory), or restore it in place", c.Ref.Graph)
		}
	case req.To != "" && !split:
		return it, problem.Errorf(problem.Invalid, problem.NoRemedy, c.Ref.Graph, "graph %s is a workspace in PostgreSQL, not a directory: restore it in place, into another workspace, or into another database (postgres://USER@HOST/DB)", c.Ref.Graph)
	case req.To != "" && req.ToWorkspace == "":
		return it, problem.Errorf(problem.Invalid, problem.NoRemedy, c.Ref.Graph, "graph %s keeps stores in PostgreSQL and in files: with a directory for the files, name the workspace its tables go to as well, or restore it in place", c.Ref.Graph)
	}
	if req.ToWorkspace != "" {
		dest.Workspace = req.ToWorkspace
	}
	if err := postgres.CheckWorkspace(dest.Workspace); err != nil {
		return it, err
	}
	it.Postgres = &dest
	it.InPlace = sameDatabase(dest.URL, own.URL) && dest.Workspace == own.Workspace
	it.UndoGraph = c.Ref.Graph
	if !it.InPlace {
		// The undo copy of another workspace is that workspace's graph.
		it.UndoGraph = s.graphOfWorkspace(dest, c.Ref.Graph)
	}
	if split {
		switch {
		case req.To != "":
			it.Dest = req.To
		case srcErr == nil && src.Dir != "":
			it.Dest = src.Dir
		default:
			it.Dest = m.Source
		}
	}
	if it.InPlace || req.DryRun || req.Force {
		return it, nil
	}
	// A clone must not overwrite another workspace's rows unasked.
	rd, err := postgres.Read(ctx, dest.URL)
	if err != nil {
		return it, err
	}
	defer rd.Close()
	counts, err := rd.Counts(ctx, dest.Workspace)
	if err != nil {
		return it, err
	}
	var rows int64
	for _, n := range counts {
		rows += n
	}
	if rows > 0 {
		return it, fmt.Errorf("workspace %q of %s holds %d rows of LightRAG's tables, which the restore would replace: %w",
			dest.Workspace, dest.Database(), rows, ErrWorkspaceInUse.With(dest.Workspace, problem.Force))
	}
	return it, nil
}

// restorePostgres runs one item whose snapshot is of a graph in
// PostgreSQL: a dry run, or the load (after an undo snapshot of what it
// replaces), then the files of a split graph.
func (s *Service) restorePostgres(ctx context.Context, r *repo.Repository, it RestoreItem, req RestoreRequest, opts backup.RestoreOptions) (*backup.RestoreResult, error) {
	ref := it.Choice.Ref
	dest := *it.Postgres
	if req.DryRun {
		pr, err := backup.PlanPostgres(ctx, r, ref, dest, opts)
		if err != nil {
			return nil, err
		}
		return &backup.RestoreResult{Snapshot: ref, Dest: dest.String(), Postgres: pr, LightRAG: pr.LightRAG, DurationMS: pr.DurationMS}, nil
	}
	if it.InPlace {
		if src, err := s.Source(ref.Graph); err == nil && src.Pipeline != nil {
			if st, err := src.Pipeline.Status(ctx); err == nil && st.Busy {
				return nil, fmt.Errorf("graph %s: LightRAG is ingesting into workspace %q; restore when its pipeline is idle (or stop LightRAG first): %w",
					ref.Graph, dest.Workspace, ErrPipelineBusy.With(ref.Graph, problem.NoRemedy))
			}
		}
	}
	opts.Lease, opts.UndoGraph = s.cfg.Lease, it.UndoGraph
	res, err := backup.RestoreGraph(ctx, r, ref, it.Dest, &dest, opts)
	if res != nil && res.Undo != "" {
		s.changed()
	}
	return res, err
}

// sameDatabase reports whether two URLs name the same database.
func sameDatabase(a, b string) bool {
	ca, err1 := pgx.ParseConfig(a)
	cb, err2 := pgx.ParseConfig(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return ca.Host == cb.Host && ca.Port == cb.Port && ca.Database == cb.Database
}

// postgresLocation is where graph's workspace is as configured here, else
// where its snapshot was read from.
func (s *Service) postgresLocation(graph string, recorded postgres.Location) postgres.Location {
	if src, err := s.Source(graph); err == nil && src.Postgres != nil {
		return *src.Postgres
	}
	return recorded
}

// hasPostgresGraphs reports whether a known graph is kept in PostgreSQL.
func (s *Service) hasPostgresGraphs() bool {
	srcs, err := s.Sources()
	if err != nil {
		return false
	}
	for _, src := range srcs {
		if src.Postgres != nil {
			return true
		}
	}
	return false
}

// graphOfWorkspace is the known graph kept in workspace loc, else the
// workspace's name when it is a valid graph id, else fallback.
func (s *Service) graphOfWorkspace(loc postgres.Location, fallback string) string {
	if srcs, err := s.Sources(); err == nil {
		for _, src := range srcs {
			if src.Postgres != nil && src.Postgres.Workspace == loc.Workspace && sameDatabase(src.Postgres.URL, loc.URL) {
				return src.Graph
			}
		}
	}
	if repo.ValidGraphID(loc.Workspace) {
		return loc.Workspace
	}
	return fallback
}
