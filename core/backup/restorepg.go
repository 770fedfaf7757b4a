package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
)

// PostgresResult is what RestorePostgres (or its dry run) did.
type PostgresResult struct {
	Snapshot  repo.SnapshotRef `json:"snapshot"`
	Database  string           `json:"database"`
	Workspace string           `json:"workspace"`
	// Tables says per table how many rows were loaded and how many of the
	// workspace's were replaced; a dry run says how many would be added,
	// removed and changed instead (Diff).
	Tables []TableLoad     `json:"tables,omitempty"`
	Diff   []postgres.Diff `json:"diff,omitempty"`
	DryRun bool            `json:"dry_run,omitempty"`
	// Created lists the tables the destination lacked.
	Created  []string          `json:"created_tables,omitempty"`
	Rows     int64             `json:"rows"`
	Bytes    int64             `json:"bytes"`
	LightRAG *repo.GraphCounts `json:"lightrag"`
	// Resume names the documents LightRAG takes up again (a resumable
	// snapshot).
	Resume *repo.Resume `json:"resume,omitempty"`
	// Undo is the snapshot of the state the restore replaced
	// (RestoreOptions.Undo; "" when the workspace was empty).
	Undo       string        `json:"undo_snapshot,omitempty"`
	Duration   time.Duration `json:"-"`
	DurationMS int64         `json:"duration_ms"`
}

// TableLoad is one table of a restore: rows written, rows of the
// workspace deleted, rows already as the snapshot has them (kept).
type TableLoad struct {
	Table    string `json:"table"`
	Loaded   int64  `json:"loaded"`
	Replaced int64  `json:"replaced"`
	Kept     int64  `json:"kept"`
}

// ErrNotPostgres: the snapshot holds no PostgreSQL tables.
var ErrNotPostgres = problem.New(problem.Invalid, "not_postgres", "the snapshot holds no PostgreSQL tables")

