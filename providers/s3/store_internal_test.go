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

// TestReadsLeaveVerificationToGraphkeep: a GET does not ask S3 for the
// object's checksum, and the SDK does not check one a server sends anyway
// (graphkeep verifies everything it reads); AWS_RESPONSE_CHECKSUM_VALIDATION
// in the environment is obeyed instead.
func TestReadsLeaveVerificationToGraphkeep(t *testing.T) {
	for _, env := range []string{"", "when_supported"} {
		t.Run("env="+env, func(t *testing.T) {
			t.Setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", env)
			var header http.Header
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				header = r.Header.Clone()
				w.Header().Set("x-amz-checksum-crc32", "AAAAAA==") // not the body's
				_, _ = w.Write([]byte("stored bytes"))
			}))
			defer srv.Close()
			client, err := newClient(context.Background(), Config{Bucket: "bucket", Endpoint: srv.URL, UsePathStyle: true,
				AccessKeyID: "key", SecretAccessKey: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			out, err := client.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k")})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			asked := header.Get("X-Amz-Checksum-Mode") != ""
			switch env {
			case "":
				if asked || err != nil || string(got) != "stored bytes" {
					t.Fatalf("checksum mode asked %v, read %q, %v: want no checksum asked for or checked", asked, got, err)
				}
			default:
				if !asked || err == nil {
					t.Fatalf("with %s: checksum mode asked %v, read error %v: want it asked for and the wrong one refused", env, asked, err)
				}
			}
		})
	}
}
