// Package miniotest starts MinIO servers for tests with testcontainers-go,
// from the image `make minio-image` builds locally (no registry is needed or
// used). Under CI=true a missing Docker engine or image fails the test with
// the fix; elsewhere it skips with the same message.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/testcontainers/testcontainers-go"
	tcminio "github.com/testcontainers/testcontainers-go/modules/minio"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultImage is the tag `make minio-image` builds.
const DefaultImage = "graphkeep/minio:20260212201848"

// Credentials of the test server.
const (
	User     = "graphkeep"
	Password = "graphkeep-secret"
)

// Server is a running MinIO container.
type Server struct {
	Container *tcminio.MinioContainer
	// Endpoint is "http://127.0.0.1:PORT".
	Endpoint string
	client   *awss3.Client
}

// Image is the image to run: GRAPHKEEP_MINIO_IMAGE or DefaultImage.
func Image() string {
	if img := os.Getenv("GRAPHKEEP_MINIO_IMAGE"); img != "" {
		return img
	}
	return DefaultImage
}

func init() {
	// The reaper image cannot be pulled here; tests terminate their own
	// containers. testcontainers reads this once, on first use.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	// Published ports listen on this machine; without the override
	// testcontainers may guess the host from the default route and dial an
	// address that is not ours.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
}

// Start runs a MinIO container for the test and terminates it when the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the MinIO tests need Docker; run them with make test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	requireDockerAndImage(t, ctx)

	c, err := tcminio.Run(ctx, Image(), tcminio.WithUsername(User), tcminio.WithPassword(Password),
		// "localhost" may resolve to ::1, which Docker 20.10 does not forward.
		// "ready", not "live": a live server may still answer S3 calls with
		// 503 XMinioServerNotInitialized while it loads its state.
		testcontainers.WithWaitStrategy(wait.ForHTTP("/minio/health/ready").WithPort("9000").
			WithForcedIPv4LocalHost().WithStartupTimeout(time.Minute)))
	if c != nil {
		t.Cleanup(func() { _ = testcontainers.TerminateContainer(c) })
	}
	if err != nil {
		t.Fatalf("start MinIO from %s: %v", Image(), err)
	}
	hostPort, err := c.ConnectionString(ctx)
	if err != nil {
		t.Fatalf("MinIO address: %v", err)
	}
	s := &Server{Container: c, Endpoint: "http://" + strings.Replace(hostPort, "localhost", "127.0.0.1", 1)}
	s.client = newClient(t, s.Endpoint)
	return s
}

var bucketSeq atomic.Int64

// NewBucket creates a fresh, uniquely named bucket and returns its name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	return s.newBucket(t, false)
}

// NewLockedBucket creates a fresh bucket with object lock enabled (and so
// versioning), as an immutable repository needs.
func (s *Server) NewLockedBucket(t testing.TB) string {
	t.Helper()
	return s.newBucket(t, true)
}

func (s *Server) newBucket(t testing.TB, locked bool) string {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := fmt.Sprintf("gk-%d-%s", bucketSeq.Add(1), hex.EncodeToString(r[:]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := s.client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name), ObjectLockEnabledForBucket: aws.Bool(locked)})
		if err == nil {
			break
		}
		// A server under load may still be initialising; anything else, or
		// a server that never comes up within the deadline, fails the test.
		if !strings.Contains(err.Error(), "XMinioServerNotInitialized") || ctx.Err() != nil {
			t.Fatalf("create bucket %s: %v", name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return name
}

// Client is an S3 client with the server's root credentials.
func (s *Server) Client() *awss3.Client { return s.client }

func newClient(t testing.TB, endpoint string) *awss3.Client {
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(User, Password, "")))
	if err != nil {
		t.Fatalf("aws config: %v", err)
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// requireDockerAndImage fails (under CI) or skips (elsewhere) with the fix
// when the engine or the image is missing.
func requireDockerAndImage(t testing.TB, ctx context.Context) {
	t.Helper()
	miss := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		miss("MinIO tests need a Docker engine: %v; start Docker (or set DOCKER_HOST) and run 'make minio-image'", err)
		return
	}
	defer provider.Close()
	if err := provider.Health(ctx); err != nil {
		miss("MinIO tests need a Docker engine, and none answers: %v; start Docker (or set DOCKER_HOST) and run 'make minio-image'", err)
		return
	}
	if _, err := provider.Client().ImageInspect(ctx, Image()); err != nil {
		miss("MinIO image %s is missing: run 'make minio-image' (it builds MinIO with go install and needs no registry)", Image())
	}
}