// RestorePostgres loads snapshot ref's tables into workspace dest.Workspace
// of the database at dest.URL, in one transaction: every LightRAG table's
// rows of the workspace are deleted, the snapshot's loaded (their workspace
// column rewritten when it is another workspace), each table's content
// hash, the row counts and, for a consistent snapshot, the invariants
// checked, and only then is it committed. Readers see the old state or the
// new; on any failure, or a crash, the workspace is as it was. Tables the
// destination lacks are created from the snapshot's definitions.
func RestorePostgres(ctx context.Context, r *repo.Repository, ref repo.SnapshotRef, dest postgres.Location, opts RestoreOptions) (*PostgresResult, error) {
	m, done, err := postgresManifest(ctx, r, ref, &opts)
	if err != nil {
		return nil, err
	}
	defer done()
	start := time.Now()
	var undo string
	if opts.Undo {
		if undo, err = keepState(ctx, r, cmp.Or(opts.UndoGraph, ref.Graph), ref.ID, dest, opts.Lease); err != nil {
			return nil, err
		}
	}
	load, err := postgres.BeginLoad(ctx, dest.URL, dest.Workspace, m.Postgres.Tables, postgres.LoadOptions{Incremental: true})
	if err != nil {
		return nil, fmt.Errorf("restore %s/%s into %s: %w", ref.Graph, ref.ID, dest, err)
	}
	committed := false
	defer func() {
		if !committed {
			load.Rollback()
		}
	}()
	res := &PostgresResult{Snapshot: ref, Database: dest.Database(), Workspace: dest.Workspace, Created: load.Created, Undo: undo}
	if m.Resumable() {
		res.Resume = m.Consistency.Resume
	}
	tables := map[string]*lightrag.FileStats{}
	prog := Progress{Graph: m.Graph, TotalFiles: len(m.Postgres.Tables), TotalBytes: m.Totals.SizeBytes}
	// Back where it was read from, a table whose rows are the very row
	// versions the snapshot read (same fingerprint) is left as it is.
	var now map[string]string
	if m.Postgres.Database == dest.Database() && m.Postgres.Workspace == dest.Workspace {
		if now, err = load.Fingerprints(ctx); err != nil {
			return nil, err
		}
	}
	for i, t := range m.Postgres.Tables {
		e, ok := tableEntry(m, t.Name)
		if !ok {
			return nil, fmt.Errorf("snapshot %s/%s names table %s but holds no rows for it: %w", ref.Graph, ref.ID, t.Name, repo.ErrCorrupt)
		}
		if t.Fingerprint != "" && now[t.Name] == t.Fingerprint && load.Incremental(t.Name) {
			tables[t.Name] = fileStats(e.LightRAG)
			res.Tables = append(res.Tables, TableLoad{Table: t.Name, Kept: t.Rows})
			continue
		}
		progress := func(b int64) {
			if opts.Progress != nil {
				prog.Bytes += b
				opts.Progress(prog)
			}
		}
		tl, st, err := restoreTable(ctx, opts.Downloads, load, t, e, m.Postgres.Workspace, dest.Workspace, progress)
		if err != nil {
			return nil, fmt.Errorf("restore %s/%s into %s: %w (nothing was changed)", ref.Graph, ref.ID, dest, err)
		}
		tables[t.Name] = st
		res.Tables = append(res.Tables, tl)
		res.Rows += tl.Loaded
		res.Bytes += e.Size
		prog.Files++
		if i == 0 {
			crashPoint("pg-table-loaded")
		}
	}
	// What the transaction now holds must be exactly the snapshot: each
	// table it loaded holds the rows COPY counted (writers are locked out
	// and the workspace's rows were deleted first), and every other
	// LightRAG table none of the workspace's.
	var others []string
	for _, t := range load.Tables() {
		if _, ok := m.Postgres.Table(t.Name); !ok {
			others = append(others, t.Name)
		}
	}
	counts, err := load.Counts(ctx, others)
	if err != nil {
		return nil, err
	}
	for _, name := range others {
		if counts[name] != 0 {
			return nil, fmt.Errorf("restore %s/%s: table %s would hold %d rows of workspace %q, the snapshot none (nothing was changed)", ref.Graph, ref.ID, name, counts[name], dest.Workspace)
		}
	}
	if err := checkRestored(m, tables); err != nil {
		return nil, fmt.Errorf("restore %s/%s: %w (nothing was changed)", ref.Graph, ref.ID, err)
	}
	res.LightRAG = m.LightRAG
	crashPoint("pg-loaded")
	if err := load.Commit(ctx); err != nil {
		return nil, err
	}
	committed = true
	res.Duration = time.Since(start)
	res.DurationMS = res.Duration.Milliseconds()
	return res, nil
}

// keepState snapshots workspace dest as it is, as graph, marked as an
// undo copy taken before restoring snapshot restoring, and returns its id ("" when the workspace holds nothing).
func keepState(ctx context.Context, r *repo.Repository, graph, restoring string, dest postgres.Location, lease repo.LeaseOptions) (string, error) {
	out := CreateAll(ctx, r, []Source{{Graph: graph, Postgres: &dest}},
		Options{Quiet: -1, MaxWait: time.Millisecond, Lease: lease, UndoOf: restoring})
	switch err := out[0].Err; {
	case errors.Is(err, ErrNoWorkspace):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("keep the current state of %s before the restore: %w", dest, err)
	}
	return out[0].Result.Manifest.ID, nil
}

