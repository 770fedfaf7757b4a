package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// TestPutHashesTheBodyOnce: a put of content in memory reads it once for
// the CRC32 checksum and once to send it, and never hashes it with SHA-256
// for the signature (it did: the checksum middleware computed the payload
// hash the signer then threw away).
func TestPutHashesTheBodyOnce(t *testing.T) {
	var header http.Header
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		got, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	client := awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("key", "secret", ""),
		// As config.LoadDefaultConfig sets it for the stores we open.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
	})
	store := &Store{client: client, bucket: "bucket"}

	// Seen by a middleware right after the checksum middleware: what it
	// left as the payload hash (a SHA-256 of the body when it hashed it).
	var afterChecksum string
	saved := unsignedPayload
	defer func() { unsignedPayload = saved }()
	unsignedPayload = append(append([]func(*middleware.Stack) error{}, saved...), func(stack *middleware.Stack) error {
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("test:payloadHash",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				afterChecksum = v4.GetPayloadHash(ctx)
				return next.HandleFinalize(ctx, in)
			}), "AWSChecksum:ComputeInputPayloadChecksum", middleware.After)
	})

	body := bytes.Repeat([]byte("graph"), 50_000)
	if err := store.Put(context.Background(), "chunks/aa/x", bytes.NewReader(body), nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("server got %d bytes, want %d", len(got), len(body))
	}
	if afterChecksum != "UNSIGNED-PAYLOAD" {
		t.Errorf("payload hash after the checksum middleware = %q, want UNSIGNED-PAYLOAD (the body was hashed for nothing)", afterChecksum)
	}
	if h := header.Get("X-Amz-Content-Sha256"); h != "UNSIGNED-PAYLOAD" {
		t.Errorf("X-Amz-Content-Sha256 = %q, want UNSIGNED-PAYLOAD", h)
	}
	if header.Get("X-Amz-Checksum-Crc32") == "" {
		t.Errorf("no CRC32 checksum sent: the body is unguarded in transit (headers %v)", header)
	}
}
