// Package providers opens a repository's storage from its URL:
//
//	file:///abs/dir
//	mem://name
//	s3://bucket/prefix?endpoint=...&region=...&use_path_style=true
//	gs://bucket/prefix
//	azblob://container/prefix
//
// Each provider lives in its own package with a Config and an Open; this
// package only dispatches on the scheme and adds the decorators every store
// gets: request accounting, then retries of transient failures.
package providers

import (
	"context"
	"net/url"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/azure"
	"github.com/graphkeep/graphkeep/providers/file"
	"github.com/graphkeep/graphkeep/providers/gcs"
	"github.com/graphkeep/graphkeep/providers/mem"
	"github.com/graphkeep/graphkeep/providers/registry"
	"github.com/graphkeep/graphkeep/providers/s3"
)

// every is the registry of every provider.
var every = registry.Registry{
	file.Scheme:  registry.Store(file.OpenURL),
	mem.Scheme:   registry.Store(mem.OpenURL),
	s3.Scheme:    registry.Store(s3.OpenURL),
	gcs.Scheme:   registry.Store(gcs.OpenURL),
	azure.Scheme: registry.Store(azure.OpenURL),
}

// Options tune the decorators Open adds.
type Options = registry.Options

// Schemes lists the URL schemes Open understands.
func Schemes() []string { return every.Schemes() }

// Open opens the store a repository URL names, wrapped with request
// accounting (blob.StatsOf reads it) and retries.
func Open(ctx context.Context, rawURL string, opts Options) (blob.Store, error) {
	return every.Open(ctx, rawURL, opts)
}

// Parse checks that rawURL is a repository URL of a known scheme. A bare
// absolute path is taken as a file URL.
func Parse(rawURL string) (*url.URL, error) { return every.Parse(rawURL) }

// Decorate adds what Open adds to a store a provider opened directly.
func Decorate(s blob.Store, opts Options) blob.Store { return registry.Decorate(s, opts) }

// Redact returns rawURL fit for logs and errors: user info and any
// secret-looking query values replaced by "REDACTED".
func Redact(rawURL string) string { return registry.Redact(rawURL) }
