package file

import (
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/graphkeep/graphkeep/blob"
)

// listNative lists the directory tree itself, as fileblob would list it
// (same keys, order, sizes, times, delimiter and page tokens), at a
// fraction of the cost:
//
//   - fileblob tries to open an attribute sidecar for every file; there
//     are none (MetadataDontWrite), and listNative does not look;
//   - with ListOptions.KeysOnly it does not stat files at all;
//   - fileblob walks the whole tree from the start for every page and
//     skips what sorts before the token; listNative descends only into the
//     directories that can hold keys after it, so listing n keys costs
//     O(n), not O(n^2 / page size) (1,000,000 chunks: 1,000 pages).
//
// It returns ok=false for what it does not handle the same way (a
// delimiter other than "/", names fileblob escaped): List then asks
// fileblob.
func (s *Store) listNative(ctx context.Context, opts blob.ListOptions) (objects []blob.Object, next string, ok bool, err error) {
	if opts.Delimiter != "" && opts.Delimiter != "/" {
		return nil, "", false, nil
	}
	if os.PathSeparator != '/' || strings.Contains(opts.Prefix, "__0x") {
		return nil, "", false, nil
	}
	var after string
	if opts.Token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(opts.Token)
		if err != nil {
			return nil, "", true, &blob.Error{Op: "list", Location: s.Location(), Key: opts.Prefix, Err: blob.ErrInvalid}
		}
		after = string(raw)
	}
	size := opts.PageSize
	if size <= 0 {
		size = blob.DefaultPageSize
	}
	l := &lister{ctx: ctx, prefix: opts.Prefix, delimited: opts.Delimiter != "", after: after, size: size, keysOnly: opts.KeysOnly}
	dir := ""
	if i := strings.LastIndexByte(opts.Prefix, '/'); i >= 0 {
		dir = opts.Prefix[:i+1]
	}
	if strings.Contains(dir, "//") || strings.Contains(dir, "../") || strings.HasPrefix(dir, "/") {
		return nil, "", false, nil
	}
	err = l.walk(filepath.Join(s.root, filepath.FromSlash(dir)), dir)
	switch {
	case errors.Is(err, errEscaped):
		return nil, "", false, nil
	case errors.Is(err, errPageFull):
		next = base64.RawURLEncoding.EncodeToString([]byte(l.out[len(l.out)-1].Key))
	case err != nil:
		return nil, "", true, &blob.Error{Op: "list", Location: s.Location(), Key: opts.Prefix, Err: err}
	}
	return l.out, next, true, nil
}

var (
	errPageFull = errors.New("page full")
	errEscaped  = errors.New("a name fileblob escaped")
)

type lister struct {
	ctx       context.Context
	prefix    string
	delimited bool
	after     string // the last key of the previous page
	size      int
	keysOnly  bool // no stat per file (ListOptions.KeysOnly)
	out       []blob.Object
}

type listEntry struct {
	sortKey string // the key, or for a directory the key plus "/"
	entry   fs.DirEntry
}

// walk lists the directory path, whose keys start with keyDir ("" or ending
// in "/"), in key order.
func (l *lister) walk(path, keyDir string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	dirents, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // nothing there, or removed meanwhile
	}
	if err != nil {
		return err
	}
	entries := make([]listEntry, 0, len(dirents))
	for _, d := range dirents {
		name := d.Name()
		if strings.Contains(name, "__0x") {
			return errEscaped
		}
		key := keyDir + name
		if d.IsDir() {
			key += "/"
			// Only directories that can hold keys under the prefix.
			if !strings.HasPrefix(key, l.prefix) && !strings.HasPrefix(l.prefix, key) {
				continue
			}
		} else {
			if !strings.HasPrefix(key, l.prefix) || strings.HasSuffix(name, ".attrs") || fileblobTemp.MatchString(name) {
				continue
			}
		}
		entries = append(entries, listEntry{key, d})
	}
	// Keys sort as bytes; a directory's keys all start with its name and
	// "/", so it sorts as that ("a-b" < "a/x" < "a0").
	slices.SortFunc(entries, func(a, b listEntry) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, e := range entries {
		if !e.entry.IsDir() {
			if l.after != "" && e.sortKey <= l.after {
				continue
			}
			if l.keysOnly && e.entry.Type().IsRegular() {
				if err := l.add(blob.Object{Key: e.sortKey}); err != nil {
					return err
				}
				continue
			}
			info, err := e.entry.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since the directory was read
			}
			if err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				continue
			}
			if err := l.add(blob.Object{Key: e.sortKey, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
				return err
			}
			continue
		}
		// Every key below sorts before the token: skip the directory.
		if l.after != "" && e.sortKey < l.after && !strings.HasPrefix(l.after, e.sortKey) {
			continue
		}
		sub := filepath.Join(path, e.entry.Name())
		if l.delimited && len(e.sortKey) > len(l.prefix) {
			// A common prefix, reported once, when it holds a file.
			if l.after != "" && e.sortKey <= l.after {
				continue
			}
			has, err := holdsFile(sub)
			if err != nil {
				return err
			}
			if has {
				if err := l.add(blob.Object{Key: e.sortKey, IsDir: true}); err != nil {
					return err
				}
			}
			continue
		}
		if err := l.walk(sub, e.sortKey); err != nil {
			return err
		}
	}
	return nil
}

func (l *lister) add(o blob.Object) error {
	if len(l.out) == l.size {
		return errPageFull
	}
	l.out = append(l.out, o)
	return nil
}

// holdsFile reports whether the tree at path holds an object (fileblob
// reports a common prefix only for one).
func holdsFile(path string) (bool, error) {
	found := errors.New("found")
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() && d.Type().IsRegular() && !strings.HasSuffix(p, ".attrs") && !fileblobTemp.MatchString(d.Name()) {
			return found
		}
		return nil
	})
	if errors.Is(err, found) {
		return true, nil
	}
	return false, err
}
