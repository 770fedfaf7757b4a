package backup

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/repo"
)

// RestoreOptions tune Restore; zero fields take defaults.
type RestoreOptions struct {
	// Fetches is how many chunks are downloaded ahead at once, shared by
	// the files written at the same time. Default: what the store serves
	// best (blob.RequestsOf: 8 on a local folder, 32 on an object store, or
	// the repository URL's requests=N), at least 12.
	Fetches int
	// Progress, when set, is called as bytes are written.
	Progress func(Progress)
	// AllowNotGood restores a snapshot that is flagged or mid-ingestion;
	// without it Restore refuses one (repo.ErrNotGood).
	AllowNotGood bool
	// Force restores into a directory that holds files but no LightRAG
	// data (ErrNotAGraph without it).
	Force bool
	// AllowOutsideLinks restores symlinks that point outside the
	// destination (ErrOutsideLink without it).
	AllowOutsideLinks bool
	// Downloads, when set, is shared with the other restores running at
	// once (Fetches is then its own); nil: the restore has its own.
	Downloads *Downloads
	// Undo: a restore into a PostgreSQL workspace first snapshots the
	// state it replaces (under Lease), as graph UndoGraph (default: the
	// snapshot's graph; name the destination's graph when it is another).
	Undo      bool
	UndoGraph string
	Lease     repo.LeaseOptions
}

// Downloads is the read-ahead of one or more restores running at once:
// one window of reads in flight, one memory budget and one limit on the
// files written at once, over all of them. Graphs restored together keep
// the store busy where one alone leaves it idle (at its start, while its
// manifest is read and its directory prepared, and at its end, while its
// last big file finishes alone and its tree is checked), and they hold no
// more memory than one.
type Downloads struct {
	fetch   *fetcher
	writers chan struct{} // a slot per file being written
	ahead   chan struct{} // a slot per file opened (being read or written)
}

// NewDownloads returns read-ahead for restores from r; fetches as in
// RestoreOptions.Fetches. Close it once they have returned.
func NewDownloads(ctx context.Context, r *repo.Repository, fetches int) *Downloads {
	if fetches <= 0 {
		fetches = max(12, blob.RequestsOf(r.Store()))
	}
	return &Downloads{fetch: newFetcher(ctx, r, fetches, restoreBuffer),
		writers: make(chan struct{}, parallelFiles), ahead: make(chan struct{}, filesAhead)}
}

// Close stops what is still being read ahead.
func (d *Downloads) Close() { d.fetch.stop() }

// ErrNotAGraph: the destination holds files, none of them LightRAG's.
var ErrNotAGraph = &problem.Error{Kind: problem.NeedsForce, Code: "unprocessable", Remedy: problem.ForceOrNewDest, Msg: "the destination holds files but no LightRAG data"}

// RestoreResult is what Restore did.
type RestoreResult struct {
	Snapshot repo.SnapshotRef `json:"snapshot"`
	Dest     string           `json:"dest"`
	// Previous is where the directory that was at Dest now is ("" when
	// there was none): an undo copy, kept until removed explicitly
	// (RemovePrevious).
	Previous string `json:"previous,omitempty"`
	// Recovered says what was done first about an earlier restore into
	// Dest that a crash interrupted ("" when nothing was).
	Recovered string            `json:"recovered,omitempty"`
	Files     int               `json:"files"`
	Bytes     int64             `json:"bytes"`
	LightRAG  *repo.GraphCounts `json:"lightrag"`
	Duration  time.Duration     `json:"-"`
	// DurationMS is Duration in milliseconds, as every result reports it.
	DurationMS int64 `json:"duration_ms"`
	// PassedOver lists the newer snapshots "latest" did not pick.
	PassedOver []repo.PassedOver `json:"passed_over,omitempty"`
	// Resume names the documents LightRAG takes up again when it starts on
	// the restored graph: the snapshot was resumable (nil otherwise).
	Resume *repo.Resume `json:"resume,omitempty"`
	// NewGraph is the graph Dest is from now on, when the restore made a
	// new directory of the graphs root: later backups, listings and
	// checkpoints take it in ("" otherwise).
	NewGraph string `json:"new_graph,omitempty"`
	// Postgres is what was loaded into PostgreSQL (or, in a dry run,
	// would be), for a snapshot of a graph kept there.
	Postgres *PostgresResult `json:"postgres,omitempty"`
	// Undo is the snapshot of the workspace's state before the restore
	// replaced it: restore it to undo.
	Undo      string `json:"undo_snapshot,omitempty"`
	UndoGraph string `json:"undo_graph,omitempty"`
}

