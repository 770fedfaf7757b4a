package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/graphkeep/graphkeep/blob"
)

// MetaPrefix holds small documents every graphkeep process shares: targets,
// their last known status, the failover record. Never secrets. Meta
// documents are encoded like everything else (encrypted in an encrypted
// repository).
const MetaPrefix = "meta/"

// ErrMetaMissing: no meta document under that name.
var ErrMetaMissing = errors.New("not found")

// PutMeta stores v as JSON under meta/<name>.
func (r *Repository) PutMeta(ctx context.Context, name string, v any) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return err
	}
	key := MetaPrefix + name
	if err := blob.PutBytes(ctx, r.store, key, r.sealObject(plain, key), &blob.PutOptions{Retain: r.retain()}); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// GetMeta reads meta/<name> into v; ErrMetaMissing when absent.
func (r *Repository) GetMeta(ctx context.Context, name string, v any) error {
	key := MetaPrefix + name
	stored, err := blob.ReadAll(ctx, r.store, key)
	if errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("%s: %w", key, ErrMetaMissing)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	plain, err := r.openObject(stored, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%s: %w: %v", key, ErrCorrupt, err)
	}
	return nil
}

// DeleteMeta removes meta/<name>.
func (r *Repository) DeleteMeta(ctx context.Context, name string) error {
	return r.store.Delete(ctx, MetaPrefix+name)
}

// ListMeta returns the names under meta/<dir>/.
func (r *Repository) ListMeta(ctx context.Context, dir string) ([]string, error) {
	prefix := MetaPrefix + strings.TrimSuffix(dir, "/") + "/"
	var names []string
	err := blob.Walk(ctx, r.store, prefix, func(o blob.Object) error {
		names = append(names, strings.TrimPrefix(o.Key, prefix))
		return nil
	})
	return names, err
}
