package integration

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/graphkeep/graphkeep/integration/miniotest"
)

// TestUndeleteAfterAnAttack: on a MinIO bucket with object lock and a
// default compliance retention, someone with the repository's own
// credentials overwrites objects with garbage and deletes every object
// through the S3 API; deleting a version is refused. graphkeep undelete
// brings every object back, and every graph restores byte-identical.
func TestUndeleteAfterAnAttack(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	bucket := srv.NewLockedBucket(t)
	raw := srv.Client()
	if _, err := raw.PutObjectLockConfiguration(ctx, &awss3.PutObjectLockConfigurationInput{Bucket: aws.String(bucket),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeCompliance, Days: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.repo = "s3://" + bucket + "/graphkeep?endpoint=" + srv.Endpoint + "&use_path_style=true"
	e.extra = minioEnv("undelete test")
	e.ok("fixture", "generate", e.root, "--graphs", "alpha,beta", "--size", "3000000")
	if out := e.ok("init"); !strings.Contains(out, "object lock (the bucket's default retention): every object is written locked (compliance) for 1d") {
		t.Fatalf("init on a bucket that locks by default:\n%s", out)
	}
	e.ok("backup", "--all", "--quiet-window", "0")

	// The attack: garbage over a manifest and a chunk, then every object
	// deleted, then an attempt to delete a version for good.
	var keys []string
	p := awss3.NewListObjectsV2Paginator(raw, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("graphkeep/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	var manifest, chunk string
	for _, k := range keys {
		switch {
		case manifest == "" && strings.Contains(k, "/snapshots/"):
			manifest = k
		case chunk == "" && strings.Contains(k, "/chunks/"):
			chunk = k
		}
	}
	if manifest == "" || chunk == "" {
		t.Fatalf("no manifest or chunk among %d objects", len(keys))
	}
	for _, k := range []string{manifest, chunk, "graphkeep/graphkeep.repo"} {
		if _, err := raw.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader([]byte("ransom note"))}); err != nil {
			t.Fatalf("overwrite %s: %v", k, err)
		}
	}
	for _, k := range keys {
		if _, err := raw.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			t.Fatalf("delete %s: %v", k, err)
		}
	}
	versions, err := raw.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(chunk)})
	if err != nil || len(versions.Versions) == 0 {
		t.Fatalf("versions of %s: %v", chunk, err)
	}
	for _, v := range versions.Versions {
		if _, err := raw.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId,
			BypassGovernanceRetention: aws.Bool(true)}); err == nil {
			t.Fatalf("deleted version %s of %s under compliance retention", aws.ToString(v.VersionId), chunk)
		}
	}
	e.fails("", "snapshots")

	// The way back.
	if out := e.ok("undelete", "--dry-run"); !strings.Contains(out, "would bring back") {
		t.Fatalf("undelete --dry-run:\n%s", out)
	}
	e.fails("", "snapshots") // a dry run changes nothing
	out := e.ok("undelete")
	t.Logf("undelete:\n%s", out)
	if !strings.Contains(out, "restored graphkeep.repo") && !strings.Contains(out, "restored "+strings.TrimPrefix(manifest, "graphkeep/")) {
		t.Fatalf("undelete did not name what it restored from under foreign content:\n%s", out)
	}
	to := filepath.Join(e.dir, "restored")
	e.ok("restore", "--all", "--to", to)
	for _, g := range []string{"alpha", "beta"} {
		sameTree(t, filepath.Join(e.root, g), filepath.Join(to, g))
	}
	e.ok("verify", "--read-data")
	if out := e.ok("undelete"); !strings.Contains(out, "brought back 0 hidden by delete markers and 0 covered") {
		t.Fatalf("a second undelete found work:\n%s", out)
	}
}
