package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/core/chunker"
	"github.com/graphkeep/graphkeep/core/lightrag"
	"github.com/graphkeep/graphkeep/core/repo"
)

// A snapshot is one instant of the graph's directory. LightRAG writes its
// stores one after another (>= 1.5 by replacing each file with a rename,
// < 1.5 in place) with no transaction across them, so a backup that reads
// the files in turn can store files from different moments. The cut:
//
//  1. waits until nothing in the graph has been written for Options.Quiet
//     (and LightRAG's pipeline, when configured, is not busy);
//  2. opens every file, then lists the directory again: when every path
//     still names the file that was opened, the open files are the
//     directory's state at that instant (a rename after it does not change
//     what an open descriptor reads);
//  3. reads the files from those descriptors, and checks none was written
//     in place meanwhile (size and mtime unchanged);
//  4. checks LightRAG's cross-file invariants on what it read; when they do
//     not hold it waits for the next quiet moment and cuts again, until
//     Options.MaxWait passes, then keeps the cut marked mid-ingestion.
//
// A cut that fails 2 or 3 is never stored: it is taken again.

// cut is the state a backup keeps.
type cut struct {
	entries     []repo.FileEntry
	validation  map[string]*lightrag.FileStats
	consistency *repo.Consistency
	// A graph in PostgreSQL: where its tables came from, where each kind
	// of store is, the stores kept elsewhere (not compared), and the
	// tables each store's invariants read.
	postgres *repo.PostgresSource
	stores   []repo.Store
	missing  []string
	names    map[string]string
}

// errMoved: the directory changed during the cut; moved names the path.
type errMoved struct{ path, what string }

func (e *errMoved) Error() string { return e.path + " " + e.what }

// recentProblemWindow: a file that does not parse and was written this
// recently may be in the middle of an in-place rewrite; it is read again,
// never stored, while the wait allows.
const recentProblemWindow = 5 * time.Second

