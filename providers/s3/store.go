package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/graphkeep/graphkeep/blob"
)

// Store is a bucket (or a prefix of one) in S3 or an S3-compatible server:
// gocloud's s3blob for everything but writes of content already in memory,
// which go straight to PutObject. gocloud's writer copies every object into
// a fresh buffer before it sends it (the transfer manager reads the first
// part with io.ReadAll), so a backup made as much garbage as it uploaded;
// PutObject takes a seekable body as it is and rewinds it itself to sign
// and to retry.
type Store struct {
	*blob.Bucket
	client *awss3.Client
	bucket string
	prefix string // with its trailing slash, or ""
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts *blob.PutOptions) error {
	if opts == nil {
		opts = &blob.PutOptions{}
	}
	body, ok := r.(io.ReadSeeker)
	if !ok && opts.Retain != nil {
		// A locked object goes through PutObject, which needs the whole
		// body to sign and checksum it.
		data, err := io.ReadAll(r)
		if err != nil {
			return s.Wrap("put", key, err)
		}
		body, ok = bytes.NewReader(data), true
	}
	if !ok {
		return s.Bucket.Put(ctx, key, r, opts)
	}
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	in := &awss3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(s.prefix + key),
		Body:        body,
		ContentType: aws.String(contentType),
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if rt := opts.Retain; rt != nil {
		if err := rt.Validate(time.Now()); err != nil {
			return s.Wrap("put", key, err)
		}
		mode, err := lockMode(rt.Mode)
		if err != nil {
			return s.Wrap("put", key, err)
		}
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockMode(mode), aws.Time(rt.Until)
	}
	if _, err := s.client.PutObject(ctx, in, awss3.WithAPIOptions(unsignedPayload...)); err != nil {
		if opts.IfAbsent && preconditionFailed(err) {
			err = fmt.Errorf("%w: %v", blob.ErrExists, err)
		}
		return s.Wrap("put", key, err)
	}
	return nil
}

// unsignedPayload leaves the body out of the signature, so no byte backed
// up is hashed twice for the upload: the SDK's CRC32 checksum, which S3
// verifies, guards it in transit, and every read re-derives the content's
// id. Swapping the signer's hashing alone is not enough: the checksum
// middleware, which runs first, hashes the body with SHA-256 for the signer
// (in the same pass as the CRC32) unless it finds the payload hash already
// set, so it is set before that middleware runs.
var unsignedPayload = []func(*middleware.Stack) error{
	v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware,
	func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("graphkeepUnsignedPayload",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				return next.HandleBuild(v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD"), in)
			}), middleware.After)
	},
}

// Unwrap lets blob.Find reach the Bucket.
func (s *Store) Unwrap() blob.Store { return s.Bucket }

// preconditionFailed: an If-None-Match write found the key taken.
func preconditionFailed(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed"
}

// lockMode maps a blob retention mode to S3's.
func lockMode(mode string) (types.ObjectLockRetentionMode, error) {
	switch mode {
	case blob.Governance:
		return types.ObjectLockRetentionModeGovernance, nil
	case blob.Compliance:
		return types.ObjectLockRetentionModeCompliance, nil
	}
	return "", fmt.Errorf("%w: retention mode %q", blob.ErrInvalid, mode)
}

// LockEnabled implements blob.Locker: the bucket was created with object
// lock enabled.
func (s *Store) LockEnabled(ctx context.Context) (bool, error) {
	out, err := s.client.GetObjectLockConfiguration(ctx, &awss3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		if code(err) == "ObjectLockConfigurationNotFoundError" {
			return false, nil
		}
		return false, s.Wrap("lock configuration", "", err)
	}
	return out.ObjectLockConfiguration != nil && out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled, nil
}

// DefaultRetention implements blob.Locker: the bucket's default rule.
func (s *Store) DefaultRetention(ctx context.Context) (string, time.Duration, error) {
	out, err := s.client.GetObjectLockConfiguration(ctx, &awss3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		if code(err) == "ObjectLockConfigurationNotFoundError" {
			return "", 0, nil
		}
		return "", 0, s.Wrap("lock configuration", "", err)
	}
	c := out.ObjectLockConfiguration
	if c == nil || c.Rule == nil || c.Rule.DefaultRetention == nil {
		return "", 0, nil
	}
	r := c.Rule.DefaultRetention
	d := time.Duration(aws.ToInt32(r.Days))*24*time.Hour + time.Duration(aws.ToInt32(r.Years))*365*24*time.Hour
	if d <= 0 {
		return "", 0, nil
	}
	return strings.ToLower(string(r.Mode)), d, nil
}

