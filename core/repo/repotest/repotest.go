// Package repotest holds helpers for tests of code built on repositories.
package repotest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// EditConfig rewrites the config of the repository in store through edit,
// without its checksum (as a hand edit, or a config from before checksums,
// would be). Numbers stay exact: the chunker's seed is a uint64.
func EditConfig(t testing.TB, store blob.Store, edit func(cfg map[string]any)) {
	t.Helper()
	ctx := context.Background()
	raw, err := blob.ReadAll(ctx, store, repo.ConfigKey)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	delete(cfg, "checksum")
	edited, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := blob.PutBytes(ctx, store, repo.ConfigKey, edited, nil); err != nil {
		t.Fatal(err)
	}
}

// AsFormat2 makes the new, empty repository in store one of format 2
// (packs, chunks named with SHA-256), as a release before format 3 made.
func AsFormat2(t testing.TB, store blob.Store) {
	t.Helper()
	EditConfig(t, store, func(cfg map[string]any) {
		cfg["version"] = 2
		delete(cfg, "chunk_ids")
	})
}