// take cuts the graph until the cut is single-instant and either
// consistent or out of time.
func (b *builder) take(start time.Time) (*cut, error) {
	deadline := start.Add(b.opts.MaxWait)
	if b.opts.instant != "" {
		// The instant is shared and was taken at a quiet moment: cut it
		// once, as it is.
		b.opts.Quiet, deadline = -1, start
	}
	moved := 0
	for attempt := 1; ; attempt++ {
		quiet, lastWrite, pipeline, err := b.settle(deadline)
		if err != nil {
			return nil, err
		}
		cutStart := time.Now()
		c, err := b.cutGraph()
		var mv *errMoved
		if errors.As(err, &mv) {
			if moved++; moved >= b.opts.Attempts {
				return nil, fmt.Errorf("%s: %w (%d attempts): LightRAG is writing this graph right now; back up again when it is idle", mv.path, ErrUnstable, moved)
			}
			if err := b.sleep(b.opts.Settle * time.Duration(moved)); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		now := time.Now()
		checked := dropMissing(lightrag.Check(c.validation), c.missing)
		renameSides(checked, c.names)
		cons := &repo.Consistency{
			SingleInstant: true,
			Invariants:    invariants(checked),
			QuietMS:       quiet.Milliseconds(),
			WaitedMS:      cutStart.Sub(start).Milliseconds(),
			CutMS:         now.Sub(cutStart).Milliseconds(),
			Attempts:      attempt,
			LastWrite:     newestWrite(c.entries, lastWrite).UTC(),
			Pipeline:      pipeline,
		}
		c.consistency = cons
		cons.Consistent = len(cons.Broken()) == 0
		late := !now.Before(deadline)
		if torn := recentProblem(c, now); torn != "" {
			if late {
				return nil, fmt.Errorf("%s: %w: it does not parse and was written %s ago (LightRAG may be rewriting it in place); back up again when it is idle",
					torn, ErrUnstable, now.Sub(c.mtime(torn)).Round(time.Millisecond))
			}
			until := c.mtime(torn).Add(recentProblemWindow)
			if deadline.Before(until) {
				until = deadline
			}
			if err := b.waitForChange(cons.LastWrite, until); err != nil {
				return nil, err
			}
			continue
		}
		if cons.Consistent || hasProblem(c) {
			if cons.Consistent && len(c.missing) > 0 {
				cons.Consistent = false
				cons.Reason = "partial: the workspace keeps " + missingKinds(c.stores) + " elsewhere"
			}
			return c, nil // consistent, or flagged: waiting does not mend a broken file
		}
		// A state LightRAG resumes from (only unfinished documents differ)
		// is kept at once: during a bulk import no other comes for hours.
		// With a quiet window the backup waits for a consistent one first.
		resumable := lightrag.Resumable(c.validation, checked)
		if resumable != nil && !b.silence() {
			cons.Resumable, cons.Resume = true, resume(resumable)
			return c, nil
		}
		// The stores disagree. Waiting helps only while LightRAG may still
		// be finishing: not once the wait is over, the pipeline says it is
		// idle, or the graph has been untouched longer than the whole wait.
		idle := pipeline == "idle" && quiet >= max(b.opts.Quiet, FlushSettle)
		if late || idle || quiet >= b.opts.MaxWait {
			if resumable != nil {
				cons.Resumable, cons.Resume = true, resume(resumable)
				return c, nil
			}
			cons.MidIngestion = true
			switch {
			case idle:
				cons.Reason = "LightRAG's pipeline is idle but its stores disagree (failed or pending documents)"
			case b.opts.instant != "":
				cons.Reason = "the stores disagreed at the instant the checkpoint read its database's workspaces at"
			case late:
				cons.Reason = fmt.Sprintf("the stores still disagreed when the maximum wait (%s) passed", b.opts.MaxWait)
			default:
				cons.Reason = fmt.Sprintf("the stores disagree and the graph has been untouched for %s", quiet.Round(time.Second))
			}
			return c, nil
		}
		if err := b.waitForChange(cons.LastWrite, deadline); err != nil {
			return nil, err
		}
	}
}

// cutGraph takes one cut of the graph's directory, its PostgreSQL
// workspace, or both.
func (b *builder) cutGraph() (*cut, error) {
	if b.pg != nil {
		return b.cutPostgres()
	}
	return b.cutOnce()
}

func missingKinds(stores []repo.Store) string {
	var kinds []string
	for _, s := range stores {
		if s.In == "" {
			kinds = append(kinds, "its "+strings.ReplaceAll(s.Kind, "_", " ")+" store")
		}
	}
	return strings.Join(kinds, " and ")
}

// cutOnce takes one cut: open everything, check the paths still name what
// was opened, read from the descriptors, check nothing was written in
// place.
func (b *builder) cutOnce() (*cut, error) {
	entries, err := walk(b.dir)
	if err != nil {
		return nil, err
	}
	open := make(map[string]*os.File)
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	for i := range entries {
		e := &entries[i]
		if e.Type != repo.TypeFile {
			continue
		}
		f, err := os.Open(filepath.Join(b.dir, filepath.FromSlash(e.Path)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &errMoved{e.Path, "disappeared during the cut"}
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Path, err)
		}
		open[e.Path] = f
		info, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Path, err)
		}
		if !info.Mode().IsRegular() {
			return nil, &errMoved{e.Path, "stopped being a regular file during the cut"}
		}
		setStat(e, info)
	}
	// The instant: every path still names what was opened.
	again, err := walk(b.dir)
	if err != nil {
		return nil, err
	}
	if err := sameState(entries, again); err != nil {
		return nil, err
	}

	c := &cut{entries: entries, validation: map[string]*lightrag.FileStats{}}
	b.progress = Progress{Graph: b.graph}
	for _, e := range entries {
		if e.Type == repo.TypeFile {
			b.progress.TotalFiles++
			b.progress.TotalBytes += e.Size
		}
	}
	for i := range entries {
		e := &entries[i]
		if e.Type != repo.TypeFile {
			continue
		}
		if err := b.file(e, open[e.Path]); err != nil {
			return nil, err
		}
		if afterReadHook != nil {
			afterReadHook(filepath.Join(b.dir, filepath.FromSlash(e.Path)))
		}
		if lightrag.KindOf(e.Path) != "" {
			c.validation[e.Path] = b.validationOf(e)
		}
	}
	// Written in place while it was read? A file modified within the
	// timestamps' granularity may still be being written with the same
	// mtime: look once more after a pause.
	if err := unchangedSince(entries, open); err != nil {
		return nil, err
	}
	if racy(entries) {
		time.Sleep(racyPause)
		if err := unchangedSince(entries, open); err != nil {
			return nil, err
		}
	}
	for _, e := range entries {
		if e.Type == repo.TypeFile {
			b.seen[e.Path] = e
		}
	}
	return c, nil
}