// Retention implements blob.Locker.
func (s *Store) Retention(ctx context.Context, key string) (blob.Retention, error) {
	out, err := s.client.GetObjectRetention(ctx, &awss3.GetObjectRetentionInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		if c := code(err); c == "NoSuchObjectLockConfiguration" || c == "ObjectLockConfigurationNotFoundError" {
			return blob.Retention{}, nil
		}
		return blob.Retention{}, s.Wrap("retention", key, err)
	}
	if out.Retention == nil || out.Retention.RetainUntilDate == nil {
		return blob.Retention{}, nil
	}
	return blob.Retention{Mode: strings.ToLower(string(out.Retention.Mode)), Until: *out.Retention.RetainUntilDate}, nil
}

// Retain implements blob.Locker.
func (s *Store) Retain(ctx context.Context, key string, r blob.Retention) error {
	if err := r.Validate(time.Now()); err != nil {
		return s.Wrap("retain", key, err)
	}
	mode, err := lockMode(r.Mode)
	if err != nil {
		return s.Wrap("retain", key, err)
	}
	_, err = s.client.PutObjectRetention(ctx, &awss3.PutObjectRetentionInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key),
		Retention: &types.ObjectLockRetention{Mode: mode, RetainUntilDate: aws.Time(r.Until)}})
	if err != nil {
		return s.Wrap("retain", key, err)
	}
	return nil
}

// code is the S3 error code of err, or "".
func code(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// Versioned implements blob.Versioner.
func (s *Store) Versioned(ctx context.Context) (bool, error) {
	out, err := s.client.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		return false, s.Wrap("versioning", "", err)
	}
	return out.Status == types.BucketVersioningStatusEnabled, nil
}

// Versions implements blob.Versioner.
func (s *Store) Versions(ctx context.Context, prefix string, fn func(blob.ObjectVersion) error) error {
	p := awss3.NewListObjectVersionsPaginator(s.client, &awss3.ListObjectVersionsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.Wrap("list versions", prefix, err)
		}
		// A page holds versions and delete markers apart: merge them back
		// into key order, newest first within a key.
		var all []blob.ObjectVersion
		for _, v := range page.Versions {
			all = append(all, blob.ObjectVersion{Key: strings.TrimPrefix(aws.ToString(v.Key), s.prefix), ID: aws.ToString(v.VersionId),
				Latest: aws.ToBool(v.IsLatest), ModTime: aws.ToTime(v.LastModified), Size: aws.ToInt64(v.Size)})
		}
		for _, m := range page.DeleteMarkers {
			all = append(all, blob.ObjectVersion{Key: strings.TrimPrefix(aws.ToString(m.Key), s.prefix), ID: aws.ToString(m.VersionId),
				DeleteMarker: true, Latest: aws.ToBool(m.IsLatest), ModTime: aws.ToTime(m.LastModified)})
		}
		sort.SliceStable(all, func(i, j int) bool {
			if all[i].Key != all[j].Key {
				return all[i].Key < all[j].Key
			}
			if all[i].Latest != all[j].Latest {
				return all[i].Latest
			}
			return all[i].ModTime.After(all[j].ModTime)
		})
		for _, v := range all {
			if err := fn(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// GetVersion implements blob.Versioner.
func (s *Store) GetVersion(ctx context.Context, key, id string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key), VersionId: aws.String(id)})
	if err != nil {
		return nil, s.Wrap("get version", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, s.Wrap("get version", key, err)
	}
	return data, nil
}

// DeleteVersion implements blob.Versioner.
func (s *Store) DeleteVersion(ctx context.Context, key, id string) error {
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key), VersionId: aws.String(id)})
	if err != nil {
		return s.Wrap("delete version", key, err)
	}
	return nil
}

// PromoteVersion implements blob.Versioner.
func (s *Store) PromoteVersion(ctx context.Context, key, id string) error {
	segments := strings.Split(s.prefix+key, "/")
	for i, seg := range segments {
		segments[i] = url.PathEscape(seg)
	}
	src := s.bucket + "/" + strings.Join(segments, "/") + "?versionId=" + url.QueryEscape(id)
	_, err := s.client.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key), CopySource: aws.String(src)})
	if err != nil {
		return s.Wrap("promote version", key, err)
	}
	return nil
}
