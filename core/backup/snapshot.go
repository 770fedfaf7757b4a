package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
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
	// Uploads is how many chunks are compressed, encrypted and uploaded at
	// once. Default 8.
	Uploads int
	// Attempts is how often a file that changes while it is read is read
	// again before the snapshot is refused. Default 5.
	Attempts int
	// Settle is the pause before reading a changed file again. Default 200ms.
	Settle time.Duration
	// Lease tunes the shared lease a backup holds against prune.
	Lease repo.LeaseOptions
	// Progress, when set, is called as bytes are read.
	Progress func(Progress)
	// Host is recorded in the manifest; default os.Hostname.
	Host string
}

func (o *Options) applyDefaults() {
	if o.Uploads <= 0 {
		o.Uploads = 8
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Settle <= 0 {
		o.Settle = 200 * time.Millisecond
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

// ErrUnstable: a file kept changing while it was read.
var ErrUnstable = errors.New("file kept changing while it was read")

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

	entries, err := walk(dir)
	if err != nil {
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}
	b := &builder{
		ctx: ctx, repo: r, opts: opts, graph: src.Graph, dir: dir,
		known:    idx.Chunks,
		inFlight: make(map[repo.ChunkID]bool),
		parent:   indexEntries(parent),
	}
	b.uploads = newUploader(ctx, r, opts.Uploads)
	for _, e := range entries {
		if e.Type == repo.TypeFile {
			b.progress.TotalFiles++
			b.progress.TotalBytes += e.Size
		}
	}
	b.progress.Graph = src.Graph

	m := &repo.Manifest{
		Version:  repo.FormatVersion,
		ID:       repo.NewSnapshotID(start),
		Graph:    src.Graph,
		Time:     start.UTC(),
		Host:     opts.Host,
		Source:   dir,
		RootMode: uint32(rootInfo.Mode().Perm()),
	}
	if parent != nil {
		m.Parent = parent.ID
	}
	validation := map[string]*lightrag.FileStats{}
	for i := range entries {
		e := &entries[i]
		if e.Type == repo.TypeFile {
			if err := b.file(e); err != nil {
				b.uploads.abort()
				return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
			}
			if e.LightRAG != nil {
				validation[e.Path] = e.LightRAG
			}
		}
		m.Files = append(m.Files, *e)
	}
	stored, err := b.uploads.wait()
	if err != nil {
		return nil, fmt.Errorf("graph %q: %w", src.Graph, err)
	}
	m.LightRAG = lightrag.Summarize(validation)
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
	ctx      context.Context
	repo     *repo.Repository
	opts     Options
	graph    string
	dir      string
	known    map[repo.ChunkID]int
	inFlight map[repo.ChunkID]bool // chunks this backup stores
	parent   map[string]repo.FileEntry
	uploads  *uploader
	chunker  *chunker.Chunker
	added    int64
	reused   int
	progress Progress
}

// file fills e's content fields: from the parent when unchanged, else by
// reading the file, again while it keeps changing.
func (b *builder) file(e *repo.FileEntry) error {
	if p, ok := b.parent[e.Path]; ok && p.Type == repo.TypeFile && p.Size == e.Size &&
		p.MTime.Equal(e.MTime) && p.Inode == e.Inode && p.Inode != 0 && p.Mode == e.Mode {
		e.SHA256, e.Chunks, e.LightRAG = p.SHA256, p.Chunks, p.LightRAG
		b.reused++
		b.advance(e.Size, 1)
		return nil
	}
	for attempt := 1; ; attempt++ {
		stable, err := b.read(e)
		if err != nil {
			return err
		}
		if stable {
			b.advance(0, 1)
			return nil
		}
		if attempt == b.opts.Attempts {
			return fmt.Errorf("%s: %w (%d attempts): LightRAG is writing this graph right now; back up again when it is idle",
				e.Path, ErrUnstable, attempt)
		}
		select {
		case <-b.ctx.Done():
			return b.ctx.Err()
		case <-time.After(b.opts.Settle * time.Duration(attempt)):
		}
		if err := restat(filepath.Join(b.dir, filepath.FromSlash(e.Path)), e); err != nil {
			return err
		}
	}
}

// read chunks the file once. stable is false when the file changed while
// it was read; e then holds nothing to keep.
func (b *builder) read(e *repo.FileEntry) (stable bool, err error) {
	path := filepath.Join(b.dir, filepath.FromSlash(e.Path))
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", e.Path, err)
	}
	defer f.Close()

	if b.chunker == nil {
		if b.chunker, err = chunker.New(f, b.repo.ChunkerParams()); err != nil {
			return false, err
		}
	} else {
		b.chunker.Reset(f)
	}
	kind := lightrag.KindOf(e.Path)
	validate := lightrag.NewStream(kind)
	sum := sha256.New()
	var refs []repo.ChunkRef
	var size int64
	for {
		data, err := b.chunker.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			validate.Close()
			return false, fmt.Errorf("read %s: %w", e.Path, err)
		}
		size += int64(len(data))
		sum.Write(data)
		id := b.repo.HashChunk(data)
		refs = append(refs, repo.ChunkRef{ID: id, Size: len(data)})
		_, known := b.known[id]
		upload := !known && !b.inFlight[id]
		if upload || validate != nil {
			// One copy (the chunker reuses its buffer), shared by the
			// validator and the uploader; the last to finish recycles it.
			c := newSharedChunk(data, btoi(upload)+btoi(validate != nil))
			if validate != nil {
				validate.Write(c.data, c.release)
			}
			if upload {
				b.inFlight[id] = true
				b.added += int64(len(data))
				if err := b.uploads.put(id, c); err != nil {
					validate.Close()
					return false, err
				}
			}
		}
		b.advance(int64(len(data)), 0)
	}
	st := validate.Close()

	if afterReadHook != nil {
		afterReadHook(path)
	}
	if !unchanged(path, e, size) {
		b.advance(-size, 0)
		return false, nil
	}
	e.SHA256 = hex.EncodeToString(sum.Sum(nil))
	e.Chunks = refs
	e.LightRAG = st
	return true, nil
}

