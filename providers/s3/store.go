package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

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
	body, ok := r.(io.ReadSeeker)
	if !ok {
		return s.Bucket.Put(ctx, key, r, opts)
	}
	if opts == nil {
		opts = &blob.PutOptions{}
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
	// The body is not hashed for the signature (a second SHA-256 pass over
	// every byte backed up): the SDK's CRC32 checksum, which S3 verifies,
	// already guards it in transit.
	if _, err := s.client.PutObject(ctx, in, awss3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)); err != nil {
		if opts.IfAbsent && preconditionFailed(err) {
			err = fmt.Errorf("%w: %v", blob.ErrExists, err)
		}
		return s.Wrap("put", key, err)
	}
	return nil
}

// Unwrap lets blob.Find reach the Bucket.
func (s *Store) Unwrap() blob.Store { return s.Bucket }

// preconditionFailed: an If-None-Match write found the key taken.
func preconditionFailed(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed"
}
