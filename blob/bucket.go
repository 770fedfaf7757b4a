package blob

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	gcblob "gocloud.dev/blob"
)

// Options configure a Bucket.
type Options struct {
	// Location names the store in errors and logs ("s3://bucket/prefix").
	// It must not carry secrets.
	Location string
	// Classify teaches the layer provider error codes gocloud leaves as
	// Unknown. Optional.
	Classify Classifier
	// Local marks a bucket opened by gocloud's fileblob with temporary files
	// next to their targets (no_tmp_dir) and no sidecar metadata. fileblob
	// renames without fsync and checks-then-renames for IfNotExist, which is
	// not atomic across processes; with Local set, Put fsyncs the data before
	// it is published, and an IfAbsent Put publishes with a hard link, which
	// the kernel creates atomically or refuses with EEXIST.
	Local bool
	// Root is the directory of a Local bucket.
	Root string
	// Release, when set, is called by Close instead of closing the gocloud
	// bucket: for buckets shared between Stores (mem) or clients the
	// provider owns (a GCS client made for an emulator endpoint).
	Release func() error
}

// Bucket is the Store over a gocloud *blob.Bucket. Providers open the
// bucket; Bucket translates errors and closes the gaps some drivers leave.
type Bucket struct {
	b    *gcblob.Bucket
	opts Options
}

var _ Store = (*Bucket)(nil)

// New wraps b. The Bucket owns b and closes it in Close.
func New(b *gcblob.Bucket, opts Options) *Bucket {
	return &Bucket{b: b, opts: opts}
}

// Location implements Store.
func (s *Bucket) Location() string { return s.opts.Location }

// Put implements Store.
func (s *Bucket) Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error {
	if opts == nil {
		opts = &PutOptions{}
	}
	if err := s.put(ctx, key, r, opts); err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

func (s *Bucket) put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error {
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	// Cancelling wctx before Close is how a gocloud write is abandoned.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var tmp *os.File
	wopts := &gcblob.WriterOptions{ContentType: contentType, IfNotExist: opts.IfAbsent && !s.opts.Local}
	if s.opts.Local {
		wopts.BeforeWrite = func(as func(any) bool) error {
			if !as(&tmp) {
				return errors.New("the bucket is marked Local but its driver is not fileblob")
			}
			return nil
		}
	}
	w, err := s.b.NewWriter(wctx, key, wopts)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		_ = w.Close()
		return err
	}
	_, plain := s.localPath(key)
	deferSync := s.opts.Local && opts.DeferSync && !opts.IfAbsent && plain
	if deferSync {
		// Start putting the data on disk now; Sync waits for it.
		StartWriteback(tmp, 0, 0)
	}
	if s.opts.Local && !deferSync {
		if err := tmp.Sync(); err != nil {
			cancel()
			_ = w.Close()
			return err
		}
		if opts.IfAbsent {
			linkErr := publishByLink(tmp.Name())
			// Abandon fileblob's own rename: it removes its temporary file.
			cancel()
			_ = w.Close()
			return linkErr
		}
	}
	return w.Close()
}

// Prepare implements Preparer: a Local bucket creates the directories
// ahead, so that writers do not each create them (creating a directory
// costs about as much as writing a chunk here).
func (s *Bucket) Prepare(ctx context.Context, prefixes []string) error {
	if !s.opts.Local || s.opts.Root == "" {
		return nil
	}
	for _, p := range prefixes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(s.opts.Root, filepath.FromSlash(p)), 0o755); err != nil {
			return &Error{Op: "prepare", Location: s.opts.Location, Key: p, Err: err}
		}
	}
	return nil
}

// Sync implements Syncer: it fsyncs the files of keys (written with
// DeferSync), then their directories, which hold the renames.
func (s *Bucket) Sync(ctx context.Context, keys []string) error {
	if !s.opts.Local || len(keys) == 0 {
		return nil
	}
	dirs := map[string]bool{}
	paths := make([]string, 0, len(keys))
	for _, k := range keys {
		p, ok := s.localPath(k)
		if !ok {
			continue // Put did not defer it: durable already
		}
		paths = append(paths, p)
		dirs[filepath.Dir(p)] = true
	}
	err := fsyncAll(ctx, paths, syncFile)
	if err == nil {
		dirList := make([]string, 0, len(dirs))
		for d := range dirs {
			dirList = append(dirList, d)
		}
		err = fsyncAll(ctx, dirList, syncDir)
	}
	if err != nil {
		return &Error{Op: "sync", Location: s.opts.Location, Err: err}
	}
	return nil
}

// localPath is where a Local bucket keeps key, for keys fileblob stores
// without escaping (no control characters, "../", "//" or trailing "/");
// ok is false for others, which are then never deferred.
func (s *Bucket) localPath(key string) (path string, ok bool) {
	if !s.opts.Local || s.opts.Root == "" || key == "" || strings.HasSuffix(key, "/") ||
		strings.Contains(key, "../") || strings.Contains(key, "//") {
		return "", false
	}
	for _, c := range key {
		if c < 32 || (os.PathSeparator != '/' && strings.ContainsRune(`\<>:"|?*`, c)) {
			return "", false
		}
	}
	return filepath.Join(s.opts.Root, filepath.FromSlash(key)), true
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

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("make %s durable: %w", filepath.Base(path), err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("make %s durable: %w", filepath.Base(path), err)
	}
	return nil
}

