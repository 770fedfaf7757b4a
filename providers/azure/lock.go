package azure

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/graphkeep/graphkeep/blob"
)

// Store is an Azure Blob container (or a prefix of one): gocloud's
// azureblob for everything but locked writes, which upload with a
// version-level immutability policy (Locked is compliance, Unlocked
// governance) in the same request. The container must have version-level
// immutability support enabled.
type Store struct {
	*blob.Bucket
	client *container.Client
	prefix string
	// lockable remembers LockEnabled.
	lockable blob.LockProbe
}

// Unwrap lets blob.Find reach the Bucket.
func (s *Store) Unwrap() blob.Store { return s.Bucket }

// azureMode maps a blob retention mode to Azure's.
func azureMode(mode string) (azblobblob.ImmutabilityPolicySetting, error) {
	switch mode {
	case blob.Compliance:
		return azblobblob.ImmutabilityPolicySettingLocked, nil
	case blob.Governance:
		return azblobblob.ImmutabilityPolicySettingUnlocked, nil
	}
	return "", fmt.Errorf("%w: retention mode %q", blob.ErrInvalid, mode)
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	if opts == nil || opts.Retain == nil {
		return s.Bucket.Put(ctx, key, r, opts)
	}
	if err := opts.Retain.Validate(time.Now()); err != nil {
		return s.Wrap("put", key, err)
	}
	mode, err := azureMode(opts.Retain.Mode)
	if err != nil {
		return s.Wrap("put", key, err)
	}
	if on, err := s.lockable.Enabled(ctx, s.LockEnabled); err != nil {
		return s.Wrap("put", key, err)
	} else if !on {
		return s.Wrap("put", key, fmt.Errorf("%w: the container has no version-level immutability support", blob.ErrUnsupported))
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return s.Wrap("put", key, err)
	}
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	until := opts.Retain.Until
	up := &blockblob.UploadOptions{HTTPHeaders: &azblobblob.HTTPHeaders{BlobContentType: &contentType},
		ImmutabilityPolicyMode: &mode, ImmutabilityPolicyExpiryTime: &until}
	if opts.IfAbsent {
		anyTag := azcore.ETagAny
		up.AccessConditions = &azblobblob.AccessConditions{ModifiedAccessConditions: &azblobblob.ModifiedAccessConditions{IfNoneMatch: &anyTag}}
	}
	_, err = s.client.NewBlockBlobClient(s.prefix+key).Upload(ctx, readSeekNopCloser{bytes.NewReader(data)}, up)
	if err != nil {
		if opts.IfAbsent && (bloberror.HasCode(err, bloberror.BlobAlreadyExists) || bloberror.HasCode(err, bloberror.ConditionNotMet)) {
			err = fmt.Errorf("%w: %v", blob.ErrExists, err)
		}
		return s.Wrap("put", key, err)
	}
	return nil
}

// LockEnabled implements blob.Locker: version-level immutability support
// on the container.
func (s *Store) LockEnabled(ctx context.Context) (bool, error) {
	p, err := s.client.GetProperties(ctx, nil)
	if err != nil {
		return false, s.Wrap("container properties", "", err)
	}
	return p.IsImmutableStorageWithVersioningEnabled != nil && *p.IsImmutableStorageWithVersioningEnabled, nil
}

// DefaultRetention implements blob.Locker. A container's default policy is
// not readable through the data plane: none is reported, so init asks for
// the policy explicitly.
func (s *Store) DefaultRetention(ctx context.Context) (string, time.Duration, error) {
	return "", 0, nil
}

// Retention implements blob.Locker.
func (s *Store) Retention(ctx context.Context, key string) (blob.Retention, error) {
	p, err := s.client.NewBlobClient(s.prefix+key).GetProperties(ctx, nil)
	if err != nil {
		return blob.Retention{}, s.Wrap("retention", key, err)
	}
	if p.ImmutabilityPolicyExpiresOn == nil || p.ImmutabilityPolicyMode == nil {
		return blob.Retention{}, nil
	}
	mode := blob.Governance
	if *p.ImmutabilityPolicyMode == azblobblob.ImmutabilityPolicyModeLocked {
		mode = blob.Compliance
	}
	return blob.Retention{Mode: mode, Until: *p.ImmutabilityPolicyExpiresOn}, nil
}

// Retain implements blob.Locker.
func (s *Store) Retain(ctx context.Context, key string, r blob.Retention) error {
	if err := r.Validate(time.Now()); err != nil {
		return s.Wrap("retain", key, err)
	}
	mode, err := azureMode(r.Mode)
	if err != nil {
		return s.Wrap("retain", key, err)
	}
	if _, err := s.client.NewBlobClient(s.prefix+key).SetImmutabilityPolicy(ctx, r.Until, &azblobblob.SetImmutabilityPolicyOptions{Mode: &mode}); err != nil {
		return s.Wrap("retain", key, err)
	}
	return nil
}

type readSeekNopCloser struct{ *bytes.Reader }

func (readSeekNopCloser) Close() error { return nil }