// RestoreGraph restores snapshot ref wherever its graph lives: its tables
// into pg (one transaction, the state replaced kept as an undo snapshot)
// when it is of a graph in PostgreSQL, its files into dir when it holds
// any. The tables go first: a failure there changes nothing.
func RestoreGraph(ctx context.Context, r *repo.Repository, ref repo.SnapshotRef, dir string, pg *postgres.Location, opts RestoreOptions) (*RestoreResult, error) {
	if pg == nil {
		return Restore(ctx, r, ref, dir, opts)
	}
	start := time.Now()
	opts.Undo = true
	pr, err := RestorePostgres(ctx, r, ref, *pg, opts)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Snapshot: ref, Dest: pg.String(), Postgres: pr, Undo: pr.Undo, UndoGraph: cmp.Or(opts.UndoGraph, ref.Graph), LightRAG: pr.LightRAG, Bytes: pr.Bytes, Resume: pr.Resume}
	if dir != "" {
		files, err := Restore(ctx, r, ref, dir, opts)
		if err != nil {
			return res, fmt.Errorf("graph %s: its tables were restored into %s (undo snapshot %s), but its files were not: %w", ref.Graph, pg, pr.Undo, err)
		}
		res.Dest = pg.String() + " and " + files.Dest
		res.Files, res.Bytes, res.Previous, res.Recovered = files.Files, res.Bytes+files.Bytes, files.Previous, files.Recovered
	}
	res.Duration = time.Since(start)
	res.DurationMS = res.Duration.Milliseconds()
	return res, nil
}

