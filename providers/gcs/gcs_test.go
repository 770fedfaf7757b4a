package gcs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// Object retention on GCS: the fake server keeps retention attributes but
// not the bucket setting, so here it checks that a locked write to a
// bucket without object retention is refused before it is sent and that
// Retain and Retention map the modes; the same checks against a real
// bucket with object retention enabled run when GRAPHKEEP_GCS_LOCK_URL
// names one (gs://bucket/prefix, credentials from the environment).
func TestObjectRetention(t *testing.T) {
	ctx := context.Background()
	srv := startFake(t)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "retention"})
	s, err := providers.Open(ctx, "gs://retention/repo?endpoint="+srv.URL(), providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lk, ok := blob.LockerOf(s)
	if !ok {
		t.Fatal("the GCS store is not a Locker")
	}
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := s.Put(ctx, "k", strings.NewReader("x"), &blob.PutOptions{Retain: &blob.Retention{Mode: blob.Compliance, Until: until}}); !errors.Is(err, blob.ErrUnsupported) {
		t.Fatalf("locked write to a bucket without object retention: %v", err)
	}
	if err := s.Put(ctx, "k", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{blob.Governance, blob.Compliance} {
		if err := lk.Retain(ctx, "k", blob.Retention{Mode: mode, Until: until}); err != nil {
			t.Fatalf("retain %s: %v", mode, err)
		}
		if r, err := lk.Retention(ctx, "k"); err != nil || r.Mode != mode || !r.Until.Equal(until) {
			t.Fatalf("retention after retain %s: %+v %v", mode, r, err)
		}
	}

	realURL := os.Getenv("GRAPHKEEP_GCS_LOCK_URL")
	if realURL == "" {
		return
	}
	rs, err := providers.Open(ctx, realURL, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	rlk, _ := blob.LockerOf(rs)
	if on, err := rlk.LockEnabled(ctx); err != nil || !on {
		t.Fatalf("%s: object retention enabled %v, %v", realURL, on, err)
	}
	key := fmt.Sprintf("locktest-%d", time.Now().UnixNano())
	soon := time.Now().Add(2 * time.Minute).Truncate(time.Second)
	if err := rs.Put(ctx, key, strings.NewReader("locked"), &blob.PutOptions{Retain: &blob.Retention{Mode: blob.Compliance, Until: soon}}); err != nil {
		t.Fatal(err)
	}
	if err := rs.Delete(ctx, key); err == nil {
		t.Fatal("deleted a locked object")
	}
	if r, err := rlk.Retention(ctx, key); err != nil || r.Mode != blob.Compliance || !r.Until.Equal(soon) {
		t.Fatalf("retention: %+v %v", r, err)
	}
}
