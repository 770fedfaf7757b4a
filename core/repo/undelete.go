package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/problem"
)

// Undelete brings a repository in a versioned bucket back after someone
// with its credentials deleted or overwrote its objects: in such a bucket
// (S3 with versioning; object lock implies it) a delete only adds a marker
// and an overwrite a version on top, so the repository's own versions are
// still there, and under object lock nobody can remove them.
//
// For each durable object (config, keys, manifests, checkpoints, meta,
// chunks) it finds the newest version that is really this repository's
// (the config: one the password unlocks; the others: one that decrypts or
// whose checksum or chunk id matches) and makes it current again: by
// deleting the delete markers above it, or, when forged content lies on
// top, by copying it back on top. Leases, prune records and probes are left
// alone. Deletes graphkeep made itself (forget, prune) are undone too when
// they are newer than Since: pass the time of the attack.

// ErrNotVersioned: the store keeps no versions to bring back.
var ErrNotVersioned = problem.New(problem.Invalid, "not_versioned", "the storage keeps no versions")

// UndeleteOptions say what to bring back.
type UndeleteOptions struct {
	Password string
	// Since: only deletes and overwrites at or after it are undone (zero:
	// all of them).
	Since time.Time
	// DryRun reports what would be done and changes nothing.
	DryRun bool
}

// UndeleteResult says what was (or would be) brought back.
type UndeleteResult struct {
	Checked       int      `json:"checked"`
	Undeleted     []string `json:"undeleted"`
	Restored      []string `json:"restored"`
	Unrecoverable []string `json:"unrecoverable"`
	DryRun        bool     `json:"dry_run"`
}

// durablePrefixes are what a repository needs; leases/, gc/ and probes
// are not brought back.
var durablePrefixes = []string{KeyPrefix, SnapshotPrefix, CheckpointPrefix, MetaPrefix, ChunkPrefix}

