package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/problem"
)

// Passwords. An encrypted repository's master keys are wrapped once in its
// config (the key "config") and once more in each object under keys/, each
// with its own password, salt and KDF parameters. Any of them opens the
// repository; adding, removing or changing a password rewrites one small
// object and never re-encrypts data.
//
// Each change is one atomic write or delete, ordered so that a process
// killed at any point leaves at least one password that works: a change of
// password writes the new key before it removes the old one; the config's
// key is changed by overwriting the config in one write.

// KeyPrefix holds the additional wrapped keys, one object per password.
const KeyPrefix = "keys/"

// ConfigKeyID names the key wrapped in the config.
const ConfigKeyID = "config"

var (
	// ErrKeyInUse: the password that opened the repository cannot remove itself.
	ErrKeyInUse = problem.New(problem.Conflict, "key_in_use", "the key in use")
	// ErrNoSuchKey: no key has that id.
	ErrNoSuchKey = problem.New(problem.NotFound, "no_such_key", "no such key")
	// ErrNotEncrypted: an unencrypted repository has no passwords.
	ErrNotEncrypted = problem.New(problem.Invalid, "not_encrypted", "the repository is not encrypted")
)

// keyFile is one object under keys/: a wrapped copy of the master keys and
// who added it when (stored in the clear: it says nothing secret).
type keyFile struct {
	Version int               `json:"version"`
	Created time.Time         `json:"created"`
	Host    string            `json:"host"`
	Wrap    *EncryptionConfig `json:"wrap"`
}

// KeyInfo describes one password of the repository.
type KeyInfo struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created,omitempty"`
	Host    string    `json:"host,omitempty"`
	// Current marks the key whose password opened this repository.
	Current bool `json:"current"`
}

// KeyID names the key whose password opened the repository ("" when it is
// not encrypted).
func (r *Repository) KeyID() string { return r.keyID }

// unlockWithKeys tries password on every key under keys/, after the
// config's key refused it.
func unlockWithKeys(ctx context.Context, store blob.Store, password string, kc KeyCache) (*Keys, string, error) {
	var found *Keys
	var foundID string
	err := blob.Walk(ctx, store, KeyPrefix, func(o blob.Object) error {
		if found != nil {
			return nil
		}
		kf, err := readKeyFile(ctx, store, o.Key)
		if errors.Is(err, blob.ErrNotFound) {
			return nil // removed since the listing
		}
		if err != nil {
			return err
		}
		k, err := unwrapKeys(kf.Wrap, password, kc)
		if errors.Is(err, ErrWrongPassword) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.Key, err)
		}
		found, foundID = k, strings.TrimPrefix(o.Key, KeyPrefix)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("read the repository's keys: %w", err)
	}
	if found == nil {
		return nil, "", fmt.Errorf("%w: the password does not unlock this repository", ErrWrongPassword)
	}
	return found, foundID, nil
}