// writebackEvery is how much a restore writes before asking the kernel to
// start putting it on disk.
const writebackEvery = 8 << 20

// restoreBuffer bounds the buffers a restore holds for chunks fetched
// ahead, over all the files it writes at once: a chunk's plaintext, and its
// stored form while it is read and decoded. With 1 MiB chunks, about 16
// ahead: enough to hide a 30 ms round trip at the speed a restore decodes.
// One big file may use all of it.
const restoreBuffer = 32 << 20

// parallelFiles is how many files a restore writes at once.
const parallelFiles = 3

// filesAhead is how many files a restore has open at once: being written,
// or waiting for a writer with their first chunks (firstReads) read. A
// graph's small files are one chunk each; read one at a time per writer,
// each waited a round trip (100 graphs of 2 MB took 15 s at 30 ms).
const (
	filesAhead = 16
	firstReads = 2
)

// ErrOutsideLink: a manifest names a symlink whose target lies outside the
// destination (absolute, or climbing out with "..").
var ErrOutsideLink = &problem.Error{Kind: problem.NeedsForce, Code: "outside_link", Remedy: problem.AllowOutsideLinks,
	Msg: "symlink pointing outside the destination"}

// outsideLinks lists the symlinks of files whose targets leave the
// directory they are restored into, as "path -> target".
func outsideLinks(files []repo.FileEntry) []string {
	var out []string
	for _, f := range files {
		if f.Type != repo.TypeSymlink {
			continue
		}
		t := f.Target
		resolved := path.Clean(path.Join(path.Dir(f.Path), t))
		if t == "" || path.IsAbs(t) || strings.HasPrefix(t, "\\") || resolved == ".." || strings.HasPrefix(resolved, "../") {
			out = append(out, fmt.Sprintf("%s -> %s", f.Path, t))
		}
	}
	return out
}

// ErrUnsafePath: a manifest names a path that would escape the destination.
var ErrUnsafePath = problem.New(problem.Invalid, "unprocessable", "unsafe path in snapshot")

// Restore writes snapshot ref into dest. It builds the graph in a temporary
// directory beside dest, checks every file's SHA-256 and the LightRAG counts
// against the manifest, and only then swaps it into place with renames; the
// directory that was at dest is kept beside it for undo. On any failure dest
// is left exactly as it was.
func Restore(ctx context.Context, r *repo.Repository, ref repo.SnapshotRef, dest string, opts RestoreOptions) (*RestoreResult, error) {
	if opts.Downloads == nil {
		opts.Downloads = NewDownloads(ctx, r, opts.Fetches)
		defer opts.Downloads.Close()
	}
	start := time.Now()
	m, err := r.Cache().Manifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := checkPaths(m.Files); err != nil {
		return nil, fmt.Errorf("snapshot %s/%s: %w", ref.Graph, ref.ID, err)
	}
	if !opts.AllowOutsideLinks {
		if out := outsideLinks(m.Files); len(out) > 0 {
			return nil, fmt.Errorf("snapshot %s/%s holds %d symlinks that point outside the graph directory (%s): LightRAG never writes links, and a store file linked out would make LightRAG overwrite what it points to; refused: %w",
				ref.Graph, ref.ID, len(out), strings.Join(out[:min(len(out), 3)], ", "), ErrOutsideLink)
		}
	}
	if !m.Good() && !opts.AllowNotGood {
		return nil, fmt.Errorf("snapshot %s/%s is %s; LightRAG may not load it: restore it only by its id with flagged snapshots explicitly allowed, or restore the latest good snapshot: %w",
			ref.Graph, ref.ID, m.NotGoodReason(), repo.ErrNotGood)
	}
	dest, err = filepath.Abs(dest)
	if err != nil {
		return nil, err
	}
	parent, base := filepath.Dir(dest), filepath.Base(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", parent, err)
	}
	unlock, err := lockDest(dest)
	if err != nil {
		return nil, err
	}
	defer unlock()
	recovered, err := recoverDest(dest)
	if err != nil {
		return nil, err
	}
	if info, err := os.Lstat(dest); err == nil && !info.IsDir() {
		return nil, fmt.Errorf("restore destination %s exists and is not a directory; choose another destination", dest)
	}
	if !opts.Force {
		if err := checkDest(dest); err != nil {
			return nil, err
		}
	}
	tmp := filepath.Join(parent, stagingPrefix+base+"-"+randomSuffix())
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create temporary directory beside %s: %w", dest, err)
	}
	res := &RestoreResult{Snapshot: ref, Dest: dest, Recovered: recovered}
	if m.Resumable() {
		res.Resume = m.Consistency.Resume
	}
	if err := writeTree(ctx, r, m, tmp, opts, res); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("restore %s/%s: %w (destination %s untouched)", ref.Graph, ref.ID, err, dest)
	}
	if prev, err := swapIn(tmp, dest); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	} else {
		res.Previous = prev
	}
	res.Duration = time.Since(start)
	res.DurationMS = res.Duration.Milliseconds()
	return res, nil
}

