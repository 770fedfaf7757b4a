package gcs_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/blob/blobtest"
	"github.com/graphkeep/graphkeep/providers"
	"github.com/graphkeep/graphkeep/providers/gcs"
)

// startFake runs fake-gcs-server in this process on a loopback port.
func startFake(t *testing.T) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0, NoListener: false})
	if err != nil {
		t.Fatalf("start fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

type harness struct{ srv *fakestorage.Server }

var seq atomic.Int64

func (h harness) NewLocation(ctx context.Context, t *testing.T) func(t *testing.T) blob.Store {
	bucket := fmt.Sprintf("gk-%d", seq.Add(1))
	h.srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	url := fmt.Sprintf("gs://%s/repo?endpoint=%s", bucket, h.srv.URL())
	return func(t *testing.T) blob.Store {
		s, err := providers.Open(ctx, url, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	t.Run("gcs-fake", func(t *testing.T) { blobtest.RunConformance(t, harness{srv: startFake(t)}) })
}

func TestOpenErrors(t *testing.T) {
	srv := startFake(t)
	ctx := context.Background()
	for _, c := range []struct{ url, want string }{
		{"gs://missing-bucket/p?endpoint=" + srv.URL(), `bucket "missing-bucket" does not exist`},
		{"gs://some-bucket/p?endpoint=http://127.0.0.1:1", "cannot reach http://127.0.0.1:1"},
		{"gs://some-bucket/p?endpoint=nonsense", "is not a URL"},
		{"gs://b/p", "3 to 222 characters"},
		{"gs://some-bucket/p?region=x", "unknown setting(s) region"},
	} {
		_, err := providers.Open(ctx, c.url, providers.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", c.url, err, c.want)
		}
	}
}

func TestParseURL(t *testing.T) {
	u, _ := providers.Parse("gs://bkt/a/b/?credentials_file=/k.json")
	got, err := gcs.ParseURL(u)
	if want := (gcs.Config{Bucket: "bkt", Prefix: "a/b", CredentialsFile: "/k.json"}); err != nil || got != want {
		t.Fatalf("ParseURL = %+v, %v; want %+v", got, err, want)
	}
}