func (b *builder) advance(bytes int64, files int) {
	if b.opts.Progress == nil {
		return
	}
	b.progress.Bytes += bytes
	b.progress.Files += files
	b.opts.Progress(b.progress)
}

// walk lists dir's entries (files, directories, symlinks), sorted by path,
// skipping LightRAG's transient files. Symlinks are recorded, not followed.
func walk(dir string) ([]repo.FileEntry, error) {
	var entries []repo.FileEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil // removed while walking
			}
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if lightrag.IsTransient(rel) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		e := repo.FileEntry{Path: filepath.ToSlash(rel), Mode: uint32(info.Mode().Perm()), MTime: info.ModTime().UTC(), Inode: inode(info)}
		switch {
		case info.Mode().IsRegular():
			e.Type, e.Size = repo.TypeFile, info.Size()
		case info.IsDir():
			e.Type = repo.TypeDir
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Type, e.Target = repo.TypeSymlink, target
		default:
			return nil // sockets, devices, pipes: not graph data
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", dir, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// afterReadHook lets tests change a file between reading it and checking
// that it did not change.
var afterReadHook func(path string)

// racyWindow: file times have coarse granularity (a few milliseconds), so
// a file modified this recently may still be being written with the same
// mtime; such a file is looked at once more after racyPause.
const (
	racyWindow = time.Second
	racyPause  = 50 * time.Millisecond
)

// unchanged reports whether the file at path is still what e describes and
// what was read (size bytes): same inode, size and mtime.
func unchanged(path string, e *repo.FileEntry, size int64) bool {
	same := func() bool {
		after, err := os.Lstat(path)
		return err == nil && after.Size() == size && size == e.Size &&
			after.ModTime().Equal(e.MTime) && inode(after) == e.Inode
	}
	if !same() {
		return false
	}
	if time.Since(e.MTime) < racyWindow {
		time.Sleep(racyPause)
		return same()
	}
	return true
}

func restat(path string, e *repo.FileEntry) error {
	info, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("%s disappeared while it was read: %w", e.Path, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s stopped being a regular file while it was read", e.Path)
	}
	e.Size, e.MTime, e.Inode, e.Mode = info.Size(), info.ModTime().UTC(), inode(info), uint32(info.Mode().Perm())
	return nil
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
	for range max(workers, runtime.GOMAXPROCS(0)) {
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
