package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/integration/miniotest"
)

// replicaEnv is a primary on local disk replicating to a bucket on MinIO.
type replicaEnv struct {
	*env
	srv    *miniotest.Server
	bucket string
	target string // the target's repository URL
	creds  []string
}

func newReplicaEnv(t *testing.T) *replicaEnv {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	e := newEnv(t)
	creds := minioEnv("replication test")
	e.extra = creds
	return &replicaEnv{env: e, srv: srv, bucket: bucket, creds: creds,
		target: "s3://" + bucket + "/replica?endpoint=" + srv.Endpoint + "&use_path_style=true"}
}

// onTarget runs graphkeep against the target repository.
func (e *replicaEnv) onTarget() *env {
	te := *e.env
	te.repo = e.target
	te.extra = append(append([]string{}, e.creds...), "GRAPHKEEP_CACHE_DIR="+filepath.Join(e.dir, "target-cache"))
	return &te
}

// events runs `replicate --watch` and streams its JSON events.
type watchProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []map[string]any
}

func (e *replicaEnv) startWatch(t *testing.T) *watchProc {
	t.Helper()
	cmd := exec.Command(binary, "--json", "replicate", "--watch", "--interval", "1s", "--probe-timeout", "2s")
	cmd.Env = e.environ()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &watchProc{cmd: cmd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				w.mu.Lock()
				w.events = append(w.events, ev)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// waitFor waits until an event after index `from` matches.
func (w *watchProc) waitFor(t *testing.T, from int, within time.Duration, match func(map[string]any) bool) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for i := from; i < len(w.events); i++ {
			if match(w.events[i]) {
				w.mu.Unlock()
				return i
			}
		}
		w.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Fatalf("no matching event within %s; events: %v", within, w.events)
	return 0
}

func (w *watchProc) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

func lagOf(t *testing.T, e *env) (int, string) {
	var lines []targetLine
	e.jsonOut(&lines, "targets", "list")
	if len(lines) != 1 {
		t.Fatalf("targets list: %+v", lines)
	}
	if lines[0].LagSnapshots == nil {
		return -1, lines[0].Status // unknown
	}
	return *lines[0].LagSnapshots, lines[0].Status
}

type targetLine struct {
	ID           string `json:"id"`
	URL          string `json:"url"`
	Status       string `json:"status"`
	LagSnapshots *int   `json:"lag_snapshots"`
	LastError    string `json:"last_error"`
}

// TestReplicationSurvivesTargetOutage: a MinIO target stops answering in
// the middle of replication; backups on the primary go on; the target is
// marked UNREACHABLE within 30 s; when it comes back, replication catches
// up and the target restores byte-identical graphs. Then its bucket is
// wiped, and replication fills it again.
func TestReplicationSurvivesTargetOutage(t *testing.T) {
	e := newReplicaEnv(t)
	g1 := e.graph("g1", 30)
	e.graph("g2", 30)
	e.ok("init")
	e.ok("backup", "--all")
	out := e.ok("targets", "add", "m1", e.target)
	if strings.Contains(out, miniotest.Password) {
		t.Fatal("targets add printed the secret key")
	}

	w := e.startWatch(t)
	w.waitFor(t, 0, 60*time.Second, func(ev map[string]any) bool { return ev["kind"] == "replicated" })
	if lag, status := lagOf(t, e.env); lag != 0 || status != "HEALTHY" {
		t.Fatalf("after the first round: lag %d, status %s", lag, status)
	}

	// The target goes away in the middle of the next copy.
	spec := fixture.Spec{Docs: 30, EmbeddingDim: 256, Seed: 2}
	if _, err := fixture.Grow(g1, spec, 3); err != nil {
		t.Fatal(err)
	}
	mark := w.count()
	e.ok("backup", "g1")
	time.Sleep(300 * time.Millisecond)
	id := e.srv.Container.GetContainerID()
	if out, err := exec.Command("docker", "pause", id).CombinedOutput(); err != nil {
		t.Fatalf("docker pause: %v %s", err, out)
	}
	paused := time.Now()
	unpaused := false
	defer func() {
		if !unpaused {
			_ = exec.Command("docker", "unpause", id).Run()
		}
	}()

	// The primary does not notice.
	start := time.Now()
	if _, err := fixture.Grow(g1, fixture.Spec{Docs: 33, EmbeddingDim: 256, Seed: 2}, 1); err != nil {
		t.Fatal(err)
	}
	e.ok("backup", "g1")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a backup during the target outage took %s", took)
	}
	w.waitFor(t, mark, 30*time.Second-time.Since(paused), func(ev map[string]any) bool {
		return ev["kind"] == "state" && ev["state"] == "UNREACHABLE"
	})
	t.Logf("UNREACHABLE %s after the outage began", time.Since(paused).Round(100*time.Millisecond))

	if out, err := exec.Command("docker", "unpause", id).CombinedOutput(); err != nil {
		t.Fatalf("docker unpause: %v %s", err, out)
	}
	unpaused = true
	mark = w.count()
	w.waitFor(t, mark, 60*time.Second, func(ev map[string]any) bool { return ev["kind"] == "state" && ev["state"] == "HEALTHY" })
	deadline := time.Now().Add(60 * time.Second)
	for {
		lag, _ := lagOf(t, e.env)
		if lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target is still %d snapshots behind a minute after it came back", lag)
		}
		time.Sleep(time.Second)
	}
	_ = w.cmd.Process.Signal(syscall.SIGINT)

	te := e.onTarget()
	te.ok("verify", "--read-data")
	to := filepath.Join(e.dir, "from-target", "g1")
	te.ok("restore", "g1", "latest", "--to", to)
	sameTree(t, g1, to)

	// Wipe the bucket: the next run fills it again.
	wipeBucket(t, e.srv.Client(), e.bucket)
	e.ok("replicate")
	te.ok("verify", "--read-data")
	var snaps []snapshotLine
	te.jsonOut(&snaps, "snapshots")
	var primary []snapshotLine
	e.jsonOut(&primary, "snapshots")
	if len(snaps) != len(primary) {
		t.Fatalf("refilled target holds %d snapshots, the primary %d", len(snaps), len(primary))
	}
}