// checkDest refuses a destination directory that holds files but no
// LightRAG store: restoring would move someone's data aside for a graph.
func checkDest(dest string) error {
	entries, err := os.ReadDir(dest)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read restore destination %s: %w", dest, err)
	}
	for _, e := range entries {
		if lightrag.KindOf(e.Name()) != "" {
			return nil
		}
	}
	return fmt.Errorf("restore destination %s: %w (%d entries, e.g. %s); choose an empty or new directory, or force the restore (the directory is kept as an undo copy)",
		dest, ErrNotAGraph, len(entries), entries[0].Name())
}

// PermBits is what a restore applies of a recorded mode: permission bits
// only, never setuid, setgid or sticky.
const PermBits = fs.ModePerm

// checkPaths refuses absolute paths, "..", duplicates, and entries below a
// symlink (writing one would follow the link out of the destination).
func checkPaths(files []repo.FileEntry) error {
	seen := map[string]string{}
	for _, f := range files {
		p := f.Path
		if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0) ||
			path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
			return fmt.Errorf("%w: %q", ErrUnsafePath, p)
		}
		if _, dup := seen[p]; dup {
			return fmt.Errorf("%w: %q appears twice", ErrUnsafePath, p)
		}
		seen[p] = f.Type
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			switch seen[dir] {
			case repo.TypeDir:
			case "":
				// A parent not listed is created as a directory.
			default:
				return fmt.Errorf("%w: %q lies below %q, which is not a directory", ErrUnsafePath, f.Path, dir)
			}
		}
	}
	return nil
}

