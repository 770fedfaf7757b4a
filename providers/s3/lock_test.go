package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/integration/miniotest"
	"github.com/graphkeep/graphkeep/providers"
	"github.com/graphkeep/graphkeep/providers/s3"
)

// TestObjectLockOnMinIO proves what a lock guarantees on a real server,
// with the same credentials graphkeep uses: a locked version cannot be
// deleted (compliance: by nobody; governance: only with the bypass
// permission) until its retention lapses; a plain delete or an overwrite
// only hides it under a delete marker or a newer version, and the locked
// bytes stay readable by version. Retention can be read and extended.
func TestObjectLockOnMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	h := harness{srv: srv}
	ctx := context.Background()
	open := func(bucket string) blob.Store {
		b, err := s3.Open(ctx, h.config(bucket))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return providers.Decorate(b, providers.Options{})
	}
	plainBucket, lockedBucket := srv.NewBucket(t), srv.NewLockedBucket(t)
	plain, locked := open(plainBucket), open(lockedBucket)
	lk, ok := blob.LockerOf(locked)
	if !ok {
		t.Fatal("the S3 store is not a Locker")
	}
	if on, err := lk.LockEnabled(ctx); err != nil || !on {
		t.Fatalf("locked bucket: enabled %v, %v", on, err)
	}
	plk, _ := blob.LockerOf(plain)
	if on, err := plk.LockEnabled(ctx); err != nil || on {
		t.Fatalf("plain bucket: enabled %v, %v", on, err)
	}

	raw := srv.Client()
	put := func(key string, data []byte, r blob.Retention) {
		t.Helper()
		if err := locked.Put(ctx, key, bytes.NewReader(data), &blob.PutOptions{Retain: &r}); err != nil {
			t.Fatalf("put %s locked: %v", key, err)
		}
	}
	version := func(key string) string {
		t.Helper()
		out, err := raw.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(lockedBucket), Key: aws.String("repo/" + key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.VersionId)
	}
	deleteVersion := func(key, v string, bypass bool) error {
		_, err := raw.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(lockedBucket), Key: aws.String("repo/" + key),
			VersionId: aws.String(v), BypassGovernanceRetention: aws.Bool(bypass)})
		return err
	}
	readVersion := func(key, v string) []byte {
		t.Helper()
		out, err := raw.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(lockedBucket), Key: aws.String("repo/" + key), VersionId: aws.String(v)})
		if err != nil {
			t.Fatalf("read %s version %s: %v", key, v, err)
		}
		defer out.Body.Close()
		data, _ := io.ReadAll(out.Body)
		return data
	}

	// Compliance: nobody deletes the version, bypass or not.
	shortly := time.Now().Add(4 * time.Second).Truncate(time.Second)
	put("chunks/c1", []byte("chunk one"), blob.Retention{Mode: blob.Compliance, Until: shortly})
	if r, err := lk.Retention(ctx, "chunks/c1"); err != nil || r.Mode != blob.Compliance || !r.Until.Equal(shortly) {
		t.Fatalf("retention of c1: %+v %v (want compliance until %s)", r, err, shortly)
	}
	v1 := version("chunks/c1")
	for _, bypass := range []bool{false, true} {
		if err := deleteVersion("chunks/c1", v1, bypass); err == nil {
			t.Fatalf("deleted a compliance-locked version (bypass %v)", bypass)
		}
	}
	// A plain delete and an overwrite only hide it.
	if err := locked.Put(ctx, "chunks/c1", bytes.NewReader([]byte("garbage")), nil); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if err := locked.Delete(ctx, "chunks/c1"); err != nil {
		t.Fatalf("plain delete: %v", err)
	}
	if _, err := locked.Stat(ctx, "chunks/c1"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("after a plain delete: %v", err)
	}
	if got := readVersion("chunks/c1", v1); string(got) != "chunk one" {
		t.Fatalf("the locked version reads %q", got)
	}

	// Governance: only with the bypass permission (the test's root user has it).
	put("snapshots/g/s1", []byte("manifest"), blob.Retention{Mode: blob.Governance, Until: time.Now().Add(time.Hour)})
	vg := version("snapshots/g/s1")
	if err := deleteVersion("snapshots/g/s1", vg, false); err == nil {
		t.Fatal("deleted a governance-locked version without bypass")
	}
	if err := deleteVersion("snapshots/g/s1", vg, true); err != nil {
		t.Fatalf("bypassing governance: %v", err)
	}

	// Extending a retention.
	put("chunks/c2", []byte("chunk two"), blob.Retention{Mode: blob.Compliance, Until: time.Now().Add(3 * time.Second)})
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := lk.Retain(ctx, "chunks/c2", blob.Retention{Mode: blob.Compliance, Until: later}); err != nil {
		t.Fatal(err)
	}
	if r, _ := lk.Retention(ctx, "chunks/c2"); !r.Until.Equal(later) {
		t.Fatalf("extended retention: %+v, want until %s", r, later)
	}

	// Once it lapses, the version can go.
	time.Sleep(time.Until(shortly) + time.Second)
	if err := deleteVersion("chunks/c1", v1, false); err != nil {
		t.Fatalf("deleting after the retention lapsed: %v", err)
	}

	// Asking for a lock where there is none fails; nothing unlocked is written.
	err := plain.Put(ctx, "chunks/c3", bytes.NewReader([]byte("x")), &blob.PutOptions{Retain: &blob.Retention{Mode: blob.Compliance, Until: later}})
	if err == nil {
		t.Fatal("a locked write to a bucket without object lock succeeded")
	}
	if _, err := plain.Stat(ctx, "chunks/c3"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the refused write left an object: %v", err)
	}
	if err := locked.Put(ctx, "chunks/c4", bytes.NewReader([]byte("x")), &blob.PutOptions{Retain: &blob.Retention{Mode: "forever", Until: later}}); !errors.Is(err, blob.ErrInvalid) {
		t.Fatalf("an unknown mode: %v", err)
	}
}

// BenchmarkLockedPut: the cost of writing with a lock on MinIO, 1 MiB
// objects (a chunk) into a lock-enabled bucket, with and without a
// retention (go test -run '^$' -bench LockedPut ./providers/s3/).
func BenchmarkLockedPut(b *testing.B) {
	srv := miniotest.Start(b)
	h := harness{srv: srv}
	store, err := s3.Open(context.Background(), h.config(srv.NewLockedBucket(b)))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	data := bytes.Repeat([]byte("graphkeep"), 1<<20/9)
	for _, c := range []struct {
		name   string
		retain *blob.Retention
	}{{"unlocked", nil}, {"compliance", &blob.Retention{Mode: blob.Compliance, Until: time.Now().Add(time.Hour)}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				i++
				key := c.name + "/" + time.Now().Format("150405.000000000") + string(rune('a'+i%26))
				if err := store.Put(context.Background(), key, bytes.NewReader(data), &blob.PutOptions{Retain: c.retain}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