// file fills e's content fields: from the parent snapshot or an earlier
// cut when the file is unchanged (size, mtime, inode), else by reading f.
func (b *builder) file(e *repo.FileEntry, f *os.File) error {
	for _, known := range []map[string]repo.FileEntry{b.seen, b.parent} {
		p, ok := known[e.Path]
		if ok && p.Type == repo.TypeFile && p.Size == e.Size && p.MTime.Equal(e.MTime) && p.Inode == e.Inode &&
			p.Inode != 0 && p.Mode == e.Mode && reusable(e.Path, p.LightRAG) && !b.namesCondemned(p.Chunks) {
			e.SHA256, e.BLAKE3, e.Chunks, e.LightRAG = p.SHA256, p.BLAKE3, p.Chunks, p.LightRAG
			b.reused++
			b.advance(e.Size, 1)
			return nil
		}
	}
	if err := b.read(e, f, lightrag.NewFileStream(e.Path), e.Size, nil); err != nil {
		return err
	}
	b.advance(0, 1)
	return nil
}

// namesCondemned reports whether refs name a chunk a running prune may
// delete and this backup has not stored itself: such a file is read again,
// so the chunk is stored once the prune has ended.
func (b *builder) namesCondemned(refs []repo.ChunkRef) bool {
	if !b.condemned.Any() {
		return false
	}
	for _, c := range refs {
		if !b.inFlight[c.ID] && b.condemned.Has(c.Object()) {
			return true
		}
	}
	return false
}

// validationOf is what the validator knows of e's file: what this backup's
// read of it found (with every name, so a broken invariant can say how many
// each side lacks), else what an earlier backup recorded (fingerprints).
func (b *builder) validationOf(e *repo.FileEntry) *lightrag.FileStats {
	if v, ok := b.validated[e.Path]; ok && v.digest == e.Digest() {
		return v.stats
	}
	return fileStats(e.LightRAG)
}

// validated is one file this backup read and validated.
type validated struct {
	digest string
	stats  *lightrag.FileStats
}

// reusable: an entry whose file did not parse is read again (it may have
// been caught mid-write), as is one without the names the invariants need.
func reusable(path string, fc *repo.FileCounts) bool {
	if fc != nil && fc.Problem != "" {
		return false
	}
	return lightrag.HasNames(path, fileStats(fc))
}

// splitter cuts a stream into chunks (a chunk is valid until the next
// call; io.EOF at the end).
type splitter interface {
	Next() ([]byte, error)
}

// read chunks, hashes, validates (with validate, which it closes) and
// queues the upload of f's content, which must be size bytes (-1: any
// size, which e records). split cuts it (nil: the repository's
// content-defined chunker).
func (b *builder) read(e *repo.FileEntry, f io.Reader, validate *lightrag.Stream, size int64, split splitter) error {
	want := size
	var err error
	if split == nil {
		if b.chunker == nil {
			if b.chunker, err = chunker.New(f, b.repo.ChunkerParams()); err != nil {
				return err
			}
		} else {
			b.chunker.Reset(f)
		}
		split = b.chunker
	}
	sum := b.repo.FileHash()
	var refs []repo.ChunkRef
	size = 0
	for {
		data, err := split.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			validate.Close()
			return fmt.Errorf("read %s: %w", e.Path, err)
		}
		size += int64(len(data))
		sum.Write(data)
		id := b.repo.HashChunk(data)
		ref, known := b.known.Lookup(id)
		if !known {
			ref = repo.ChunkRef{ID: id, Size: len(data)}
		}
		refs = append(refs, ref)
		// A chunk the index knows is condemned when its object is; one it
		// does not know is stored in a new pack, but in a repository without
		// packs it would be stored under its id, which may be condemned.
		if b.condemned.Any() && !b.inFlight[id] && (known || b.packSize == 0) && b.condemned.Has(ref.Object()) {
			// A running prune may delete it: once the prune has ended,
			// store it again.
			if err := b.condemned.Wait(b.ctx); err != nil {
				validate.Close()
				return fmt.Errorf("wait for the running prune: %w", err)
			}
			known = false
		}
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
					return err
				}
			}
		}
		b.advance(int64(len(data)), 0)
	}
	st := validate.Close()
	if want >= 0 && size != want {
		return &errMoved{e.Path, "changed size while it was read"}
	}
	e.Size = size
	b.repo.SetDigest(e, sum.Sum(nil))
	e.Chunks = refs
	e.LightRAG = fileCounts(st)
	if st != nil {
		b.validated[e.Path] = validated{digest: e.Digest(), stats: st}
	}
	return nil
}

