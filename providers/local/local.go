// Package local opens the storage of local repository URLs (file:// and
// mem://) exactly as package providers does, without linking the cloud
// providers' SDKs: tests of core and api open their repositories through
// it, so their test binaries (fuzzed ones among them) stay small.
package local

import (
	"context"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/file"
	"github.com/graphkeep/graphkeep/providers/mem"
	"github.com/graphkeep/graphkeep/providers/registry"
)

var local = registry.Registry{
	file.Scheme: registry.Store(file.OpenURL),
	mem.Scheme:  registry.Store(mem.OpenURL),
}

// Options tune the decorators Open adds.
type Options = registry.Options

// Open opens a file:// or mem:// URL as providers.Open does.
func Open(ctx context.Context, rawURL string, opts Options) (blob.Store, error) {
	return local.Open(ctx, rawURL, opts)
}
