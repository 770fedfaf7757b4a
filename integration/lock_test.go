package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/graphkeep/graphkeep/integration/miniotest"
)

// TestObjectLockedRepository: init --object-lock on MinIO writes every
// object locked; forget keeps what is locked and says until when; nobody
// deletes a locked version; lock extend pushes the locks forward; once
// they lapse, forget and prune proceed, and every graph still restores.
// Object lock on a bucket without it, or on a local folder, is refused.
func TestObjectLockedRepository(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	bucket := srv.NewLockedBucket(t)
	raw := srv.Client()
	e := newEnv(t)
	e.extra = minioEnv("lock test")
	url := func(b string) string {
		return "s3://" + b + "/graphkeep?endpoint=" + srv.Endpoint + "&use_path_style=true"
	}

	// Refusals first: no lock on a plain bucket or a folder, and nothing written.
	e.repo = url(srv.NewBucket(t))
	e.fails("created without object lock", "init", "--object-lock", "compliance", "--retention", "1d")
	e.fails("no graphkeep repository here", "snapshots")
	e.repo = "file://" + filepath.Join(e.dir, "folder-repo")
	e.fails("object lock needs S3", "init", "--object-lock", "compliance", "--retention", "1d")
	e.fails("governance or compliance", "init", "--object-lock", "forever", "--retention", "1d")

	e.repo = url(bucket)
	e.ok("fixture", "generate", e.root, "--graphs", "alpha,beta", "--size", "2000000")
	if out := e.ok("init", "--object-lock", "compliance", "--retention", "12s"); !strings.Contains(out, "object lock: every object is written locked (compliance)") {
		t.Fatalf("init:\n%s", out)
	}
	e.ok("backup", "--all", "--quiet-window", "0")
	e.ok("fixture", "grow", e.root, "alpha", "--percent", "20")
	e.ok("backup", "alpha", "--quiet-window", "0")

	retention := func(key string) (string, time.Time) {
		t.Helper()
		out, err := raw.GetObjectRetention(ctx, &awss3.GetObjectRetentionInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("retention of %s: %v", key, err)
		}
		return string(out.Retention.Mode), aws.ToTime(out.Retention.RetainUntilDate)
	}
	var chunk string
	p, err := raw.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("graphkeep/chunks/")})
	if err != nil || len(p.Contents) == 0 {
		t.Fatalf("chunks: %v", err)
	}
	chunk = aws.ToString(p.Contents[0].Key)
	for _, key := range []string{"graphkeep/graphkeep.repo", chunk} {
		if mode, until := retention(key); mode != string(types.ObjectLockRetentionModeCompliance) || time.Until(until) < 5*time.Second {
			t.Fatalf("%s: %s until %s", key, mode, until)
		}
	}
	// The credentials graphkeep holds cannot delete a locked version.
	head, err := raw.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(chunk)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(chunk), VersionId: head.VersionId,
		BypassGovernanceRetention: aws.Bool(true)}); err == nil {
		t.Fatal("deleted a locked version")
	}

	// Forget keeps what is locked, and says so.
	out := e.ok("forget", "--keep-last", "1")
	if !strings.Contains(out, "locked until") || !strings.Contains(out, "0 snapshots forgotten") {
		t.Fatalf("forget while locked:\n%s", out)
	}
	// Extend every lock (a window as long as the retention): wait until
	// every lock written above lapses within the window from now (locks
	// are rounded up to the next second).
	time.Sleep(2500 * time.Millisecond)
	_, before := retention(chunk)
	out = e.ok("lock", "extend", "--window", "12s")
	if !strings.Contains(out, "locks extended") || strings.Contains(out, " 0 locks extended") {
		t.Fatalf("lock extend:\n%s", out)
	}
	if _, after := retention(chunk); !after.After(before) {
		t.Fatalf("the chunk's lock was not extended: %s -> %s", before, after)
	}
	if out := e.ok("lock", "extend"); !strings.Contains(out, "; 0 locks extended") {
		t.Fatalf("a second extend with the default window extended locks just extended:\n%s", out)
	}

	// Once the locks lapse, forget and prune go ahead.
	_, last := retention(chunk)
	time.Sleep(time.Until(last) + time.Second)
	if out := e.ok("forget", "--keep-last", "1", "--prune"); !strings.Contains(out, "1 snapshots forgotten") || !strings.Contains(out, "prune: deleted") {
		t.Fatalf("forget --prune after the locks lapsed:\n%s", out)
	}
	to := filepath.Join(e.dir, "restored")
	e.ok("restore", "--all", "--to", to)
	for _, g := range []string{"alpha", "beta"} {
		sameTree(t, filepath.Join(e.root, g), filepath.Join(to, g))
	}
	e.ok("verify", "--read-data")
}

// TestLockedReplicationTarget: a primary in a local folder replicates to a
// MinIO bucket with a lock policy of its own; everything there is locked,
// the target's locks extend on their own, and a target without object lock
// is refused that policy.
func TestLockedReplicationTarget(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	e := newEnv(t)
	e.extra = minioEnv("target lock")
	e.ok("fixture", "generate", e.root, "--graphs", "alpha", "--size", "2000000")
	e.ok("init")
	e.ok("backup", "--all", "--quiet-window", "0")
	url := func(b string) string {
		return "s3://" + b + "/replica?endpoint=" + srv.Endpoint + "&use_path_style=true"
	}
	e.fails("created without object lock", "targets", "add", "plain", url(srv.NewBucket(t)), "--object-lock", "compliance", "--retention", "1d")
	bucket := srv.NewLockedBucket(t)
	e.ok("targets", "add", "vault", url(bucket), "--object-lock", "compliance", "--retention", "1h")
	e.ok("replicate", "--target", "vault")

	raw := srv.Client()
	p, err := raw.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("replica/")})
	if err != nil {
		t.Fatal(err)
	}
	locked := 0
	for _, o := range p.Contents {
		key := aws.ToString(o.Key)
		if strings.Contains(key, "/leases/") || strings.Contains(key, "/health/") {
			continue
		}
		out, err := raw.GetObjectRetention(ctx, &awss3.GetObjectRetentionInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil || out.Retention.Mode != types.ObjectLockRetentionModeCompliance {
			t.Fatalf("%s on the target is not locked: %v", key, err)
		}
		locked++
	}
	if locked < 4 { // config, key, manifest, pack
		t.Fatalf("only %d objects on the target", locked)
	}
	time.Sleep(2500 * time.Millisecond) // the locks now lapse within the hour-long window (they are rounded up to the second)
	if out := e.ok("lock", "extend", "--target", "vault", "--window", "1h"); !strings.Contains(out, "locks extended") || strings.Contains(out, " 0 locks extended") {
		t.Fatalf("lock extend --target:\n%s", out)
	}
	e.fails("has no object lock policy", "lock", "extend")
	env := e.repo
	e.repo = url(bucket)
	e.ok("restore", "alpha", "latest", "--to", filepath.Join(e.dir, "alpha-from-vault"))
	e.repo = env
	sameTree(t, filepath.Join(e.root, "alpha"), filepath.Join(e.dir, "alpha-from-vault"))
}