// PlanPostgres is RestorePostgres's dry run: per table, how many rows the
// restore would add, remove and change in dest. It writes nothing.
func PlanPostgres(ctx context.Context, r *repo.Repository, ref repo.SnapshotRef, dest postgres.Location, opts RestoreOptions) (*PostgresResult, error) {
	m, done, err := postgresManifest(ctx, r, ref, &opts)
	if err != nil {
		return nil, err
	}
	defer done()
	start := time.Now()
	rd, err := postgres.Read(ctx, dest.URL)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	res := &PostgresResult{Snapshot: ref, Database: dest.Database(), Workspace: dest.Workspace, DryRun: true, LightRAG: m.LightRAG}
	seen := map[string]bool{}
	for _, t := range m.Postgres.Tables {
		e, _ := tableEntry(m, t.Name)
		var d postgres.Diff
		_, err := pipeEntry(ctx, opts.Downloads, e, nil, nil, func(r io.Reader) error {
			var err error
			d, err = postgres.DiffTable(ctx, rd, t, dest.Workspace, r)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("compare table %s: %w", t.Name, err)
		}
		if _, ok := rd.Catalog.Table(t.Name); !ok {
			res.Created = append(res.Created, t.Name)
		}
		seen[t.Name] = true
		res.Diff = append(res.Diff, d)
		res.Rows += t.Rows
		res.Bytes += e.Size
	}
	// Tables the snapshot lacks lose the workspace's rows.
	current, err := rd.Counts(ctx, dest.Workspace)
	if err != nil {
		return nil, err
	}
	for _, t := range rd.Catalog.Tables {
		if !seen[t.Name] && current[t.Name] > 0 {
			res.Diff = append(res.Diff, postgres.Diff{Table: t.Name, Removed: current[t.Name]})
		}
	}
	res.Duration = time.Since(start)
	res.DurationMS = res.Duration.Milliseconds()
	return res, nil
}

// postgresManifest reads the manifest of ref, refused unless it is of a
// graph in PostgreSQL and good (or allowed), and gives opts a read-ahead
// of its own when it has none; done releases it.
func postgresManifest(ctx context.Context, r *repo.Repository, ref repo.SnapshotRef, opts *RestoreOptions) (m *repo.Manifest, done func(), err error) {
	if m, err = r.Cache().Manifest(ctx, ref); err != nil {
		return nil, nil, err
	}
	if m.Postgres == nil {
		return nil, nil, fmt.Errorf("snapshot %s/%s is of a directory (%s): %w", ref.Graph, ref.ID, m.Source, ErrNotPostgres)
	}
	if !m.Good() && !opts.AllowNotGood {
		return nil, nil, fmt.Errorf("snapshot %s/%s is %s; LightRAG may not load it: restore it only by its id with flagged snapshots explicitly allowed, or restore the latest good snapshot: %w",
			ref.Graph, ref.ID, m.NotGoodReason(), repo.ErrNotGood)
	}
	done = func() {}
	if opts.Downloads == nil {
		opts.Downloads = NewDownloads(ctx, r, opts.Fetches)
		done = opts.Downloads.Close
	}
	return m, done, nil
}

func tableEntry(m *repo.Manifest, table string) (repo.FileEntry, bool) {
	for _, f := range m.Files {
		if f.Type == repo.TypeTable && repo.TableName(f) == table {
			return f, true
		}
	}
	return repo.FileEntry{}, false
}

// restoreTable brings one table's rows of the workspace to the snapshot's:
// by their difference when the table is incremental and holds rows, and
// changing at most half of them is enough; else by loading them all. The
// snapshot's rows are validated as they pass, and the table must end with
// exactly its row count.
func restoreTable(ctx context.Context, d *Downloads, load *postgres.Load, t repo.TableDef, e repo.FileEntry, from, to string, progress func(int64)) (TableLoad, *lightrag.FileStats, error) {
	tl := TableLoad{Table: t.Name}
	rewrite := ""
	if from != to {
		rewrite = to
	}
	var sync *postgres.Sync
	if load.Incremental(t.Name) {
		var err error
		if sync, err = load.BeginSync(ctx, t); err != nil {
			return tl, nil, err
		}
		if sync != nil && sync.Empty() {
			sync = nil
		}
	}
	validate := lightrag.NewTableStream(lightrag.TableOf(t.Name), postgres.ColumnNames(t))
	if sync == nil {
		return replaceTable(ctx, d, load, t, e, rewrite, validate, progress)
	}
	// Compare, validating; then write the difference, or everything.
	st, err := pipeEntry(ctx, d, e, validate, progress, sync.Compare)
	if err != nil {
		return tl, nil, err
	}
	if !sync.Worth() {
		tl, _, err := replaceTable(ctx, d, load, t, e, rewrite, nil, nil)
		return tl, st, err
	}
	var loaded int64
	if _, err := pipeEntry(ctx, d, e, nil, nil, func(r io.Reader) error {
		var err error
		loaded, err = sync.Apply(ctx, r, rewrite)
		return err
	}); err != nil {
		return tl, nil, err
	}
	counts, err := load.Counts(ctx, []string{t.Name})
	if err != nil {
		return tl, nil, err
	}
	if counts[t.Name] != t.Rows {
		return tl, nil, fmt.Errorf("table %s would hold %d rows, the snapshot %d: %w", t.Name, counts[t.Name], t.Rows, repo.ErrCorrupt)
	}
	tl.Loaded, tl.Replaced, tl.Kept = loaded, load.Removed[t.Name], sync.Diff.Same
	return tl, st, nil
}

// pipeEntry streams a table entry's rows from the repository to consume
// (validated by validate, when set, and hash-checked).
func pipeEntry(ctx context.Context, d *Downloads, e repo.FileEntry, validate *lightrag.Stream, progress func(int64), consume func(io.Reader) error) (*lightrag.FileStats, error) {
	pr, pw := io.Pipe()
	type streamed struct {
		st  *lightrag.FileStats
		err error
	}
	done := make(chan streamed, 1)
	go func() {
		st, err := streamEntry(ctx, d, e, pw, validate, progress)
		pw.CloseWithError(err)
		done <- streamed{st, err}
	}()
	err := consume(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	s := <-done
	return s.st, firstCause(s.err, err)
}

// firstCause is the error that caused the other: the stream's, unless it
// only failed because its consumer stopped reading (having all it needed,
// or failing itself).
func firstCause(stream, consumer error) error {
	if stream != nil && !errors.Is(stream, io.ErrClosedPipe) {
		return stream
	}
	return consumer
}

// replaceTable empties the workspace's rows of t (those of an incremental
// table are still there) and loads all the snapshot's (their workspace
// column set to rewrite, when not ""), validated by validate when set; t
// must end with exactly the snapshot's row count.
func replaceTable(ctx context.Context, d *Downloads, load *postgres.Load, t repo.TableDef, e repo.FileEntry, rewrite string, validate *lightrag.Stream, progress func(int64)) (TableLoad, *lightrag.FileStats, error) {
	tl := TableLoad{Table: t.Name}
	if load.Incremental(t.Name) {
		if err := load.Clear(ctx, t); err != nil {
			validate.Close()
			return tl, nil, err
		}
	}
	st, err := pipeEntry(ctx, d, e, validate, progress, func(r io.Reader) error {
		var err error
		if rewrite != "" {
			if r, err = postgres.RewriteWorkspace(r, t, rewrite); err != nil {
				return err
			}
		}
		tl.Loaded, err = load.Copy(ctx, t, r)
		return err
	})
	if err == nil && tl.Loaded != t.Rows {
		err = fmt.Errorf("table %s: %d rows loaded, the snapshot holds %d: %w", t.Name, tl.Loaded, t.Rows, repo.ErrCorrupt)
	}
	tl.Replaced = load.Removed[t.Name]
	return tl, st, err
}

// streamEntry writes a table entry's content to w from its chunks and
// checks its content hash; validate (closed here) sees every byte.
func streamEntry(ctx context.Context, d *Downloads, e repo.FileEntry, w io.Writer, validate *lightrag.Stream, progress func(int64)) (*lightrag.FileStats, error) {
	ff := d.fetch.open(e.Chunks, 1+btoi(validate != nil), firstReads)
	defer ff.close()
	sum := ff.f.repo.FileHash()
	var size int64
	for c, err := range ff.chunks() {
		if err != nil {
			validate.Close()
			return nil, fmt.Errorf("%s: %w", e.Path, err)
		}
		// c.data is read once: the last of the consumers to release c
		// clears it.
		data := c.data
		if validate != nil {
			validate.Write(data, c.release)
		}
		sum.Write(data)
		size += int64(len(data))
		_, err := w.Write(data)
		c.release()
		if err != nil {
			validate.Close()
			return nil, err
		}
		if progress != nil {
			progress(int64(len(data)))
		}
	}
	st := validate.Close()
	restored := e
	ff.f.repo.SetDigest(&restored, sum.Sum(nil))
	if got, want := restored.Digest(), e.Digest(); got != want || size != e.Size {
		return nil, fmt.Errorf("%s: restored content (%d bytes, %s) does not match the snapshot (%d bytes, %s): %w", e.Path, size, got, e.Size, want, repo.ErrCorrupt)
	}
	return st, ctx.Err()
}

// checkRestored compares what the loaded tables hold with what the
// snapshot recorded: the LightRAG counts, and for a consistent snapshot
// the invariants.
func checkRestored(m *repo.Manifest, tables map[string]*lightrag.FileStats) error {
	c := &cut{validation: map[string]*lightrag.FileStats{}, names: map[string]string{}}
	cat := &postgres.Catalog{Tables: m.Postgres.Tables}
	placeStores(c, tables, cat, false)
	if m.SourceKind() != "postgres" {
		return nil // the directory's files are checked by their own restore
	}
	got := graphCounts(lightrag.Summarize(c.validation))
	if !got.Equal(m.LightRAG) {
		return fmt.Errorf("LightRAG counts of the loaded rows (%v) differ from the snapshot's (%v): %w", got, m.LightRAG, repo.ErrCorrupt)
	}
	if m.Consistency != nil && m.Consistency.Consistent {
		restored := &repo.Consistency{Invariants: invariants(dropMissing(lightrag.Check(c.validation), c.missing))}
		if broken := restored.Broken(); len(broken) > 0 {
			return fmt.Errorf("the loaded stores disagree (%s), though the snapshot recorded them consistent: %w", broken[0], repo.ErrCorrupt)
		}
	}
	return nil
}