func readKeyFile(ctx context.Context, store blob.Store, key string) (*keyFile, error) {
	data, err := blob.ReadAll(ctx, store, key)
	if err != nil {
		return nil, err
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil || kf.Wrap == nil {
		return nil, fmt.Errorf("%s: %w: not a key file", key, ErrCorrupt)
	}
	return &kf, nil
}

// ListKeys lists the repository's passwords, the config's first, marking
// the one in use.
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	if r.keys == nil {
		return nil, ErrNotEncrypted
	}
	out := []KeyInfo{{ID: ConfigKeyID, Created: r.cfg.Created, Current: r.keyID == ConfigKeyID}}
	var more []KeyInfo
	err := blob.Walk(ctx, r.store, KeyPrefix, func(o blob.Object) error {
		kf, err := readKeyFile(ctx, r.store, o.Key)
		if errors.Is(err, blob.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		id := strings.TrimPrefix(o.Key, KeyPrefix)
		more = append(more, KeyInfo{ID: id, Created: kf.Created, Host: kf.Host, Current: id == r.keyID})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	sort.Slice(more, func(i, j int) bool { return more[i].Created.Before(more[j].Created) })
	return append(out, more...), nil
}

// AddKey wraps the master keys with password into a new key object.
func (r *Repository) AddKey(ctx context.Context, password string) (KeyInfo, error) {
	if r.keys == nil {
		return KeyInfo{}, ErrNotEncrypted
	}
	if password == "" {
		return KeyInfo{}, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "the new password is empty")
	}
	wrap, err := wrapKeys(r.keys, password, r.cfg.Encryption.KDFParams, r.keyCache)
	if err != nil {
		return KeyInfo{}, err
	}
	host, _ := os.Hostname()
	kf := keyFile{Version: 1, Created: time.Now().UTC(), Host: host, Wrap: wrap}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return KeyInfo{}, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := blob.PutBytes(ctx, r.store, KeyPrefix+id, data, &blob.PutOptions{IfAbsent: true, ContentType: "application/json", Retain: r.retain()}); err != nil {
		return KeyInfo{}, fmt.Errorf("write key %s: %w", id, err)
	}
	return KeyInfo{ID: id, Created: kf.Created, Host: host}, nil
}

// RemoveKey deletes key id. The key in use and the last key are refused;
// the config's key is not removed but its password changed (ChangePassword).
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	if r.keys == nil {
		return ErrNotEncrypted
	}
	switch {
	case id == ConfigKeyID:
		return fmt.Errorf("%w: key %q is the config's own and cannot be removed (so the last password never goes); open the repository with its password and change it", ErrKeyInUse, id)
	case id == r.keyID:
		return fmt.Errorf("key %s opened the repository: %w; open it with another password to remove this one, or change this one's password", id, ErrKeyInUse)
	case !validKeyID(id):
		return fmt.Errorf("%w: %q", ErrNoSuchKey, id)
	}
	if _, err := r.store.Stat(ctx, KeyPrefix+id); errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("%w: %q", ErrNoSuchKey, id)
	} else if err != nil {
		return err
	}
	// The config's key always remains, so a removal never leaves none.
	return r.store.Delete(ctx, KeyPrefix+id)
}

// ChangePassword replaces the password of the key in use. For a key under
// keys/ it adds the new key and then removes the old one; for the config's
// key it overwrites the config with the keys wrapped anew (one write). The
// repository's data and every other key are untouched.
func (r *Repository) ChangePassword(ctx context.Context, password string) (KeyInfo, error) {
	if r.keys == nil {
		return KeyInfo{}, ErrNotEncrypted
	}
	if password == "" {
		return KeyInfo{}, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "the new password is empty")
	}
	if r.keyID != ConfigKeyID {
		added, err := r.AddKey(ctx, password)
		if err != nil {
			return KeyInfo{}, err
		}
		old := r.keyID
		r.keyID = added.ID
		if err := r.store.Delete(ctx, KeyPrefix+old); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return added, fmt.Errorf("the new password works; removing the old key %s failed (remove it with the new password): %w", old, err)
		}
		added.Current = true
		return added, nil
	}
	wrap, err := wrapKeys(r.keys, password, r.cfg.Encryption.KDFParams, r.keyCache)
	if err != nil {
		return KeyInfo{}, err
	}
	cfg := r.cfg
	cfg.Encryption = wrap
	cfg.Checksum = configChecksum(cfg)
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return KeyInfo{}, err
	}
	if err := blob.PutBytes(ctx, r.store, ConfigKey, data, &blob.PutOptions{ContentType: "application/json", Retain: r.retain()}); err != nil {
		return KeyInfo{}, fmt.Errorf("write %s: %w", ConfigKey, err)
	}
	r.cfg = cfg
	return KeyInfo{ID: ConfigKeyID, Created: cfg.Created, Current: true}, nil
}

func validKeyID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
