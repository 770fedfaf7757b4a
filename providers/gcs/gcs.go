// Package gcs opens repositories in Google Cloud Storage
// ("gs://bucket/prefix"), through gocloud's gcsblob. Credentials come from
// Application Default Credentials or a service-account key file; an
// emulator (fake-gcs-server) is reached with ?endpoint= or
// STORAGE_EMULATOR_HOST.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/gcp"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/internal/params"
)

// Scheme is the URL scheme of this provider.
const Scheme = "gs"

// ProbeTimeout bounds the check Open makes that the bucket answers.
const ProbeTimeout = 10 * time.Second

// Config selects a bucket and how to reach it.
type Config struct {
	Bucket string `json:"bucket" yaml:"bucket"`
	Prefix string `json:"prefix" yaml:"prefix"`
	// Endpoint is an emulator's base URL ("http://127.0.0.1:4443"); requests
	// to it are not authenticated. Empty means Google Cloud Storage.
	Endpoint string `json:"endpoint" yaml:"endpoint"`
	// CredentialsFile is a service-account JSON key; empty means
	// Application Default Credentials.
	CredentialsFile string `json:"credentials_file" yaml:"credentials_file"`
}

// ParseURL reads gs://bucket/prefix?endpoint=&credentials_file=.
func ParseURL(u *url.URL) (Config, error) {
	q, err := params.Parse(u, "endpoint", "credentials_file")
	if err != nil {
		return Config{}, err
	}
	bucket, prefix, err := params.BucketAndPrefix(u)
	if err != nil {
		return Config{}, err
	}
	return Config{Bucket: bucket, Prefix: prefix, Endpoint: q.String("endpoint"), CredentialsFile: q.String("credentials_file")}, nil
}

// Validate checks the configuration before anything is sent.
func (c Config) Validate() error {
	if len(c.Bucket) < 3 || len(c.Bucket) > 222 {
		return fmt.Errorf("gs: bucket name %q must be 3 to 222 characters", c.Bucket)
	}
	if c.Endpoint != "" {
		e, err := url.Parse(c.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return fmt.Errorf("gs: endpoint %q is not a URL like http://host:port", c.Endpoint)
		}
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
	b, err := gcsblob.OpenBucket(ctx, nil, cfg.Bucket, &gcsblob.Options{Client: client})
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("gs: open bucket %q: %w", cfg.Bucket, err)
	}
	if p := params.WithSlash(cfg.Prefix); p != "" {
		b = gcblob.PrefixedBucket(b, p)
	}
	store := blob.New(b, blob.Options{
		Location: location(cfg),
		Classify: classify,
		Requests: blob.RemoteRequests,
		Release: func() error {
			err := b.Close()
			return errors.Join(err, client.Close())
		},
	})
	if err := store.Probe(ctx, ProbeTimeout); err != nil {
		_ = store.Close()
		return nil, explain(cfg, err)
	}
	return &Store{Bucket: store, client: client, bucket: cfg.Bucket, prefix: params.WithSlash(cfg.Prefix)}, nil
}

// OpenURL parses u and opens it.
func OpenURL(ctx context.Context, u *url.URL) (*Store, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}

func newClient(ctx context.Context, cfg Config) (*storage.Client, error) {
	endpoint := cfg.Endpoint
	if endpoint == "" {
		if host := os.Getenv("STORAGE_EMULATOR_HOST"); host != "" {
			endpoint = "http://" + strings.TrimPrefix(host, "http://")
		}
	}
	if endpoint != "" {
		return storage.NewClient(ctx,
			option.WithEndpoint(strings.TrimSuffix(endpoint, "/")+"/storage/v1/"),
			option.WithoutAuthentication(),
			storage.WithJSONReads(),
			option.WithHTTPClient(&http.Client{Transport: http.DefaultTransport}))
	}
	var creds *google.Credentials
	var err error
	if cfg.CredentialsFile != "" {
		data, readErr := os.ReadFile(cfg.CredentialsFile)
		if readErr != nil {
			return nil, fmt.Errorf("gs: read credentials file: %w", readErr)
		}
		creds, err = google.CredentialsFromJSON(ctx, data, storage.ScopeReadWrite)
	} else {
		creds, err = gcp.DefaultCredentials(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("gs: no usable Google credentials (%v): run 'gcloud auth application-default login', set GOOGLE_APPLICATION_CREDENTIALS, or add ?credentials_file=", err)
	}
	httpClient, err := gcp.NewHTTPClient(gcp.DefaultTransport(), gcp.CredentialsTokenSource(creds))
	if err != nil {
		return nil, fmt.Errorf("gs: %w", err)
	}
	return storage.NewClient(ctx, option.WithHTTPClient(&httpClient.Client))
}

func location(cfg Config) string {
	loc := "gs://" + cfg.Bucket
	if cfg.Prefix != "" {
		loc += "/" + cfg.Prefix
	}
	return loc
}

// classify maps Google API errors gocloud leaves as Unknown.
func classify(err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch code := ge.Code; {
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return blob.ErrPermission
		case code == http.StatusTooManyRequests || code >= 500:
			return blob.ErrUnavailable
		}
	}
	if errors.Is(err, storage.ErrBucketNotExist) {
		return blob.ErrNotFound
	}
	return nil
}

// explain turns a failed probe into one line that says what to check.
func explain(cfg Config, err error) error {
	where := "Google Cloud Storage"
	if cfg.Endpoint != "" {
		where = cfg.Endpoint
	}
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return fmt.Errorf("gs: bucket %q does not exist at %s: check the bucket name, or create the bucket", cfg.Bucket, where)
	case errors.Is(err, blob.ErrPermission):
		return fmt.Errorf("gs: access to bucket %q denied: check the credentials (GOOGLE_APPLICATION_CREDENTIALS or credentials_file) and the bucket's IAM roles", cfg.Bucket)
	default:
		return fmt.Errorf("gs: cannot reach %s for bucket %q: check the endpoint and network (%s)", where, cfg.Bucket, blob.Reason(err))
	}
}
