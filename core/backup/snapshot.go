package backup

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/chunker"
	"github.com/graphkeep/graphkeep/core/internal/bufpool"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Options tune Create; zero fields take defaults.
type Options struct {
	// Uploads is exactly how many chunks are compressed, encrypted and
	// uploaded at once. Default 8, or the CPU count when that is larger.
	Uploads int
	// Attempts is how many cuts are taken when files keep changing while
	// they are read, before the snapshot is refused. Default 5.
	Attempts int
	// Settle is the pause before cutting again after a file changed while
	// it was read, multiplied by the attempt. Default 200ms.
	Settle time.Duration
	// Quiet is how long nothing in the graph must have been written before
	// the cut. Default 2s; negative: cut at once.
	Quiet time.Duration
	// MaxWait bounds the wait for a quiet moment in which LightRAG's stores
	// agree; when it passes the cut is stored marked mid-ingestion. Default
	// 30s.
	MaxWait time.Duration
	// Lease tunes the shared lease a backup holds against prune.
	Lease repo.LeaseOptions
	// Progress, when set, is called as bytes are read.
	Progress func(Progress)
	// Host is recorded in the manifest; default os.Hostname.
	Host string
}

func (o *Options) applyDefaults() {
	if o.Uploads <= 0 {
		o.Uploads = max(8, runtime.GOMAXPROCS(0))
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Settle <= 0 {
		o.Settle = 200 * time.Millisecond
	}
	if o.Quiet == 0 {
		o.Quiet = DefaultQuiet
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

// The defaults of Options.Quiet and Options.MaxWait.
const (
	DefaultQuiet   = 2 * time.Second
	DefaultMaxWait = 30 * time.Second
)

// ErrUnstable: the graph kept changing while it was read, so no
// single-instant cut could be taken.
var ErrUnstable = problem.New(problem.Invalid, "unprocessable", "file kept changing while it was read")

// Create snapshots src into r. The manifest is written last, with
// create-if-absent, after every chunk it names is stored: a snapshot exists
// completely or not at all.
func Create(ctx context.Context, r *repo.Repository, src Source, opts Options) (*Result, error) {
	opts.applyDefaults()
	start := time.Now()
	if err := repo.CheckGraphID(src.Graph); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(src.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := FinishInterruptedSwap(dir); err != nil {
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}
	rootInfo, err := os.Stat(dir)
	if err != nil || !rootInfo.IsDir() {
		return nil, fmt.Errorf("graph %q: directory %s is not readable: %v", src.Graph, dir, errOr(err, "not a directory"))
	}

	lease, err := r.AcquireLease(ctx, repo.Shared, "backup "+src.Graph, opts.Lease)
	if err != nil {
		return nil, err
	}
	defer lease.Release()

	// Under the shared lease no prune runs, so every chunk a manifest names
	// stays in the repository until this backup commits.
	idx, err := r.Cache().Index(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the repository's snapshots: %w", err)
	}
	parent, err := latestManifest(ctx, r, idx, src.Graph)
	if err != nil {
		return nil, err
	}

	b := &builder{
		ctx: ctx, repo: r, opts: opts, graph: src.Graph, dir: dir, pipeline: src.Pipeline,
		known:     idx.Chunks,
		inFlight:  make(map[repo.ChunkID]bool),
		parent:    indexEntries(parent),
		seen:      map[string]repo.FileEntry{},
		validated: map[string]validated{},
	}
	b.uploads = newUploader(ctx, r, opts.Uploads)
	c, err := b.take(start)
	if err != nil {
		b.uploads.abort()
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}

	m := &repo.Manifest{
		Version:     repo.FormatVersion,
		ID:          repo.NewSnapshotID(start),
		Graph:       src.Graph,
		Time:        start.UTC(),
		Host:        opts.Host,
		Source:      dir,
		RootMode:    uint32(rootInfo.Mode().Perm()),
		Files:       c.entries,
		LightRAG:    graphCounts(lightrag.Summarize(c.validation)),
		Consistency: c.consistency,
	}
	if parent != nil {
		m.Parent = parent.ID
	}
	stored, err := b.uploads.wait()
	if err != nil {
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}
	m.Totals = totals(m.Files)
	m.Totals.AddedBytes = b.added
	m.Totals.StoredBytes = stored

	// Every chunk the manifest names must be durable before the manifest is.
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
	known     map[repo.ChunkID]int
	inFlight  map[repo.ChunkID]bool // chunks this backup stores
	parent    map[string]repo.FileEntry
	seen      map[string]repo.FileEntry // read by an earlier cut of this backup
	validated map[string]validated      // what this backup's reads of LightRAG files found
	pipeline  *lightrag.Pipeline
	uploads   *uploader
	chunker   *chunker.Chunker
	added     int64
	reused    int
	progress  Progress
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
	return r.Cache().Manifest(ctx, ref)
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

// uploader compresses, encrypts and stores chunks with bounded parallelism
// and bounded memory: put blocks while every worker is busy.
type uploader struct {
	ctx    context.Context
	cancel context.CancelFunc
	repo   *repo.Repository
	jobs   chan upload
	wg     sync.WaitGroup
	stored atomic.Int64
	mu     sync.Mutex
	err    error
	ids    []repo.ChunkID // stored, to be synced before the commit
}

type upload struct {
	id    repo.ChunkID
	chunk *sharedChunk
}

func newUploader(ctx context.Context, r *repo.Repository, workers int) *uploader {
	ctx, cancel := context.WithCancel(ctx)
	u := &uploader{ctx: ctx, cancel: cancel, repo: r, jobs: make(chan upload)}
	for range workers {
		u.wg.Add(1)
		go u.work()
	}
	return u
}

func (u *uploader) work() {
	defer u.wg.Done()
	var encoded []byte // this worker's buffer, reused chunk after chunk
	for job := range u.jobs {
		if u.ctx.Err() != nil {
			job.chunk.release()
			continue
		}
		encoded = u.repo.EncodeChunkTo(encoded, job.id, job.chunk.data)
		job.chunk.release()
		if err := u.repo.PutChunkDeferred(u.ctx, job.id, encoded); err != nil {
			u.fail(fmt.Errorf("store chunk %s: %w", job.id, err))
			continue
		}
		u.stored.Add(int64(len(encoded)))
		u.mu.Lock()
		u.ids = append(u.ids, job.id)
		u.mu.Unlock()
	}
}

func (u *uploader) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
	u.cancel()
}

// put queues a chunk, which the uploader releases once encoded; it returns
// the first upload error, if any.
func (u *uploader) put(id repo.ChunkID, c *sharedChunk) error {
	select {
	case u.jobs <- upload{id: id, chunk: c}:
		return nil
	case <-u.ctx.Done():
		c.release()
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.err != nil {
			return u.err
		}
		return u.ctx.Err()
	}
}

// wait finishes the uploads and returns the bytes stored.
func (u *uploader) wait() (int64, error) {
	close(u.jobs)
	u.wg.Wait()
	u.cancel()
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stored.Load(), u.err
}

// storedIDs are the chunks this uploader stored (call after wait).
func (u *uploader) storedIDs() []repo.ChunkID {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ids
}

func (u *uploader) abort() {
	u.cancel()
	_, _ = u.wait()
}

// sharedChunk is a pooled copy of a chunk read by several consumers at once
// (validator, encoder); the last release returns its memory to the pool.
type sharedChunk struct {
	data []byte
	refs atomic.Int32
}

func newSharedChunk(data []byte, consumers int) *sharedChunk {
	c := &sharedChunk{data: bufpool.Default.Get(len(data))}
	copy(c.data, data)
	c.refs.Store(int32(consumers))
	return c
}

func (c *sharedChunk) release() {
	switch n := c.refs.Add(-1); {
	case n == 0:
		bufpool.Default.Put(c.data)
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
