package backup

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/chunker"
	"github.com/graphkeep/graphkeep/core/internal/bufpool"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/postgres"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Options tune Create; zero fields take defaults.
type Options struct {
	// Uploads is how many chunks are uploaded at once. Default: what the
	// store serves best (blob.RequestsOf: 8 on a local folder, 32 on an
	// object store, or the repository URL's requests=N). Chunks are
	// compressed and encrypted by one worker per CPU.
	Uploads int
	// UploadBuffer bounds the bytes of encoded chunks waiting for or in an
	// upload. Default DefaultUploadBuffer.
	UploadBuffer int64
	// Graphs is how many graphs CreateAll reads at once (a graph whose
	// files are read waits for its last uploads and commits without
	// holding its turn). Default DefaultGraphs.
	Graphs int
	// Attempts is how many cuts are taken when files keep changing while
	// they are read, before the snapshot is refused. Default 5.
	Attempts int
	// Settle is the pause before cutting again after a file changed while
	// it was read, multiplied by the attempt. Default 200ms.
	Settle time.Duration
	// Quiet is how long nothing in the graph must have been written (and
	// LightRAG's pipeline not busy) before the cut: a quiet window. Zero,
	// the default: only until no flush is in progress (see settle.go);
	// negative: cut at once.
	Quiet time.Duration
	// MaxWait bounds the wait for a quiet moment in which LightRAG's stores
	// agree; when it passes the cut is stored marked mid-ingestion. Default
	// 30s.
	MaxWait time.Duration
	// Lease tunes the shared lease a backup holds against prune.
	Lease repo.LeaseOptions
	// Held is a shared lease the caller already holds (repo.OpenLeased
	// takes one while the key is derived): CreateAll then takes none and
	// leaves releasing it to the caller.
	Held *repo.Lease
	// Progress, when set, is called as bytes are read.
	Progress func(Progress)
	// Host is recorded in the manifest; default os.Hostname.
	Host string
	// UndoOf marks the snapshots as undo copies taken before restoring
	// that snapshot (repo.Manifest.UndoOf).
	UndoOf string
	// OneInstant reads the workspaces of one PostgreSQL database at one
	// instant (a checkpoint): once none of them has been written for the
	// flush window (bounded as a flush is), one transaction exports its
	// snapshot and each graph's read imports it; a graph whose stores
	// disagree at that instant is stored as such, not cut again.
	OneInstant bool
	instant    string // the exported snapshot this graph's read imports
}