// Undelete brings back what was deleted or overwritten in store (see above).
func Undelete(ctx context.Context, store blob.Store, opts UndeleteOptions) (*UndeleteResult, error) {
	v, ok := blob.VersionerOf(store)
	if !ok {
		return nil, fmt.Errorf("%s: %w: only a versioned bucket (S3 with versioning or object lock) keeps what was deleted", store.Location(), ErrNotVersioned)
	}
	if on, err := v.Versioned(ctx); err != nil {
		return nil, err
	} else if !on {
		return nil, fmt.Errorf("%s: %w: versioning is off for this bucket, so deleted objects are gone", store.Location(), ErrNotVersioned)
	}
	res := &UndeleteResult{DryRun: opts.DryRun}
	u := &undeleter{v: v, opts: opts, res: res}

	// The config first: the newest version the password unlocks.
	var cfg Config
	var keys *Keys
	err := u.key(ctx, ConfigKey, func(data []byte) bool {
		c, k, err := configUnlocking(ctx, store, data, opts.Password)
		if err == nil {
			cfg, keys = c, k
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		return res, fmt.Errorf("%s: %w: no version of %s is this repository's and opens with the password", store.Location(), ErrNotARepository, ConfigKey)
	}
	r, err := newRepository(store, cfg, keys, "")
	if err != nil {
		return nil, err
	}
	for _, prefix := range durablePrefixes {
		if err := u.prefix(ctx, prefix, func(key string) func([]byte) bool { return r.authentic(key) }); err != nil {
			return res, err
		}
	}
	return res, nil
}

// configUnlocking parses a config version and checks the password opens it.
func configUnlocking(ctx context.Context, store blob.Store, data []byte, password string) (Config, *Keys, error) {
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil || (cfg.Checksum != "" && cfg.Checksum != configChecksum(cfg)) || !validRepoID(cfg.ID) {
		return Config{}, nil, ErrCorrupt
	}
	keys, _, err := unlock(ctx, store, cfg, password, nil)
	return cfg, keys, err
}

// authentic returns the check that content is this repository's object at
// key.
func (r *Repository) authentic(key string) func([]byte) bool {
	return func(data []byte) bool {
		switch {
		case strings.HasPrefix(key, ChunkPrefix):
			id, err := ParseChunkID(key[strings.LastIndexByte(key, '/')+1:])
			if err != nil {
				return false
			}
			if _, err = r.DecodeChunk(id, data); err == nil {
				return true
			}
			_, err = r.OpenPack(id, data) // a pack of chunks
			return err == nil
		case strings.HasPrefix(key, KeyPrefix):
			var kf keyFile
			return json.Unmarshal(data, &kf) == nil && kf.Wrap != nil
		}
		_, err := r.openObject(data, key)
		return err == nil
	}
}

type undeleter struct {
	v    blob.Versioner
	opts UndeleteOptions
	res  *UndeleteResult
}

// prefix walks every key under prefix, version by version.
func (u *undeleter) prefix(ctx context.Context, prefix string, check func(key string) func([]byte) bool) error {
	var key string
	var versions []blob.ObjectVersion
	flush := func() error {
		if key == "" {
			return nil
		}
		return u.settle(ctx, key, versions, check(key))
	}
	err := u.v.Versions(ctx, prefix, func(ov blob.ObjectVersion) error {
		if ov.Key != key {
			if err := flush(); err != nil {
				return err
			}
			key, versions = ov.Key, nil
		}
		versions = append(versions, ov)
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// key settles one key by itself.
func (u *undeleter) key(ctx context.Context, key string, check func([]byte) bool) error {
	var versions []blob.ObjectVersion
	err := u.v.Versions(ctx, key, func(ov blob.ObjectVersion) error {
		if ov.Key == key {
			versions = append(versions, ov)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return u.settle(ctx, key, versions, check)
}

// settle makes the newest authentic version of key current, when what is
// current is a delete marker or content that is not authentic.
func (u *undeleter) settle(ctx context.Context, key string, versions []blob.ObjectVersion, check func([]byte) bool) error {
	if len(versions) == 0 {
		return nil
	}
	u.res.Checked++
	top := versions[0]
	// The usual case, and the cheap one: one version, current, content.
	if !top.DeleteMarker && len(versions) == 1 {
		if key == ConfigKey { // the config is always read: the caller needs it
			data, err := u.v.GetVersion(ctx, key, top.ID)
			if err != nil {
				return err
			}
			check(data)
		}
		return nil
	}
	if top.ModTime.Before(u.opts.Since) && !top.DeleteMarker && key != ConfigKey {
		return nil // changed before the time asked about: leave it
	}
	for i, ov := range versions {
		if ov.DeleteMarker {
			if ov.ModTime.Before(u.opts.Since) {
				return nil // deleted before the time asked about
			}
			continue
		}
		data, err := u.v.GetVersion(ctx, key, ov.ID)
		if errors.Is(err, blob.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !check(data) {
			continue
		}
		if i == 0 {
			return nil // the current content is authentic
		}
		onlyMarkers := true
		for _, above := range versions[:i] {
			onlyMarkers = onlyMarkers && above.DeleteMarker
		}
		if onlyMarkers {
			u.res.Undeleted = append(u.res.Undeleted, key)
		} else {
			u.res.Restored = append(u.res.Restored, key)
		}
		if u.opts.DryRun {
			return nil
		}
		if onlyMarkers {
			for _, m := range versions[:i] {
				if err := u.v.DeleteVersion(ctx, key, m.ID); err != nil {
					return fmt.Errorf("remove the delete marker over %s: %w", key, err)
				}
			}
			return nil
		}
		if err := u.v.PromoteVersion(ctx, key, ov.ID); err != nil {
			return fmt.Errorf("bring back %s: %w", key, err)
		}
		return nil
	}
	u.res.Unrecoverable = append(u.res.Unrecoverable, key)
	return nil
}
