package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/graphkeep/graphkeep/integration/miniotest"
)

// TestDisasterRecoveryOnMinIO: three graphs on a primary bucket, two
// target buckets; a checkpoint; the primary bucket is wiped; failover to a
// target with --restore reproduces every graph byte-identical with equal
// LightRAG counts; the old primary comes back (empty), is caught up by
// replication, and failback leaves both copies consistent. A checkpoint
// whose snapshot lost a chunk on one target validates as not restorable
// there and restorable elsewhere.
func TestDisasterRecoveryOnMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	e := newEnv(t)
	url := func(bucket string) string {
		return "s3://" + bucket + "/graphkeep?endpoint=" + srv.Endpoint + "&use_path_style=true"
	}
	primaryBucket, eastBucket, westBucket := srv.NewBucket(t), srv.NewBucket(t), srv.NewBucket(t)
	e.repo = url(primaryBucket)
	e.extra = minioEnv("dr test", "GRAPHKEEP_STATE_DIR="+filepath.Join(e.dir, "state"))
	graphs := map[string]string{}
	for _, g := range []string{"alpha", "beta", "gamma"} {
		graphs[g] = e.graph(g, 12)
	}
	e.ok("init")
	e.ok("targets", "add", "east", url(eastBucket))
	e.ok("targets", "add", "west", url(westBucket))
	var cp struct {
		ID        string `json:"id"`
		Snapshots []struct {
			Graph    string `json:"graph"`
			ID       string `json:"id"`
			LightRAG struct {
				Nodes, Edges, Docs, Chunks int64
				VectorRows                 int64 `json:"vector_rows"`
			} `json:"lightrag"`
		} `json:"snapshots"`
	}
	e.jsonOut(&cp, "checkpoint", "create", "--note", "dr drill")
	if len(cp.Snapshots) != 3 {
		t.Fatalf("checkpoint: %+v", cp)
	}
	e.ok("replicate")
	e.ok("checkpoint", "validate", cp.ID, "--read-data")
	e.ok("health")

	// A chunk of beta's snapshot is lost on west only.
	client := srv.Client()
	deleteOneChunk(t, client, westBucket)
	var v struct {
		Locations []struct {
			Location       string `json:"location"`
			State          string `json:"state"`
			MissingObjects int    `json:"missing_objects"`
		} `json:"locations"`
	}
	e.jsonOut(&v, "checkpoint", "validate", cp.ID)
	states := map[string]string{}
	for _, l := range v.Locations {
		states[l.Location] = l.State
	}
	if states["primary"] != "restorable" || states["east"] != "restorable" || states["west"] != "missing" {
		t.Fatalf("after losing a chunk on west: %v", states)
	}

	// Disaster: the primary bucket is wiped.
	keep := filepath.Join(e.dir, "originals")
	for g, dir := range graphs {
		copyDir(t, dir, filepath.Join(keep, g))
	}
	wipeBucket(t, client, primaryBucket)
	gone := time.Now()
	e.fails("CRITICAL", "health")
	e.fails("checkpoint", "failover", "--target", "west", "--restore") // west lost a chunk
	e.ok("failover", "--target", "east", "--restore")
	t.Logf("primary gone -> graphs restored: %s", time.Since(gone).Round(10*time.Millisecond))
	// Run again: the failover is done (exit 0), and a graph whose directory
	// went missing since is restored, the others left alone.
	var again string
	for g := range graphs {
		if err := os.RemoveAll(filepath.Join(e.root, g)); err != nil {
			t.Fatal(err)
		}
		again = g
		break
	}
	if out := e.ok("failover", "--target", "east", "--restore"); !strings.Contains(out, "already done") || !strings.Contains(out, "restored "+again+"/") {
		t.Fatalf("failover run again:\n%s", out)
	}
	for g := range graphs {
		sameTree(t, filepath.Join(keep, g), filepath.Join(e.root, g))
	}
	var snaps []snapshotLine
	e.jsonOut(&snaps, "snapshots") // through the redirect: the new primary
	counts := map[string]snapshotLine{}
	for _, s := range snaps {
		counts[s.Graph] = s
	}
	for _, s := range cp.Snapshots {
		got := counts[s.Graph].LightRAG
		if got.Nodes != s.LightRAG.Nodes || got.Edges != s.LightRAG.Edges || got.Docs != s.LightRAG.Docs || got.VectorRows != s.LightRAG.VectorRows {
			t.Fatalf("%s: counts after failover %+v, checkpoint %+v", s.Graph, got, s.LightRAG)
		}
	}

	// Life goes on at the new primary; the old one comes back empty and is
	// caught up by replication (as target old-primary).
	e.ok("backup", "--all")
	e.ok("replicate", "--target", "old-primary")
	e.ok("failover", "--target", "old-primary")
	e.ok("verify", "--read-data") // the old primary, primary again
	east := *e
	east.repo = url(eastBucket)
	east.extra = append(append([]string{}, e.extra...), "GRAPHKEEP_STATE_DIR="+filepath.Join(e.dir, "no-redirects"))
	east.ok("verify", "--read-data")
	var onPrimary, onEast []snapshotLine
	e.jsonOut(&onPrimary, "snapshots")
	east.jsonOut(&onEast, "snapshots")
	if len(onPrimary) != len(onEast) || len(onPrimary) != 6 {
		t.Fatalf("after failback: %d snapshots on the primary, %d on east; want 6 on both", len(onPrimary), len(onEast))
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state", "primary-redirects.json")); err != nil {
		t.Fatal("no redirect recorded")
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		data, err := os.ReadFile(filepath.Join(from, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, en.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func deleteOneChunk(t *testing.T, c *awss3.Client, bucket string) {
	t.Helper()
	ctx := context.Background()
	out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("graphkeep/chunks/"), MaxKeys: aws.Int32(1)})
	if err != nil || len(out.Contents) == 0 {
		t.Fatalf("no chunk to delete in %s: %v", bucket, err)
	}
	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: out.Contents[0].Key}); err != nil {
		t.Fatal(err)
	}
}