func (o *Options) applyDefaults() {
	if o.Graphs <= 0 {
		o.Graphs = DefaultGraphs
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Settle <= 0 {
		o.Settle = 200 * time.Millisecond
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
}

// Progress reports how far a backup or restore is.
type Progress struct {
	Graph      string
	Files      int
	TotalFiles int
	Bytes      int64
	TotalBytes int64
}

// Result is what Create did.
type Result struct {
	Manifest *repo.Manifest
	// ReusedFiles were unchanged since the parent and not read.
	ReusedFiles int
	Duration    time.Duration
}

// DefaultMaxWait is the default of Options.MaxWait.
const DefaultMaxWait = 30 * time.Second

// ErrUnstable: the graph kept changing while it was read, so no
// single-instant cut could be taken.
var ErrUnstable = problem.New(problem.Invalid, "unprocessable", "file kept changing while it was read")

// Create snapshots src into r. The manifest is written last, with
// create-if-absent, after every chunk it names is stored: a snapshot exists
// completely or not at all.
func Create(ctx context.Context, r *repo.Repository, src Source, opts Options) (*Result, error) {
	out := CreateAll(ctx, r, []Source{src}, opts)
	return out[0].Result, out[0].Err
}

// Outcome is what CreateAll did for one graph: a Result or an error.
type Outcome struct {
	Graph  string
	Result *Result
	Err    error
}

// DefaultGraphs is how many graphs CreateAll reads at once by default.
// Reading is CPU work (chunking, hashing, validating) and each graph read
// holds a chunker's buffer, its chunks in flight and its key sets; the
// round trips of committing overlap the next graphs' reads whatever the
// number. Three were no faster than two (100 graphs at 30 ms: 3.4-4.1 s
// against 4.1-4.7 s) and held ~25 MiB more at 10 GB.
const DefaultGraphs = 2

// CreateAll snapshots several graphs, Options.Graphs at once, under one
// shared lease and one read of the repository's snapshots, with one upload
// pool for all of them: what costs a round trip per graph (taking the
// lease, listing snapshots, committing) is paid once or overlapped, which
// on a remote store is most of a small backup. Each graph commits on its
// own, as in Create; one failing does not stop the others. Outcomes are in
// the order of srcs.
func CreateAll(ctx context.Context, r *repo.Repository, srcs []Source, opts Options) []Outcome {
	opts.applyDefaults()
	out := make([]Outcome, len(srcs))
	for i, src := range srcs {
		out[i].Graph = src.Graph
	}
	fail := func(err error) []Outcome {
		for i := range out {
			if out[i].Err == nil {
				out[i].Err = err
			}
		}
		return out
	}
	if len(srcs) == 0 {
		return out
	}
	purpose := "backup " + srcs[0].Graph
	if len(srcs) > 1 {
		purpose = fmt.Sprintf("backup of %d graphs", len(srcs))
	}
	lease := opts.Held
	if lease == nil {
		var err error
		if lease, err = r.AcquireLease(ctx, repo.Shared, purpose, opts.Lease); err != nil {
			return fail(err)
		}
		defer lease.Release()
	}

	// A prune that started before this lease may delete chunks the index
	// still names, or that are stored but named by no manifest: the
	// condemned set says which (repo/sweep.go). Any prune that starts later
	// waits for this lease and reads these backups' manifests. The sweep
	// log read with it says whether the kept index can be trusted without
	// listing the snapshots (repo.Cache.Known), so it is read first.
	condemned, err := r.Condemned(ctx, lease, opts.Lease)
	if err != nil {
		return fail(fmt.Errorf("read the running prunes: %w", err))
	}
	idx, err := r.Cache().Known(ctx, condemned.Log())
	if err != nil {
		return fail(fmt.Errorf("read the repository's snapshots: %w", err))
	}
	pool := newUploadPool(r, opts.Uploads, opts.UploadBuffer)
	defer pool.close()
	var instants map[string]string // database URL -> exported snapshot
	if opts.OneInstant {
		var close func()
		var err error
		if instants, close, err = takeInstants(ctx, srcs, opts); err != nil {
			return fail(err)
		}
		defer close()
	}

	// A graph holds a turn while its files are read (the CPU and memory
	// of a backup); waiting for its last uploads and committing, a round
	// trip or two each on a remote store, overlap the next graphs' reads.
	turns := make(chan struct{}, opts.Graphs)
	var running sync.WaitGroup
	for i, src := range srcs {
		turns <- struct{}{}
		running.Go(func() {
			var once sync.Once
			doneReading := func() { once.Do(func() { <-turns }) }
			defer doneReading()
			o := opts
			if src.Postgres != nil {
				o.instant = instants[src.Postgres.URL]
			}
			out[i].Result, out[i].Err = create(ctx, r, idx, condemned, lease, pool, src, o, doneReading)
		})
	}
	running.Wait()
	var committed []*repo.Manifest
	for _, o := range out {
		if o.Err == nil {
			committed = append(committed, o.Result.Manifest)
		}
	}
	r.Cache().Add(committed...)
	return out
}

// create takes one graph's snapshot under lease, deduplicating against
// idx. It calls doneReading once the graph's files are read.
func create(ctx context.Context, r *repo.Repository, idx *repo.Index, condemned *repo.Condemned, lease *repo.Lease, pool *uploadPool, src Source, opts Options, doneReading func()) (*Result, error) {
	start := time.Now()
	if err := repo.CheckGraphID(src.Graph); err != nil {
		return nil, err
	}
	if src.Dir == "" && src.Postgres == nil {
		return nil, fmt.Errorf("graph %q has neither a directory nor a PostgreSQL workspace", src.Graph)
	}
	var dir string
	var rootInfo os.FileInfo
	if src.Dir != "" {
		var err error
		if dir, err = filepath.Abs(src.Dir); err != nil {
			return nil, err
		}
		if _, err := FinishInterruptedSwap(dir); err != nil {
			return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
		}
		rootInfo, err = os.Stat(dir)
		switch {
		case src.Postgres != nil && errors.Is(err, fs.ErrNotExist):
			dir = "" // LightRAG keeps every store of this workspace in PostgreSQL
		case err != nil || !rootInfo.IsDir():
			return nil, fmt.Errorf("graph %q: directory %s is not readable: %v", src.Graph, dir, errOr(err, "not a directory"))
		}
	}
	var changes *pgChanges
	if src.Postgres != nil {
		w, err := postgres.WatchChanges(ctx, src.Postgres.URL, src.Postgres.Workspace)
		if err != nil {
			return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
		}
		defer w.Close()
		changes = &pgChanges{watch: w}
	}
	parent, err := latestManifest(ctx, r, idx, src.Graph)
	if err != nil {
		return nil, err
	}

	b := &builder{
		ctx: ctx, repo: r, opts: opts, graph: src.Graph, dir: dir, pipeline: src.Pipeline,
		pg: src.Postgres, changes: changes,
		known:        idx.Chunks,
		condemned:    condemned,
		inFlight:     make(map[repo.ChunkID]bool),
		packSize:     r.PackSize(),
		parent:       indexEntries(parent),
		seen:         map[string]repo.FileEntry{},
		parentTables: indexTables(parent, src.Postgres),
		seenTables:   map[string]repo.TableDef{},
		validated:    map[string]validated{},
		uploads:      pool.start(ctx),
	}
	c, err := b.take(start)
	b.chunker = nil // its buffer goes back while the uploads finish
	doneReading()
	if err != nil {
		b.uploads.abort()
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}

	m := &repo.Manifest{
		Version:     r.Format(),
		ID:          repo.NewSnapshotID(start),
		Graph:       src.Graph,
		Time:        start.UTC(),
		Host:        opts.Host,
		Source:      dir,
		Files:       c.entries,
		LightRAG:    graphCounts(lightrag.Summarize(c.validation)),
		Consistency: c.consistency,
		Postgres:    c.postgres,
		Stores:      c.stores,
		UndoOf:      opts.UndoOf,
	}
	if rootInfo != nil && dir != "" {
		m.RootMode = uint32(rootInfo.Mode().Perm())
	}
	if parent != nil {
		m.Parent = parent.ID
	}
	stored, err := b.uploads.wait()
	if err != nil {
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}
	if err := b.uploads.place(m.Files, b.inFlight); err != nil {
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}
	m.Totals = totals(m.Files)
	m.Totals.AddedBytes = b.added
	m.Totals.StoredBytes = stored

	// Every object the manifest names must be durable before the manifest is.
	if err := r.SyncChunks(ctx, b.uploads.storedIDs()); err != nil {
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}
	if err := lease.Check(); err != nil {
		return nil, fmt.Errorf("graph %q: not committing: %w", src.Graph, err)
	}
	for attempt := 0; ; attempt++ {
		err := r.SaveManifest(ctx, m)
		if err == nil {
			break
		}
		if !errors.Is(err, blob.ErrExists) || attempt == 2 {
			return nil, err
		}
		m.ID = repo.NewSnapshotID(time.Now()) // taken in the same nanosecond elsewhere
	}
	return &Result{Manifest: m, ReusedFiles: b.reused, Duration: time.Since(start)}, nil
}

// builder holds the state of one Create.
type builder struct {
	ctx       context.Context
	repo      *repo.Repository
	opts      Options
	graph     string
	dir       string
	known     *repo.ChunkSet
	condemned *repo.Condemned       // chunks a running prune may delete
	inFlight  map[repo.ChunkID]bool // chunks this backup stores
	packSize  int                   // the repository's (0: no packs)
	parent    map[string]repo.FileEntry
	seen      map[string]repo.FileEntry // read by an earlier cut of this backup
	// The same for a graph's PostgreSQL tables: their definitions, with
	// the fingerprint of the rows each entry holds.
	parentTables, seenTables map[string]repo.TableDef
	validated                map[string]validated // what this backup's reads of LightRAG files found
	pipeline                 *lightrag.Pipeline
	pg                       *postgres.Location // the graph's workspace in PostgreSQL, or nil
	changes                  *pgChanges         // polls it for writes
	uploads                  *uploads
	chunker                  *chunker.Chunker
	added                    int64
	reused                   int
	progress                 Progress
}

func inode(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func totals(files []repo.FileEntry) repo.Totals {
	var t repo.Totals
	chunks := map[repo.ChunkID]bool{}
	for _, f := range files {
		switch f.Type {
		case repo.TypeFile:
			t.Files++
			t.SizeBytes += f.Size
			for _, c := range f.Chunks {
				chunks[c.ID] = true
			}
		case repo.TypeTable:
			t.Tables++
			t.SizeBytes += f.Size
			for _, c := range f.Chunks {
				chunks[c.ID] = true
			}
		case repo.TypeDir:
			t.Dirs++
		case repo.TypeSymlink:
			t.Symlinks++
		}
	}
	t.Chunks = len(chunks)
	return t
}

func latestManifest(ctx context.Context, r *repo.Repository, idx *repo.Index, graph string) (*repo.Manifest, error) {
	ref, ok, err := r.Latest(ctx, graph, idx.Snapshots)
	if err != nil || !ok {
		return nil, err
	}
	m, err := r.Cache().Manifest(ctx, ref)
	if errors.Is(err, repo.ErrSnapshotMissing) {
		return nil, nil // every snapshot the index has of graph was forgotten
	}
	return m, err
}

// indexTables are the parent's tables, when it was read from the same
// workspace of the same database.
func indexTables(m *repo.Manifest, loc *postgres.Location) map[string]repo.TableDef {
	out := map[string]repo.TableDef{}
	if m != nil && m.Postgres != nil && loc != nil && m.Postgres.Database == loc.Database() && m.Postgres.Workspace == loc.Workspace {
		for _, t := range m.Postgres.Tables {
			out[t.Name] = t
		}
	}
	return out
}

func indexEntries(m *repo.Manifest) map[string]repo.FileEntry {
	out := map[string]repo.FileEntry{}
	if m != nil {
		for _, f := range m.Files {
			out[f.Path] = f
		}
	}
	return out
}

func errOr(err error, msg string) any {
	if err != nil {
		return err
	}
	return msg
}

// sharedChunk is a pooled copy of a chunk read by several consumers at once
// (validator, encoder); the last release returns its memory to the pool.
type sharedChunk struct {
	data []byte
	pool *bufpool.Pool // where data goes back
	refs atomic.Int32
}

func newSharedChunk(data []byte, consumers int) *sharedChunk {
	c := &sharedChunk{data: bufpool.Backup.Get(len(data)), pool: bufpool.Backup}
	copy(c.data, data)
	c.refs.Store(int32(consumers))
	return c
}

func (c *sharedChunk) release() {
	switch n := c.refs.Add(-1); {
	case n == 0:
		c.pool.Put(c.data)
		c.data = nil
	case n < 0:
		// Its memory may already hold another chunk: never go on.
		panic("backup: a shared chunk was released more often than it was shared")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
