// Package s3 opens repositories in Amazon S3 or an S3-compatible server such
// as MinIO ("s3://bucket/prefix?endpoint=...&region=...&use_path_style=true"),
// with aws-sdk-go-v2 under gocloud's s3blob.
package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/internal/params"
)

// Scheme is the URL scheme of this provider.
const Scheme = "s3"

// ProbeTimeout bounds the check Open makes that the bucket answers.
const ProbeTimeout = 10 * time.Second

// Config selects a bucket and how to reach it. Credentials left empty come
// from the AWS default chain (environment, shared config/profile, instance
// role).
type Config struct {
	Bucket string `json:"bucket" yaml:"bucket"`
	Prefix string `json:"prefix" yaml:"prefix"`
	// Region; defaults to AWS_REGION / the profile, or us-east-1 with a
	// custom Endpoint.
	Region string `json:"region" yaml:"region"`
	// Endpoint is a custom server URL (MinIO: "http://127.0.0.1:9000").
	Endpoint string `json:"endpoint" yaml:"endpoint"`
	// UsePathStyle addresses the bucket in the path (MinIO needs it).
	UsePathStyle bool `json:"use_path_style" yaml:"use_path_style"`
	// Profile selects a shared-config profile.
	Profile string `json:"profile" yaml:"profile"`
	// Static credentials; never printed.
	AccessKeyID     string `json:"access_key_id" yaml:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key" yaml:"secret_access_key"`
	SessionToken    string `json:"session_token" yaml:"session_token"`
}

// String describes the configuration without its secrets.
func (c Config) String() string {
	s := fmt.Sprintf("s3://%s/%s", c.Bucket, c.Prefix)
	if c.Endpoint != "" {
		s += " at " + c.Endpoint
	}
	return s
}

// ParseURL reads s3://bucket/prefix?endpoint=&region=&use_path_style=&profile=.
func ParseURL(u *url.URL) (Config, error) {
	q, err := params.Parse(u, "endpoint", "region", "use_path_style", "profile")
	if err != nil {
		return Config{}, err
	}
	bucket, prefix, err := params.BucketAndPrefix(u)
	if err != nil {
		return Config{}, err
	}
	pathStyle, err := q.Bool("use_path_style")
	if err != nil {
		return Config{}, err
	}
	return Config{Bucket: bucket, Prefix: prefix, Region: q.String("region"), Endpoint: q.String("endpoint"),
		UsePathStyle: pathStyle, Profile: q.String("profile")}, nil
}

// Validate checks the configuration before anything is sent.
func (c Config) Validate() error {
	if len(c.Bucket) < 3 || len(c.Bucket) > 63 {
		return fmt.Errorf("s3: bucket name %q must be 3 to 63 characters", c.Bucket)
	}
	if c.Endpoint != "" {
		e, err := url.Parse(c.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return fmt.Errorf("s3: endpoint %q is not a URL like http://host:port or https://host", c.Endpoint)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("s3: give both an access key id and a secret access key, or neither (to use the AWS default credential chain)")
	}
	return nil
}

// Open connects to the bucket and checks that it exists and the credentials
// reach it, within ProbeTimeout.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b, err := s3blob.OpenBucket(ctx, client, cfg.Bucket, nil)
	if err != nil {
		return nil, fmt.Errorf("s3: open bucket %q: %w", cfg.Bucket, err)
	}
	prefix := params.WithSlash(cfg.Prefix)
	if prefix != "" {
		b = gcblob.PrefixedBucket(b, prefix)
	}
	bucket := blob.New(b, blob.Options{Location: location(cfg), Classify: classify, Requests: blob.RemoteRequests})
	if err := bucket.Probe(ctx, ProbeTimeout); err != nil {
		_ = bucket.Close()
		return nil, explain(cfg, err)
	}
	return &Store{Bucket: bucket, client: client, bucket: cfg.Bucket, prefix: prefix}, nil
}

// OpenURL parses u and opens it.
func OpenURL(ctx context.Context, u *url.URL) (*Store, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}

func newClient(ctx context.Context, cfg Config) (*awss3.Client, error) {
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 5 * time.Second }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = 10 * time.Second
			t.MaxIdleConnsPerHost = 64
		})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		// graphkeep's blob.Retrying retries transient failures; one policy,
		// and every request counted once.
		config.WithRetryMaxAttempts(1),
		config.WithLogger(logging.Nop{}),
	}
	region := cfg.Region
	if region == "" && cfg.Endpoint != "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		region = "us-east-1" // S3-compatible servers ignore it, the SDK wants one
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("s3: no region: add ?region=... to the repository URL or set AWS_REGION")
	}
	// Resolve credentials now, so a machine without any gets that answer
	// rather than a confusing failure of the first request.
	credCtx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	if _, err := awsCfg.Credentials.Retrieve(credCtx); err != nil {
		return nil, errors.New("s3: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile (?profile= or AWS_PROFILE), or run with an instance role")
	}
	return awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.UsePathStyle
		if os.Getenv("AWS_RESPONSE_CHECKSUM_VALIDATION") == "" {
			o.ResponseChecksumValidation = readsVerifiedByGraphkeep
		}
	}), nil
}

// readsVerifiedByGraphkeep: GETs do not ask for the object's checksum
// (x-amz-checksum-mode), and the SDK does not CRC32 what they return.
// Every object graphkeep reads is checked by graphkeep itself: a chunk by
// its AES-GCM tag or re-derived id, a meta object by its checksum or tag,
// and every restored file by its SHA-256 (and TLS guards the transit on
// https endpoints). The second check cost MinIO ~10% of its CPU over a
// restore's 490 GETs (1.07-1.11 against 0.94-0.98 CPU-s), and the client a
// CRC32 pass over every byte. AWS_RESPONSE_CHECKSUM_VALIDATION set in the
// environment is obeyed instead.
const readsVerifiedByGraphkeep = aws.ResponseChecksumValidationWhenRequired

func location(cfg Config) string {
	loc := "s3://" + cfg.Bucket
	if cfg.Prefix != "" {
		loc += "/" + cfg.Prefix
	}
	return loc
}

// classify maps the S3 error codes gocloud leaves as Unknown.
func classify(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "AllAccessDisabled":
			return blob.ErrPermission
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed", "XMinioServerNotInitialized",
			"ConditionalRequestConflict": // a concurrent conditional write of the key: try again
			return blob.ErrUnavailable
		case "NoSuchBucket":
			return blob.ErrNotFound
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch code := re.HTTPStatusCode(); {
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return blob.ErrPermission
		case code >= 500 || code == http.StatusTooManyRequests:
			return blob.ErrUnavailable
		}
	}
	return nil
}

// explain turns a failed probe into one line that says what to check.
func explain(cfg Config, err error) error {
	where := "AWS S3"
	if cfg.Endpoint != "" {
		where = cfg.Endpoint
	}
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return fmt.Errorf("s3: bucket %q does not exist at %s: check the bucket name and region, or create the bucket", cfg.Bucket, where)
	case errors.Is(err, blob.ErrPermission):
		return fmt.Errorf("s3: access to bucket %q at %s denied: check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile) and the bucket policy", cfg.Bucket, where)
	default:
		return fmt.Errorf("s3: cannot reach %s for bucket %q: check the endpoint URL and that the server is running (%s)", where, cfg.Bucket, blob.Reason(err))
	}
}