// writeTree materialises m under dir (empty, just created) and verifies it.
func writeTree(ctx context.Context, r *repo.Repository, m *repo.Manifest, dir string, opts RestoreOptions, res *RestoreResult) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	d := opts.Downloads
	validation := map[string]*lightrag.FileStats{}
	prog := Progress{Graph: m.Graph, TotalFiles: m.Totals.Files, TotalBytes: m.Totals.SizeBytes}
	var mu sync.Mutex // guards validation, prog, res
	// Directories and links first, then file contents, a few at once.
	for _, f := range m.Files {
		if d := path.Dir(f.Path); d != "." {
			if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		}
		name := filepath.FromSlash(f.Path)
		switch f.Type {
		case repo.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		case repo.TypeSymlink:
			if err := root.Symlink(f.Target, name); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		case repo.TypeFile, repo.TypeTable: // tables go to PostgreSQL
		default:
			return fmt.Errorf("%s: unknown entry type %q", f.Path, f.Type)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, f := range m.Files {
		if f.Type != repo.TypeFile {
			continue
		}
		// Files are opened in the manifest's order, their first chunks
		// read, a few ahead of those being written.
		if !takeSlot(gctx, d.ahead) {
			break
		}
		validate := lightrag.NewFileStream(f.Path)
		ff := d.fetch.open(f.Chunks, 1+btoi(validate != nil), firstReads)
		g.Go(func() error {
			defer func() { <-d.ahead }()
			defer ff.close()
			if !takeSlot(gctx, d.writers) {
				validate.Close()
				return gctx.Err()
			}
			defer func() { <-d.writers }()
			st, err := writeFile(root, filepath.FromSlash(f.Path), f, ff, validate, func(n int64) {
				if opts.Progress != nil {
					mu.Lock()
					prog.Bytes += n
					opts.Progress(prog)
					mu.Unlock()
				}
			})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if st != nil {
				validation[f.Path] = st
			}
			res.Files++
			res.Bytes += f.Size
			prog.Files++
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // stopped before every file was started
	}
	// Modes and times last, directories deepest first, so writing inside a
	// directory does not move its mtime again.
	for i := len(m.Files) - 1; i >= 0; i-- {
		f := m.Files[i]
		if f.Type == repo.TypeSymlink || f.Type == repo.TypeTable {
			continue
		}
		name := filepath.FromSlash(f.Path)
		if err := root.Chmod(name, fs.FileMode(f.Mode)&PermBits); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if err := root.Chtimes(name, f.MTime, f.MTime); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	rootMode := fs.FileMode(m.RootMode) & PermBits
	if rootMode == 0 {
		rootMode = 0o755
	}
	if err := os.Chmod(dir, rootMode); err != nil {
		return err
	}
	res.LightRAG = graphCounts(lightrag.Summarize(validation))
	if m.Postgres != nil {
		return nil // a split graph: the counts and invariants span the tables too, checked by their load
	}
	if !res.LightRAG.Equal(m.LightRAG) {
		return fmt.Errorf("LightRAG counts of the restored graph (%v) differ from the snapshot's (%v)", res.LightRAG, m.LightRAG)
	}
	if m.Consistency != nil && m.Consistency.Consistent {
		restored := &repo.Consistency{Invariants: invariants(lightrag.Check(validation))}
		if broken := restored.Broken(); len(broken) > 0 {
			return fmt.Errorf("the restored graph's stores disagree (%s), though the snapshot recorded them consistent: %w", broken[0], repo.ErrCorrupt)
		}
	}
	return nil
}

// takeSlot waits for a free slot; false (and no slot taken) once ctx ends.
func takeSlot(ctx context.Context, slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		if ctx.Err() != nil {
			<-slots
			return false
		}
		return true
	case <-ctx.Done():
		return false
	}
}

// writeFile writes one file from its chunks and checks its content hash.
// Its chunks come from fetch, opened with a consumer for the writer and
// one for validate (nil when the file is not validated), which it closes.
func writeFile(root *os.Root, name string, f repo.FileEntry, fetch *fileFetch, validate *lightrag.Stream, progress func(int64)) (*lightrag.FileStats, error) {
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		validate.Close()
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	defer out.Close()
	sum := fetch.f.repo.FileHash()
	var size, flushed int64
	for c, err := range fetch.chunks() {
		if err != nil {
			validate.Close()
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		data := c.data
		if validate != nil {
			validate.Write(data, c.release)
		}
		size += int64(len(data))
		sum.Write(data)
		_, err := out.Write(data)
		c.release()
		if err != nil {
			validate.Close()
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if size-flushed >= writebackEvery {
			// Start writing to disk now, so the fsync at the end has little
			// left to wait for.
			blob.StartWriteback(out, flushed, size-flushed)
			flushed = size
		}
		progress(int64(len(data)))
	}
	st := validate.Close()
	if err := out.Sync(); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	restored := f
	fetch.f.repo.SetDigest(&restored, sum.Sum(nil))
	if got, want := restored.Digest(), f.Digest(); got != want || size != f.Size {
		if err := fetch.f.findBadChunk(f.Chunks); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		return nil, fmt.Errorf("%s: restored content (%d bytes, %s) does not match the snapshot (%d bytes, %s): %w",
			f.Path, size, got, f.Size, want, repo.ErrCorrupt)
	}
	return st, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // not every file system syncs directories
	return nil
}

// randomSuffixBytes is the entropy of a staging directory's name.
const randomSuffixBytes = 6

func randomSuffix() string {
	var b [randomSuffixBytes]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