// TestKilledReplicationLeavesConsistentTarget kills a replication process
// while it copies and checks that the target never shows a manifest whose
// chunks are missing; the next run completes.
func TestKilledReplicationLeavesConsistentTarget(t *testing.T) {
	e := newReplicaEnv(t)
	for i, g := range []string{"a", "b", "c", "d"} {
		if err := fixture.Generate(filepath.Join(e.root, g), fixture.Spec{Docs: 50, EmbeddingDim: 1024, Seed: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	e.ok("init", "--avg-chunk-size", "65536", "--pack-size", "1")
	e.ok("backup", "--all")
	e.ok("targets", "add", "m1", e.target)
	var st struct {
		Repository struct {
			Objects int `json:"objects"`
		} `json:"repository"`
	}
	e.jsonOut(&st, "stats")
	if st.Repository.Objects < 8 {
		t.Fatalf("the backups stored %d objects under chunks/: make the data bigger", st.Repository.Objects)
	}

	cmd := exec.Command(binary, "replicate")
	cmd.Env = e.environ()
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	client := e.srv.Client()
	te := e.onTarget()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	var err error
poll:
	for {
		select {
		case err = <-exited:
			t.Fatalf("replication finished before it could be killed (%v): make the data bigger", err)
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatal("replication copied too few chunks within 60s")
		case <-time.After(20 * time.Millisecond):
		}
		// Mid-copy: well into the chunks, before all of them are there.
		if countKeys(t, client, e.bucket, "replica/chunks/") >= st.Repository.Objects/2 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err = <-exited
			break poll
		}
	}
	if status, ok := err.(*exec.ExitError); !ok || status.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("replication finished before it could be killed (%v): make the data bigger", err)
	}
	// Whatever manifests made it have all their chunks.
	te.ok("verify")
	var partial []snapshotLine
	te.jsonOut(&partial, "snapshots")
	t.Logf("killed with %d of 4 snapshots on the target", len(partial))
	e.ok("replicate")
	te.ok("verify", "--read-data")
	var all []snapshotLine
	te.jsonOut(&all, "snapshots")
	if len(all) != 4 {
		t.Fatalf("after resuming the target holds %d snapshots, want 4", len(all))
	}
}

func countKeys(t *testing.T, c *awss3.Client, bucket, prefix string) int {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Contents)
}

func wipeBucket(t *testing.T, c *awss3.Client, bucket string) {
	t.Helper()
	ctx := context.Background()
	p := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := countKeys(t, c, bucket, ""); n != 0 {
		t.Fatalf("bucket still holds %d objects", n)
	}
}
