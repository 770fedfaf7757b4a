// Package file opens repositories in a local directory ("file:///abs/dir")
// through gocloud's fileblob, with the gaps fileblob leaves in durability,
// atomicity and listing closed by Store.
package file

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"gocloud.dev/blob/fileblob"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/internal/params"
)

// Scheme is the URL scheme of this provider.
const Scheme = "file"

// Config selects a local directory.
type Config struct {
	// Dir is the absolute path of the repository's directory.
	Dir string `json:"dir" yaml:"dir"`
	// Create makes Dir (and its parents) when it does not exist.
	Create bool `json:"create" yaml:"create"`
}

// ParseURL reads file:///abs/dir[?create=true].
func ParseURL(u *url.URL) (Config, error) {
	q, err := params.Parse(u, "create")
	if err != nil {
		return Config{}, err
	}
	if u.Host != "" && u.Host != "localhost" {
		return Config{}, fmt.Errorf("file: %q names host %q; use file:///absolute/path (three slashes)", u.String(), u.Host)
	}
	create, err := q.Bool("create")
	if err != nil {
		return Config{}, err
	}
	return Config{Dir: u.Path, Create: create}, nil
}

// Open opens the directory as a Store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Dir == "" || !filepath.IsAbs(cfg.Dir) {
		return nil, fmt.Errorf("file: repository directory %q is not an absolute path; use file:///absolute/path", cfg.Dir)
	}
	dir := filepath.Clean(cfg.Dir)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) && cfg.Create:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("file: create repository directory: %w", err)
		}
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("file: directory %s does not exist (%w): create it, or add ?create=true to the URL to have it created", dir, blob.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("file: repository directory: %w", err)
	case !info.IsDir():
		return nil, fmt.Errorf("file: %s is not a directory", dir)
	}
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		return nil, fmt.Errorf("file: open %s: %w", dir, err)
	}
	return newStore(b, dir), nil
}

// OpenURL parses u and opens it.
func OpenURL(ctx context.Context, u *url.URL) (*Store, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}
