// Package mem opens in-process repositories ("mem://name") for tests and
// demos. Every Store opened on one name in a process shares the same data;
// nothing survives the process.
package mem

import (
	"context"
	"net/url"
	"sync"

	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/internal/params"
)

// Scheme is the URL scheme of this provider.
const Scheme = "mem"

// Config names an in-process bucket. Name and Prefix together select one
// bucket: mem://a/x and mem://a/y are separate.
type Config struct {
	Name   string `json:"name" yaml:"name"`
	Prefix string `json:"prefix" yaml:"prefix"`
}

// ParseURL reads mem://name[/prefix].
func ParseURL(u *url.URL) (Config, error) {
	if _, err := params.Parse(u); err != nil {
		return Config{}, err
	}
	name, prefix, err := params.BucketAndPrefix(u)
	if err != nil {
		return Config{}, err
	}
	return Config{Name: name, Prefix: prefix}, nil
}

var (
	mu      sync.Mutex
	buckets = map[Config]*gcblob.Bucket{}
)

// Open returns a Store over the named in-process bucket, creating it on
// first use.
func Open(_ context.Context, cfg Config) (*blob.Bucket, error) {
	mu.Lock()
	defer mu.Unlock()
	b, ok := buckets[cfg]
	if !ok {
		b = memblob.OpenBucket(nil)
		buckets[cfg] = b
	}
	loc := Scheme + "://" + cfg.Name
	if cfg.Prefix != "" {
		loc += "/" + cfg.Prefix
	}
	// The bucket outlives each Store: closing one must not close the others.
	return blob.New(b, blob.Options{Location: loc, Release: func() error { return nil }}), nil
}

// OpenURL parses u and opens it.
func OpenURL(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}