func (b *builder) advance(bytes int64, files int) {
	if b.opts.Progress == nil {
		return
	}
	b.progress.Bytes += bytes
	b.progress.Files += files
	b.opts.Progress(b.progress)
}

// sameState reports whether two listings of the directory name the same
// entries; a file must be the same inode with the same size and mtime.
func sameState(opened, now []repo.FileEntry) error {
	if len(opened) != len(now) {
		return &errMoved{diffName(opened, now), "appeared or disappeared during the cut"}
	}
	for i := range opened {
		a, b := &opened[i], &now[i]
		switch {
		case a.Path != b.Path:
			return &errMoved{diffName(opened, now), "appeared or disappeared during the cut"}
		case a.Type != b.Type || a.Target != b.Target:
			return &errMoved{a.Path, "changed type during the cut"}
		case a.Type == repo.TypeFile && (a.Inode != b.Inode || a.Size != b.Size || !a.MTime.Equal(b.MTime)):
			return &errMoved{a.Path, "was replaced or written during the cut"}
		}
	}
	return nil
}

func diffName(a, b []repo.FileEntry) string {
	in := map[string]int{}
	for _, e := range a {
		in[e.Path]++
	}
	for _, e := range b {
		in[e.Path]--
	}
	var names []string
	for p, n := range in {
		if n != 0 {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "a file"
	}
	return strings.Join(names, ", ")
}

// unchangedSince checks every open file still has the size and mtime it
// had when it was opened.
func unchangedSince(entries []repo.FileEntry, open map[string]*os.File) error {
	for _, e := range entries {
		if e.Type != repo.TypeFile {
			continue
		}
		info, err := open[e.Path].Stat()
		if err != nil {
			return fmt.Errorf("read %s: %w", e.Path, err)
		}
		if info.Size() != e.Size || !info.ModTime().Equal(e.MTime) {
			return &errMoved{e.Path, "was written in place while it was read"}
		}
	}
	return nil
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

func racy(entries []repo.FileEntry) bool {
	for _, e := range entries {
		if e.Type == repo.TypeFile && time.Since(e.MTime) < racyWindow {
			return true
		}
	}
	return false
}

func setStat(e *repo.FileEntry, info fs.FileInfo) {
	e.Size, e.MTime, e.Inode, e.Mode = info.Size(), info.ModTime().UTC(), inode(info), uint32(info.Mode().Perm())
}

// recentProblem names a file that does not parse and was written within
// recentProblemWindow.
func recentProblem(c *cut, now time.Time) string {
	for _, e := range c.entries {
		if e.LightRAG != nil && e.LightRAG.Problem != "" && now.Sub(e.MTime) < recentProblemWindow {
			return e.Path
		}
	}
	return ""
}

func hasProblem(c *cut) bool {
	for _, st := range c.validation {
		if st != nil && st.Problem != "" {
			return true
		}
	}
	return false
}

func (c *cut) mtime(path string) time.Time {
	for _, e := range c.entries {
		if e.Path == path {
			return e.MTime
		}
	}
	return time.Time{}
}

// newestWrite is the newest mtime among the stored entries, or fallback.
func newestWrite(entries []repo.FileEntry, fallback time.Time) time.Time {
	var last time.Time
	for _, e := range entries {
		if e.MTime.After(last) {
			last = e.MTime
		}
	}
	if last.IsZero() {
		return fallback
	}
	return last
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
