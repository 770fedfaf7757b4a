package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/graphkeep/graphkeep/blob"
)

// Store is a GCS bucket (or a prefix of one): gocloud's gcsblob for
// everything but locked writes, which go through the storage client to set
// the object's retention (GCS object retention: "Locked" is compliance,
// "Unlocked" governance, lifted only with the override permission).
type Store struct {
	*blob.Bucket
	client *storage.Client
	bucket string
	prefix string
	// lockable remembers LockEnabled: a locked write to a
	// bucket without object retention is refused before it is sent.
	lockable blob.LockProbe
}

// Unwrap lets blob.Find reach the Bucket.
func (s *Store) Unwrap() blob.Store { return s.Bucket }

func (s *Store) object(key string) *storage.ObjectHandle {
	return s.client.Bucket(s.bucket).Object(s.prefix + key)
}

// gcsMode maps a blob retention mode to GCS's.
func gcsMode(mode string) (string, error) {
	switch mode {
	case blob.Compliance:
		return "Locked", nil
	case blob.Governance:
		return "Unlocked", nil
	}
	return "", fmt.Errorf("%w: retention mode %q", blob.ErrInvalid, mode)
}

func blobMode(mode string) string {
	if mode == "Locked" {
		return blob.Compliance
	}
	return blob.Governance
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	if opts == nil || opts.Retain == nil {
		return s.Bucket.Put(ctx, key, r, opts)
	}
	if err := opts.Retain.Validate(time.Now()); err != nil {
		return s.Wrap("put", key, err)
	}
	mode, err := gcsMode(opts.Retain.Mode)
	if err != nil {
		return s.Wrap("put", key, err)
	}
	if on, err := s.lockable.Enabled(ctx, s.LockEnabled); err != nil {
		return s.Wrap("put", key, err)
	} else if !on {
		return s.Wrap("put", key, fmt.Errorf("%w: bucket %s has no object retention enabled", blob.ErrUnsupported, s.bucket))
	}
	obj := s.object(key)
	if opts.IfAbsent {
		obj = obj.If(storage.Conditions{DoesNotExist: true})
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := obj.NewWriter(wctx)
	w.ContentType = opts.ContentType
	if w.ContentType == "" {
		w.ContentType = "application/octet-stream"
	}
	w.Retention = &storage.ObjectRetention{Mode: mode, RetainUntil: opts.Retain.Until}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		_ = w.Close()
		return s.Wrap("put", key, err)
	}
	if err := w.Close(); err != nil {
		var gerr *googleapi.Error
		if opts.IfAbsent && errors.As(err, &gerr) && gerr.Code == 412 {
			err = fmt.Errorf("%w: %v", blob.ErrExists, err)
		}
		return s.Wrap("put", key, err)
	}
	return nil
}

// LockEnabled implements blob.Locker: the bucket has object retention on.
func (s *Store) LockEnabled(ctx context.Context) (bool, error) {
	attrs, err := s.client.Bucket(s.bucket).Attrs(ctx)
	if err != nil {
		return false, s.Wrap("bucket attributes", "", err)
	}
	return attrs.ObjectRetentionMode == "Enabled", nil
}

// DefaultRetention implements blob.Locker: the bucket's retention policy
// (a locked policy is compliance).
func (s *Store) DefaultRetention(ctx context.Context) (string, time.Duration, error) {
	attrs, err := s.client.Bucket(s.bucket).Attrs(ctx)
	if err != nil {
		return "", 0, s.Wrap("bucket attributes", "", err)
	}
	p := attrs.RetentionPolicy
	if p == nil || p.RetentionPeriod <= 0 {
		return "", 0, nil
	}
	if p.IsLocked {
		return blob.Compliance, p.RetentionPeriod, nil
	}
	return blob.Governance, p.RetentionPeriod, nil
}

// Retention implements blob.Locker.
func (s *Store) Retention(ctx context.Context, key string) (blob.Retention, error) {
	attrs, err := s.object(key).Attrs(ctx)
	if err != nil {
		return blob.Retention{}, s.Wrap("retention", key, err)
	}
	if attrs.Retention == nil || attrs.Retention.RetainUntil.IsZero() {
		return blob.Retention{}, nil
	}
	return blob.Retention{Mode: blobMode(attrs.Retention.Mode), Until: attrs.Retention.RetainUntil}, nil
}

// Retain implements blob.Locker.
func (s *Store) Retain(ctx context.Context, key string, r blob.Retention) error {
	if err := r.Validate(time.Now()); err != nil {
		return s.Wrap("retain", key, err)
	}
	mode, err := gcsMode(r.Mode)
	if err != nil {
		return s.Wrap("retain", key, err)
	}
	if _, err := s.object(key).Update(ctx, storage.ObjectAttrsToUpdate{Retention: &storage.ObjectRetention{Mode: mode, RetainUntil: r.Until}}); err != nil {
		return s.Wrap("retain", key, err)
	}
	return nil
}
