package backup

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/core/chunker"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/repo"
)

// A graph in PostgreSQL is cut in one read-only REPEATABLE READ
// transaction: the catalog and every LightRAG table's rows of the
// workspace, streamed in primary-key order through the same chunking,
// deduplication and upload as a file, each table an entry of type table.
// The quiet moment is found by polling a cheap change detector
// (postgres.Changes); the invariants are checked on the rows streamed. A
// graph split between PostgreSQL and its directory (LightRAG keeps the
// stores it does not keep in PostgreSQL under working_dir/workspace) is
// cut in both: the transaction first, the directory just after.

// pgChanges tracks when a workspace was last seen changing.
type pgChanges struct {
	watch   *postgres.Changes
	state   string
	changed time.Time // when state was first seen
}

func (c *pgChanges) lastChange(ctx context.Context) (time.Time, error) {
	st, err := c.watch.State(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if st != c.state || c.changed.IsZero() {
		c.state, c.changed = st, time.Now()
	}
	return c.changed, nil
}

// cutPostgres takes one cut of a graph whose stores are (some or all) in
// PostgreSQL.
func (b *builder) cutPostgres() (*cut, error) {
	loc := b.pg
	rd, err := postgres.ReadAt(b.ctx, loc.URL, b.opts.instant)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	cutTime := time.Now().UTC()
	if b.changes != nil && !b.changes.changed.IsZero() {
		cutTime = b.changes.changed.UTC() // the rows are as of their last change
	}
	c := &cut{validation: map[string]*lightrag.FileStats{}}
	if b.dir != "" {
		files, err := b.cutOnce()
		if err != nil {
			return nil, err
		}
		c = files
	}
	src := &repo.PostgresSource{Database: loc.Database(), Workspace: loc.Workspace, Schema: rd.Catalog.Schema,
		Server: rd.Catalog.Server, Vector: rd.Catalog.Vector}
	prints, err := rd.Fingerprints(b.ctx, loc.Workspace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	tables := map[string]*lightrag.FileStats{}
	for _, t := range rd.Catalog.Tables {
		t.Fingerprint = prints[t.Name]
		e := repo.FileEntry{Path: repo.TablePath(t.Name), Type: repo.TypeTable, Mode: 0o600, MTime: cutTime}
		if p, prev, ok := b.unchangedTable(t); ok {
			e, t.Rows = p, prev.Rows
			tables[t.Name] = fileStats(p.LightRAG)
			b.reused++
		} else {
			rows, err := b.readTable(rd, t, &e, tables)
			if err != nil {
				return nil, err
			}
			t.Rows = rows
			b.seen[e.Path] = e
			b.seenTables[t.Name] = t
		}
		src.Tables = append(src.Tables, t)
		c.entries = append(c.entries, e)
	}
	c.postgres = src
	c.names = map[string]string{}
	if len(src.Tables) == 0 {
		return nil, fmt.Errorf("%s holds no LightRAG tables (lightrag_* with a workspace column) in schema %s: is it the database LightRAG's POSTGRES_DATABASE names? %w",
			loc.Database(), rd.Catalog.Schema, ErrNoWorkspace)
	}
	var total int64
	for _, t := range src.Tables {
		total += t.Rows
	}
	if total == 0 && b.dir == "" {
		known, _ := rd.Workspaces(b.ctx)
		return nil, fmt.Errorf("workspace %q has no rows in %s (workspaces there: %s): check LightRAG's workspace (POSTGRES_WORKSPACE): %w",
			loc.Workspace, loc.Database(), listOrNone(known), ErrNoWorkspace)
	}
	c.stores = placeStores(c, tables, rd.Catalog, b.dir != "")
	return c, nil
}

// unchangedTable returns the entry of table t from an earlier cut of this
// backup or the parent snapshot, when the rows it holds are the ones t's
// fingerprint says are there now (same definition, same fingerprint), and
// its chunks are safe from a running prune.
func (b *builder) unchangedTable(t repo.TableDef) (repo.FileEntry, repo.TableDef, bool) {
	path := repo.TablePath(t.Name)
	for _, known := range []struct {
		entries map[string]repo.FileEntry
		tables  map[string]repo.TableDef
	}{{b.seen, b.seenTables}, {b.parent, b.parentTables}} {
		e, ok := known.entries[path]
		prev, ok2 := known.tables[t.Name]
		if !ok || !ok2 || e.Type != repo.TypeTable || t.Fingerprint == "" || prev.Fingerprint != t.Fingerprint ||
			!sameColumns(prev, t) || !reusableTable(t.Name, e.LightRAG) || b.namesCondemned(e.Chunks) {
			continue
		}
		return e, prev, true
	}
	return repo.FileEntry{}, repo.TableDef{}, false
}

func sameColumns(a, b repo.TableDef) bool {
	if len(a.Columns) != len(b.Columns) || strings.Join(a.Key, ",") != strings.Join(b.Key, ",") {
		return false
	}
	for i := range a.Columns {
		if a.Columns[i] != b.Columns[i] {
			return false
		}
	}
	return true
}

// reusableTable: an entry whose validation found a problem, or lacks the
// names the invariants need, is read again.
func reusableTable(name string, fc *repo.FileCounts) bool {
	if fc == nil || fc.Problem != "" {
		return false
	}
	st := fileStats(fc)
	switch tb := lightrag.TableOf(name); {
	case tb.Store == "":
		return true
	case tb.Status != "":
		return st.Keys != nil && st.Unfinished != nil && st.Unfinished.Keys != nil
	case tb.Pair[0] != "" || tb.SepPair:
		return st.Pairs != nil
	default:
		return st.Keys != nil
	}
}

// ErrNoWorkspace: the database holds no LightRAG tables, or none of the
// workspace's rows.
var ErrNoWorkspace = fmt.Errorf("no such LightRAG workspace")

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// readTable streams one table's rows of the workspace into the pipeline,
// validating them; the validation goes into tables by table name.
func (b *builder) readTable(rd *postgres.Reader, t repo.TableDef, e *repo.FileEntry, tables map[string]*lightrag.FileStats) (int64, error) {
	pr, pw := io.Pipe()
	type copied struct {
		rows int64
		err  error
	}
	done := make(chan copied, 1)
	go func() {
		n, err := rd.Copy(b.ctx, t, b.pg.Workspace, pw)
		pw.CloseWithError(err)
		done <- copied{n, err}
	}()
	validate := lightrag.NewTableStream(lightrag.TableOf(t.Name), postgres.ColumnNames(t))
	rows, err := chunker.NewRows(pr, tableChunks(b.repo.ChunkerParams()), postgres.RowKey(t))
	if err == nil {
		err = b.read(e, pr, validate, -1, rows)
	} else {
		validate.Close()
	}
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the copy if read stopped early
	res := <-done
	if err == nil {
		err = res.err
	}
	if err != nil {
		return 0, err
	}
	if v, ok := b.validated[e.Path]; ok {
		tables[t.Name] = v.stats
	}
	return res.rows, nil
}

// tableChunks are the sizes of a table's chunks: about 128 KiB, a dozen
// rows of 1024-dim vectors, so that changes scattered over a table (keys
// are hashes) touch few chunks; at most the repository's maximum.
func tableChunks(p chunker.Params) chunker.Params {
	return chunker.Params{MinSize: 32 << 10, AvgSize: 128 << 10, MaxSize: max(p.MaxSize, 1<<20), Seed: p.Seed}
}

// placeStores puts each table's validation under the store it stands for
// (files already there win when the tables are empty), and says where
// each kind of store is.
func placeStores(c *cut, tables map[string]*lightrag.FileStats, cat *postgres.Catalog, withFiles bool) []repo.Store {
	byStore := map[string][]string{}
	for _, t := range cat.Tables {
		if st := lightrag.TableOf(t.Name).Store; st != "" {
			byStore[st] = append(byStore[st], t.Name)
		}
	}
	rowsOf := func(name string) int64 {
		if st := tables[name]; st != nil {
			return st.Records
		}
		return 0
	}
	for store, names := range byStore {
		if f := c.validation[store]; f != nil && sumRows(names, rowsOf) == 0 {
			continue // the store is the directory's file
		}
		if store == lightrag.GraphFile {
			c.validation[store] = lightrag.MergeGraph(tables[lightrag.TableGraphNodes], tables[lightrag.TableGraphEdges])
			c.names[store] = strings.Join(names, "+")
			continue
		}
		// Several vector tables of one kind (one per embedding model, and
		// a legacy one): the one holding the workspace's rows, the newest
		// model's when several do.
		sort.Slice(names, func(i, j int) bool {
			ri, rj := rowsOf(names[i]), rowsOf(names[j])
			if (ri > 0) != (rj > 0) {
				return ri > 0
			}
			return lightrag.VectorModel(names[i]) > lightrag.VectorModel(names[j])
		})
		c.validation[store] = tables[names[0]]
		c.names[store] = names[0]
	}
	// A store is read from tables when c.names names them, else from the
	// directory's file when there is one.
	kinds := []string{repo.StoreKV, repo.StoreVector, repo.StoreGraph, repo.StoreDocStatus}
	var out []repo.Store
	anyData := false
	held := map[string]string{}
	for _, k := range kinds {
		for _, s := range storesOf(k) {
			switch {
			case sumRows(byStore[s], rowsOf) > 0:
				held[k], anyData = "postgres", true
			case c.names[s] == "" && c.validation[s] != nil:
				held[k] = cmp.Or(held[k], "files")
				anyData = true
			}
		}
	}
	for _, k := range kinds {
		st := repo.Store{Kind: k, In: held[k]}
		switch {
		case st.In == "postgres":
			var names []string
			for _, s := range storesOf(k) {
				if n := c.names[s]; n != "" {
					names = append(names, n)
				}
			}
			st.Detail = strings.Join(names, ", ")
		case st.In == "files":
			st.Detail = strings.Join(storesOf(k), ", ")
		case !anyData:
			st.In, st.Detail = "postgres", "empty"
		default:
			st.Detail = elsewhere(k, cat, withFiles)
		}
		out = append(out, st)
	}
	// A store kept elsewhere is not compared: its side would read empty.
	for _, st := range out {
		if st.In == "" {
			for _, s := range storesOf(st.Kind) {
				delete(c.validation, s)
				c.missing = append(c.missing, s)
			}
		}
	}
	return out
}

func sumRows(names []string, rowsOf func(string) int64) int64 {
	var n int64
	for _, name := range names {
		n += rowsOf(name)
	}
	return n
}

func storesOf(kind string) []string {
	switch kind {
	case repo.StoreKV:
		return []string{lightrag.FullDocsFile, lightrag.TextChunksFile, lightrag.EntityChunksFile, lightrag.RelationChunksFile}
	case repo.StoreVector:
		return []string{lightrag.VDBChunksFile, lightrag.VDBEntitiesFile, lightrag.VDBRelationsFile}
	case repo.StoreGraph:
		return []string{lightrag.GraphFile}
	}
	return []string{lightrag.DocStatusFile}
}

// elsewhere says where a store the snapshot lacks seems to be, and how to
// include it.
func elsewhere(kind string, cat *postgres.Catalog, withFiles bool) string {
	files := "if LightRAG keeps it in files (working_dir/workspace), name that directory for the graph too, beside its workspace (or configure the graphs root and the database together)"
	if withFiles {
		files = "it is not in the graph's directory either"
	}
	switch kind {
	case repo.StoreGraph:
		if len(cat.AGEGraphs) > 0 {
			return fmt.Sprintf("not in lightrag_graph_nodes/lightrag_graph_edges; the database has Apache AGE graphs (%s), which LightRAG's PGGraphStorage uses: graphkeep does not read AGE yet, so this graph is not backed up (use PGTableGraphStorage, or NetworkXStorage files)",
				strings.Join(cat.AGEGraphs, ", "))
		}
		return "not in lightrag_graph_nodes/lightrag_graph_edges (Neo4j, Memgraph or NetworkX files?); " + files + "; a graph in another server is not backed up"
	case repo.StoreVector:
		return "no lightrag_vdb_* rows (Milvus, Qdrant, Faiss or NanoVectorDB files?); " + files
	case repo.StoreDocStatus:
		return "no lightrag_doc_status rows (another server, or JsonDocStatus files?); " + files
	}
	return "no lightrag_doc_full/lightrag_doc_chunks rows (another server, or JsonKV files?); " + files
}

// dropMissing removes the invariants a store kept elsewhere takes part in.
func dropMissing(ivs []lightrag.Invariant, missing []string) []lightrag.Invariant {
	if len(missing) == 0 {
		return ivs
	}
	var out []lightrag.Invariant
	for _, iv := range ivs {
		skip := false
		for _, m := range missing {
			if strings.HasPrefix(iv.Left, m+" ") || strings.HasPrefix(iv.Right, m+" ") {
				skip = true
			}
		}
		if !skip {
			out = append(out, iv)
		}
	}
	return out
}

// renameSides names a store by the tables that stand for it.
func renameSides(ivs []lightrag.Invariant, names map[string]string) {
	for i := range ivs {
		for store, table := range names {
			if strings.HasPrefix(ivs[i].Left, store+" ") {
				ivs[i].Left = table + strings.TrimPrefix(ivs[i].Left, store)
			}
			if strings.HasPrefix(ivs[i].Right, store+" ") {
				ivs[i].Right = table + strings.TrimPrefix(ivs[i].Right, store)
			}
		}
	}
}

// takeInstants exports, for each PostgreSQL database holding two or more
// of srcs' workspaces, one instant once none of them has been written for
// the flush window (or Options.Quiet), bounded by the flush wait (or
// MaxWait). close ends the exporting transactions.
func takeInstants(ctx context.Context, srcs []Source, opts Options) (map[string]string, func(), error) {
	groups := map[string][]string{}
	for _, s := range srcs {
		if s.Postgres != nil {
			groups[s.Postgres.URL] = append(groups[s.Postgres.URL], s.Postgres.Workspace)
		}
	}
	instants := map[string]string{}
	var open []*postgres.Instant
	closeAll := func() {
		for _, i := range open {
			i.Close()
		}
	}
	for url, workspaces := range groups {
		if len(workspaces) < 2 {
			continue
		}
		if err := settleTogether(ctx, url, workspaces, opts); err != nil {
			closeAll()
			return nil, nil, err
		}
		inst, err := postgres.ExportInstant(ctx, url)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		open = append(open, inst)
		instants[url] = inst.ID
	}
	return instants, closeAll, nil
}

// settleTogether waits until none of the workspaces has changed for the
// flush window (Options.Quiet when set), at most the flush wait (MaxWait
// with a quiet window).
func settleTogether(ctx context.Context, url string, workspaces []string, opts Options) error {
	if opts.Quiet < 0 {
		return nil
	}
	quiet, bound := FlushSettle, flushWait
	if opts.Quiet > 0 {
		quiet, bound = opts.Quiet, opts.MaxWait
	}
	var watches []*pgChanges
	defer func() {
		for _, w := range watches {
			w.watch.Close()
		}
	}()
	for _, ws := range workspaces {
		w, err := postgres.WatchChanges(ctx, url, ws)
		if err != nil {
			return err
		}
		watches = append(watches, &pgChanges{watch: w})
	}
	deadline := time.Now().Add(bound)
	for {
		var last time.Time
		for _, w := range watches {
			t, err := w.lastChange(ctx)
			if err != nil {
				return err
			}
			last = maxTime(last, t)
		}
		if time.Since(last) >= quiet || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(quiet-time.Since(last), time.Until(deadline)) + time.Millisecond):
		}
	}
}
