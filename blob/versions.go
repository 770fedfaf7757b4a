package blob

import (
	"context"
	"time"
)

// ObjectVersion is one version of a key in a versioned bucket: content, or
// a delete marker that hides the versions below it.
type ObjectVersion struct {
	Key          string
	ID           string
	DeleteMarker bool
	Latest       bool
	ModTime      time.Time
	Size         int64
}

// Versioner is a Store over a versioned bucket (S3 with versioning, which
// object lock implies): deletes and overwrites there add versions instead
// of destroying the old ones, which can be read and brought back.
type Versioner interface {
	Store
	// Versioned reports whether the bucket keeps versions.
	Versioned(ctx context.Context) (bool, error)
	// Versions calls fn for every version of every key under prefix, key by
	// key in key order, newest first within a key.
	Versions(ctx context.Context, prefix string, fn func(ObjectVersion) error) error
	// GetVersion reads one version whole.
	GetVersion(ctx context.Context, key, id string) ([]byte, error)
	// DeleteVersion removes one version (a delete marker, or content whose
	// lock allows it).
	DeleteVersion(ctx context.Context, key, id string) error
	// PromoteVersion makes version id of key its current content again (a
	// copy on top, made by the server).
	PromoteVersion(ctx context.Context, key, id string) error
}

// VersionerOf finds the Versioner under s's decorators.
func VersionerOf(s Store) (Versioner, bool) { return Find[Versioner](s) }
