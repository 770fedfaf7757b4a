package integration

import (
	"path/filepath"
	"testing"

	"github.com/graphkeep/graphkeep/integration/miniotest"
)

// TestCLIOnMinIO drives the real binary against a real S3 server.
func TestCLIOnMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	e := newEnv(t)
	e.repo = "s3://" + bucket + "/graphkeep?endpoint=" + srv.Endpoint + "&use_path_style=true"
	e.extra = minioEnv("minio test password")
	g := e.graph("g1", 10)
	e.ok("check")
	e.ok("init")
	var lines []backupLine
	e.jsonOut(&lines, "backup", "--all")
	if len(lines) != 1 || lines[0].StoredBytes == 0 {
		t.Fatalf("backup: %+v", lines)
	}
	e.jsonOut(&lines, "backup", "g1")
	if lines[0].StoredBytes != 0 {
		t.Fatalf("unchanged re-backup stored %d bytes on S3", lines[0].StoredBytes)
	}
	e.ok("verify", "--read-data")
	to := filepath.Join(e.dir, "restored")
	e.ok("restore", "g1", "latest", "--to", to)
	sameTree(t, g, to)
	e.ok("forget", "--keep-last", "1", "--prune")
	e.ok("verify")

	wrong := *e
	wrong.extra = []string{"AWS_ACCESS_KEY_ID=" + miniotest.User, "AWS_SECRET_ACCESS_KEY=wrong", "AWS_EC2_METADATA_DISABLED=true"}
	wrong.fails("denied: check the credentials", "snapshots")
}

// minioEnv is the environment of graphkeep run against the test MinIO with
// the repository password, plus more.
func minioEnv(password string, more ...string) []string {
	return append([]string{"AWS_ACCESS_KEY_ID=" + miniotest.User, "AWS_SECRET_ACCESS_KEY=" + miniotest.Password,
		"AWS_EC2_METADATA_DISABLED=true", "GRAPHKEEP_PASSWORD=" + password}, more...)
}
