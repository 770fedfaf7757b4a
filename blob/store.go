// Package blob is graphkeep's portable storage layer: a narrow Store
// interface, one implementation over a gocloud *blob.Bucket (Bucket),
// decorators that add retries (Retrying) and request accounting (Counting),
// and free functions that work over any Store. Nothing here knows one
// provider from another: a provider whose driver needs more (a local
// folder's fsync and atomic create) wraps Bucket in its own package.
//
// Every error a Store returns that matters to callers wraps one of the
// sentinels in errors.go, so callers test with errors.Is and never look at a
// provider's own error types.
package blob

import (
	"context"
	"io"
	"time"
)

// Store is a flat key space of immutable-once-written objects.
//
// Keys are UTF-8 strings; "/" separates levels for List with a Delimiter.
// Implementations are safe for concurrent use.
type Store interface {
	// Put stores the content of r under key. The object becomes visible only
	// when the whole content is stored: a failed or cancelled Put leaves
	// nothing visible. With opts.IfAbsent, Put fails with ErrExists when key
	// already exists, and exactly one of several concurrent writers wins.
	// If r implements io.Seeker, a retrying Store may rewind it and try again.
	Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error

	// Get opens key for reading from offset. length < 0 reads to the end.
	// It fails with ErrNotFound when key does not exist. The caller closes
	// the reader.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)

	// Stat returns the attributes of key, or ErrNotFound.
	Stat(ctx context.Context, key string) (Attributes, error)

	// List returns one page of the objects whose keys start with
	// opts.Prefix, in key order, and the token for the next page
	// ("" when there is none).
	List(ctx context.Context, opts ListOptions) (objects []Object, next string, err error)

	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// Copy copies srcKey to dstKey inside this store without moving the
	// bytes through this process where the provider allows it.
	Copy(ctx context.Context, dstKey, srcKey string) error

	// Location names the store for people ("s3://bucket/prefix"); it never
	// carries secrets.
	Location() string

	// Close releases the store's resources.
	Close() error
}

// PutOptions changes how Put writes. A nil *PutOptions is the zero value.
type PutOptions struct {
	// IfAbsent makes the write fail with ErrExists when the key exists.
	IfAbsent bool
	// ContentType is recorded where the provider keeps it. Default
	// "application/octet-stream".
	ContentType string
	// DeferSync lets a store that makes each write durable itself (a local
	// folder: fsync) return before the content is on disk; the object is
	// durable once Sync(ctx, store, keys) with its key returns. Visibility is
	// unchanged: the object still appears whole or not at all. Stores whose
	// writes are durable when acknowledged (object stores) ignore it, as do
	// IfAbsent writes.
	DeferSync bool
	// Retain locks the object until Retain.Until (see Retention); stores
	// that cannot lock fail with ErrUnsupported.
	Retain *Retention
}

// Attributes describe a stored object.
type Attributes struct {
	Size    int64
	ModTime time.Time
	ETag    string
}

// ListOptions selects what List returns.
type ListOptions struct {
	// Prefix restricts the listing to keys starting with it.
	Prefix string
	// Delimiter, when set (usually "/"), groups keys that share the part of
	// the key up to the next delimiter after Prefix into one Object with
	// IsDir set.
	Delimiter string
	// PageSize is the largest page returned; 0 means DefaultPageSize.
	PageSize int
	// Token continues a listing; "" starts it.
	Token string
	// KeysOnly says the caller needs only the keys: a store for which size
	// and time cost extra (a local folder stats each file) may leave them
	// zero. Stores that have them for free fill them anyway.
	KeysOnly bool
}

// DefaultPageSize is the page size List uses when ListOptions.PageSize is 0.
const DefaultPageSize = 1000

// Object is one entry of a listing.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
	// IsDir marks a common prefix when listing with a Delimiter.
	IsDir bool
}

// Syncer is implemented by stores that can defer durability (see
// PutOptions.DeferSync).
type Syncer interface {
	// Sync makes the objects at keys, written with DeferSync, durable.
	Sync(ctx context.Context, keys []string) error
}

// Sync makes the objects at keys, written with DeferSync by the caller,
// durable: it finds the Syncer under any decorators. Stores without one
// have nothing to do. The caller names its own keys, so a write another
// caller left unsynced never fails (or slows) this one.
func Sync(ctx context.Context, s Store, keys []string) error {
	if syncer, ok := Find[Syncer](s); ok {
		return syncer.Sync(ctx, keys)
	}
	return nil
}

// Preparer is implemented by stores that keep key prefixes as directories.
type Preparer interface {
	// Prepare creates the directories for prefixes ("chunks/00/") ahead.
	Prepare(ctx context.Context, prefixes []string) error
}

// Prepare creates the directories for key prefixes ahead where s keeps
// them (a local folder); elsewhere it does nothing.
func Prepare(ctx context.Context, s Store, prefixes []string) error {
	if p, ok := Find[Preparer](s); ok {
		return p.Prepare(ctx, prefixes)
	}
	return nil
}

// Unwrapper is implemented by decorators so callers can reach the Store they
// wrap (for example to find the Counting layer for cost reports).
type Unwrapper interface {
	Unwrap() Store
}

// Find returns the first layer of s, from the outside in through
// decorators, that is a T.
func Find[T any](s Store) (T, bool) {
	for s != nil {
		if t, ok := s.(T); ok {
			return t, true
		}
		u, ok := s.(Unwrapper)
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero T
	return zero, false
}

// TempSweeper is a Store whose interrupted writes can leave temporary files
// behind (a local folder: a process killed mid-write leaves its temporary
// file, which no reader sees and nothing else removes).
type TempSweeper interface {
	// RemoveStaleTemps removes, under prefix, the temporary files of writes
	// begun more than olderThan ago (their writers are gone), and says how
	// many it removed.
	RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Duration) (int, error)
}
