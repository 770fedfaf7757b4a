package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	gcblob "gocloud.dev/blob"

	"github.com/graphkeep/graphkeep/blob"
)

// Store is a local directory opened through gocloud's fileblob, with the
// gaps fileblob leaves closed:
//
//   - fileblob renames a written file into place without fsync: Store
//     fsyncs the data before it is published and the directory after, or,
//     for writes with DeferSync, in Sync;
//   - fileblob's IfNotExist checks, then renames, which is not atomic
//     across processes: Store publishes a create-if-absent with a hard
//     link, which the kernel makes atomically or refuses with EEXIST;
//   - fileblob lists a directory, then stats each entry: a file renamed or
//     removed in between fails the page; Store lists the tree itself
//     (list.go), skipping what vanished, and hides the temporary files of
//     writes in progress;
//   - directories are made per write: Prepare makes them ahead.
//
// Get, Stat, Delete, Copy and Probe are the portable Bucket's.
type Store struct {
	*blob.Bucket
	driver  *gcblob.Bucket // the same bucket, for writes that need its temporary file
	root    string
	flushes atomic.Int64
}

var (
	_ blob.Store    = (*Store)(nil)
	_ blob.Syncer   = (*Store)(nil)
	_ blob.Preparer = (*Store)(nil)
)

func newStore(b *gcblob.Bucket, root string) *Store {
	return &Store{
		Bucket: blob.New(b, blob.Options{Location: Scheme + "://" + root}),
		driver: b,
		root:   root,
	}
}