// fileblobTemp matches the temporary names fileblob (no_tmp_dir) gives a file
// it is writing: "<final path>.<hex nanoseconds>.tmp".
var fileblobTemp = regexp.MustCompile(`^(.+)\.[0-9a-f]+\.tmp$`)

// publishByLink makes the fully written temporary file visible under its
// final name, atomically, only when that name is free.
func publishByLink(tmpPath string) error {
	m := fileblobTemp.FindStringSubmatch(tmpPath)
	if m == nil {
		return fmt.Errorf("unexpected fileblob temporary file name %q; refusing a non-atomic create", tmpPath)
	}
	final := m[1]
	if err := os.Link(tmpPath, final); err != nil {
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.EEXIST) {
			return ErrExists
		}
		return err
	}
	return syncDir(filepath.Dir(final))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// Get implements Store.
func (s *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, s.fail("get", key, fmt.Errorf("%w: negative offset %d", ErrInvalid, offset))
	}
	r, err := s.b.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	return &readCloser{r: r, size: r.Size(), fail: func(err error) error { return s.fail("get", key, err) }}, nil
}

// readCloser reports read errors the same way Get reports open errors.
type readCloser struct {
	r    io.ReadCloser
	size int64
	fail func(error) error
}

// Size is the number of bytes the reader will return.
func (rc *readCloser) Size() int64 { return rc.size }

func (rc *readCloser) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	if err != nil && err != io.EOF {
		err = rc.fail(err)
	}
	return n, err
}

func (rc *readCloser) Close() error { return rc.r.Close() }

// Stat implements Store.
func (s *Bucket) Stat(ctx context.Context, key string) (Attributes, error) {
	a, err := s.b.Attributes(ctx, key)
	if err != nil {
		return Attributes{}, s.fail("stat", key, err)
	}
	return Attributes{Size: a.Size, ModTime: a.ModTime, ETag: a.ETag}, nil
}

// List implements Store.
func (s *Bucket) List(ctx context.Context, opts ListOptions) ([]Object, string, error) {
	token := gcblob.FirstPageToken
	if opts.Token != "" {
		var err error
		if token, err = base64.RawURLEncoding.DecodeString(opts.Token); err != nil {
			return nil, "", s.fail("list", opts.Prefix, fmt.Errorf("%w: malformed page token", ErrInvalid))
		}
	}
	size := opts.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	page, next, err := s.b.ListPage(ctx, token, size, &gcblob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	// fileblob reads a directory, then stats each entry: a file renamed or
	// removed in between (another process's write in progress) fails the
	// whole page with NotFound. Listing again sees a settled directory.
	for attempt := 0; s.opts.Local && attempt < 20 && err != nil && errors.Is(classify(err, nil), ErrNotFound); attempt++ {
		page, next, err = s.b.ListPage(ctx, token, size, &gcblob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	}
	if err != nil && err != io.EOF {
		return nil, "", s.fail("list", opts.Prefix, err)
	}
	objects := make([]Object, 0, len(page))
	for _, o := range page {
		if s.opts.Local && !o.IsDir && fileblobTemp.MatchString(o.Key) {
			continue // a write in progress, not an object yet
		}
		objects = append(objects, Object{Key: o.Key, Size: o.Size, ModTime: o.ModTime, IsDir: o.IsDir})
	}
	return objects, base64.RawURLEncoding.EncodeToString(next), nil
}

// Delete implements Store.
func (s *Bucket) Delete(ctx context.Context, key string) error {
	err := s.b.Delete(ctx, key)
	if err != nil && !errors.Is(classify(err, s.opts.Classify), ErrNotFound) {
		return s.fail("delete", key, err)
	}
	return nil
}

// Copy implements Store.
func (s *Bucket) Copy(ctx context.Context, dstKey, srcKey string) error {
	if err := s.b.Copy(ctx, dstKey, srcKey, nil); err != nil {
		return s.fail("copy", srcKey+" -> "+dstKey, err)
	}
	return nil
}

// Close implements Store.
func (s *Bucket) Close() error {
	if s.opts.Release != nil {
		return s.opts.Release()
	}
	return s.b.Close()
}

// Probe asks the provider whether the bucket exists and the credentials
// reach it, within timeout. It returns nil, or a *Error wrapping
// ErrNotFound (no such bucket), ErrPermission or ErrUnavailable.
func (s *Bucket) Probe(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := s.b.IsAccessible(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		return &Error{Op: "probe", Location: s.opts.Location, Kind: ErrUnavailable,
			Err: fmt.Errorf("no answer within %s", timeout)}
	case err != nil:
		e := s.fail("probe", "", err).(*Error)
		if e.Kind == nil {
			e.Kind = ErrUnavailable
		}
		return e
	case !ok:
		return &Error{Op: "probe", Location: s.opts.Location, Kind: ErrNotFound, Err: errors.New("the bucket does not exist")}
	}
	return nil
}

// fail wraps err into an *Error with its category.
func (s *Bucket) fail(op, key string, err error) error {
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	kind := classify(err, s.opts.Classify)
	if errors.Is(err, ErrExists) || errors.Is(err, ErrInvalid) {
		kind = nil // the sentinel is already in the chain
	}
	return &Error{Op: op, Location: s.opts.Location, Key: key, Kind: kind, Err: err}
}
