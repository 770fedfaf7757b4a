package s3_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/blob/blobtest"
	"github.com/graphkeep/graphkeep/integration/miniotest"
	"github.com/graphkeep/graphkeep/providers"
	"github.com/graphkeep/graphkeep/providers/s3"
)

type harness struct{ srv *miniotest.Server }

func (h harness) config(bucket string) s3.Config {
	return s3.Config{Bucket: bucket, Prefix: "repo", Endpoint: h.srv.Endpoint, UsePathStyle: true,
		AccessKeyID: miniotest.User, SecretAccessKey: miniotest.Password}
}

func (h harness) NewLocation(ctx context.Context, t *testing.T) func(t *testing.T) blob.Store {
	cfg := h.config(h.srv.NewBucket(t))
	return func(t *testing.T) blob.Store {
		b, err := s3.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return providers.Decorate(b, providers.Options{})
	}
}

func TestConformance(t *testing.T) {
	t.Run("s3-minio", func(t *testing.T) {
		srv := miniotest.Start(t)
		h := harness{srv: srv}
		blobtest.RunConformance(t, h)

		t.Run("Misconfigured", func(t *testing.T) { testMisconfigured(t, h) })
	})
}

// testMisconfigured: each mistake gives one actionable line, quickly.
func testMisconfigured(t *testing.T, h harness) {
	good := h.config(h.srv.NewBucket(t))
	cases := []struct {
		name string
		edit func(*s3.Config)
		want string
	}{
		{"missing bucket", func(c *s3.Config) { c.Bucket = "no-such-bucket-here" }, `bucket "no-such-bucket-here" does not exist`},
		{"bad keys", func(c *s3.Config) { c.SecretAccessKey = "wrong-secret" }, "access to bucket"},
		{"unknown key id", func(c *s3.Config) { c.AccessKeyID = "nobody" }, "check the credentials"},
		{"wrong endpoint", func(c *s3.Config) { c.Endpoint = "http://127.0.0.1:1" }, "cannot reach http://127.0.0.1:1"},
		{"endpoint not a URL", func(c *s3.Config) { c.Endpoint = "minio:9000" }, "is not a URL"},
		{"short bucket name", func(c *s3.Config) { c.Bucket = "ab" }, "3 to 63 characters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			start := time.Now()
			_, err := s3.Open(context.Background(), cfg)
			took := time.Since(start)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error %q does not contain %q", msg, c.want)
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("error is not one line: %q", msg)
			}
			if strings.Contains(msg, cfg.SecretAccessKey) {
				t.Fatalf("error leaks the secret key: %q", msg)
			}
			t.Logf("%s (%s)", msg, took.Round(time.Millisecond))
			if took > 15*time.Second {
				t.Fatalf("took %s to fail, want under 15s", took)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url     string
		want    s3.Config
		wantErr string
	}{
		{url: "s3://bkt/a/b?endpoint=http://127.0.0.1:9000&region=eu-west-1&use_path_style=true",
			want: s3.Config{Bucket: "bkt", Prefix: "a/b", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", UsePathStyle: true}},
		{url: "s3://bkt", want: s3.Config{Bucket: "bkt"}},
		{url: "s3://bkt/p?acl=public", wantErr: "unknown setting(s) acl"},
		{url: "s3://key:secret@bkt/p", wantErr: "must not carry credentials"},
		{url: "s3:///p", wantErr: "names no bucket"},
		{url: "s3://bkt?use_path_style=yes", wantErr: "not a boolean"},
	} {
		u, err := providers.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s3.ParseURL(u)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseURL(%q) err = %v, want %q", c.url, err, c.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") && strings.Contains(c.url, "secret") {
				t.Errorf("error leaks the secret: %v", err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", c.url, got, err, c.want)
		}
	}
}

func TestConfigStringHidesSecrets(t *testing.T) {
	c := s3.Config{Bucket: "bkt", AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "topsecret"}
	if s := c.String(); strings.Contains(s, "topsecret") || strings.Contains(s, "AKIAEXAMPLE") {
		t.Fatalf("Config.String() = %q leaks credentials", s)
	}
}

func TestOpenWithoutCredentials(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true") // never ask a metadata service from a test
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	_, err := s3.Open(context.Background(), s3.Config{Bucket: "bkt", Endpoint: "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials found") {
		t.Fatalf("Open without credentials = %v, want 'no AWS credentials found'", err)
	}
}