// Flushes counts the files and directories this Store has flushed to
// stable storage (fsync): what durability costs, and the proof that it was
// paid.
func (s *Store) Flushes() int64 { return s.flushes.Load() }

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	if opts == nil {
		opts = &blob.PutOptions{}
	}
	if err := s.put(ctx, key, r, opts); err != nil {
		return s.Wrap("put", key, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	if opts.Retain != nil {
		return fmt.Errorf("%w: a local folder cannot lock files against deletion", blob.ErrUnsupported)
	}
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	// Cancelling wctx before Close is how a gocloud write is abandoned
	// (fileblob then removes its temporary file).
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tmp *os.File
	w, err := s.driver.NewWriter(wctx, key, &gcblob.WriterOptions{
		ContentType: contentType,
		BeforeWrite: func(as func(any) bool) error {
			if !as(&tmp) {
				return errors.New("file: the bucket's driver is not fileblob")
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	abandon := func(err error) error {
		cancel()
		_ = w.Close()
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		return abandon(err)
	}
	final, plain := s.path(key)
	if opts.DeferSync && !opts.IfAbsent && plain {
		// Start putting the data on disk now; Sync waits for it.
		blob.StartWriteback(tmp, 0, 0)
		return w.Close()
	}
	if err := s.flush(tmp); err != nil {
		return abandon(err)
	}
	if opts.IfAbsent {
		return abandon(s.publishByLink(tmp.Name()))
	}
	if err := w.Close(); err != nil {
		return err
	}
	if !plain {
		return nil // fileblob escaped the name: its directory is not ours to find
	}
	return s.flushDir(filepath.Dir(final))
}

// Prepare implements blob.Preparer: it creates the directories ahead, so
// that writers do not each create them (creating a directory costs about
// as much as writing a chunk here).
func (s *Store) Prepare(ctx context.Context, prefixes []string) error {
	for _, p := range prefixes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(s.root, filepath.FromSlash(p)), 0o755); err != nil {
			return &blob.Error{Op: "prepare", Location: s.Location(), Key: p, Err: err}
		}
	}
	return nil
}

// Sync implements blob.Syncer: it fsyncs the files of keys (written with
// DeferSync), then their directories, which hold the renames.
func (s *Store) Sync(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	dirs := map[string]bool{}
	paths := make([]string, 0, len(keys))
	for _, k := range keys {
		p, ok := s.path(k)
		if !ok {
			continue // Put did not defer it: durable already
		}
		paths = append(paths, p)
		dirs[filepath.Dir(p)] = true
	}
	err := fsyncAll(ctx, paths, s.flushFile)
	if err == nil {
		dirList := make([]string, 0, len(dirs))
		for d := range dirs {
			dirList = append(dirList, d)
		}
		err = fsyncAll(ctx, dirList, s.flushDir)
	}
	if err != nil {
		return &blob.Error{Op: "sync", Location: s.Location(), Err: err}
	}
	return nil
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, opts blob.ListOptions) ([]blob.Object, string, error) {
	if objects, next, ok, err := s.listNative(ctx, opts); ok {
		return objects, next, err
	}
	objects, next, err := s.Bucket.List(ctx, opts)
	// A file another process renamed or removed between fileblob's reading
	// of the directory and its stat fails the page: listing again sees a
	// settled directory.
	for attempt := 0; attempt < 20 && errors.Is(err, blob.ErrNotFound); attempt++ {
		objects, next, err = s.Bucket.List(ctx, opts)
	}
	if err != nil {
		return nil, "", err
	}
	kept := objects[:0]
	for _, o := range objects {
		if !o.IsDir && fileblobTemp.MatchString(o.Key) {
			continue // a write in progress, not an object yet
		}
		kept = append(kept, o)
	}
	return kept, next, nil
}

// path is where the Store keeps key, for keys fileblob stores without
// escaping (no control characters, "../", "//" or trailing "/"); ok is
// false for others, which are then never deferred.
func (s *Store) path(key string) (path string, ok bool) {
	if key == "" || strings.HasSuffix(key, "/") || strings.Contains(key, "../") || strings.Contains(key, "//") {
		return "", false
	}
	for _, c := range key {
		if c < 32 || (os.PathSeparator != '/' && strings.ContainsRune(`\<>:"|?*`, c)) {
			return "", false
		}
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), true
}

// fileblobTemp matches the temporary names fileblob (no_tmp_dir) gives a file
// it is writing: "<final path>.<hex nanoseconds>.tmp".
var fileblobTemp = regexp.MustCompile(`^(.+)\.[0-9a-f]+\.tmp$`)

// publishByLink makes the fully written temporary file visible under its
// final name, atomically, only when that name is free.
func (s *Store) publishByLink(tmpPath string) error {
	m := fileblobTemp.FindStringSubmatch(tmpPath)
	if m == nil {
		return fmt.Errorf("unexpected fileblob temporary file name %q; refusing a non-atomic create", tmpPath)
	}
	final := m[1]
	if err := os.Link(tmpPath, final); err != nil {
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.EEXIST) {
			return blob.ErrExists
		}
		return err
	}
	return s.flushDir(filepath.Dir(final))
}

func (s *Store) flush(f *os.File) error {
	s.flushes.Add(1)
	return f.Sync()
}

func (s *Store) flushFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("make %s durable: %w", filepath.Base(path), err)
	}
	defer f.Close()
	if err := s.flush(f); err != nil {
		return fmt.Errorf("make %s durable: %w", filepath.Base(path), err)
	}
	return nil
}

func (s *Store) flushDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := s.flush(d); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// fsyncAll runs sync over paths, a few at a time: the file system batches
// concurrent flushes into one journal commit.
func fsyncAll(ctx context.Context, paths []string, sync func(string) error) error {
	const parallel = 8
	errs := make(chan error, len(paths))
	sem := make(chan struct{}, parallel)
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			errs <- err
			break
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if err := sync(p); err != nil {
				errs <- err
			}
		}()
	}
	for range parallel {
		sem <- struct{}{}
	}
	close(errs)
	return <-errs // nil when none failed
}

// RemoveStaleTemps implements blob.TempSweeper: fileblob's temporary files
// under prefix last written more than olderThan ago.
func (s *Store) RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	dir := filepath.Join(s.root, filepath.FromSlash(prefix))
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 && !strings.HasSuffix(prefix, "/") {
		dir = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || !fileblobTemp.MatchString(d.Name()) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.ModTime().After(cutoff) {
			return nil // gone meanwhile, or a write that may still be going
		}
		if err := os.Remove(p); err == nil {
			removed++
		}
		return nil
	})
	return removed, err
}
