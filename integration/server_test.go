package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/api/apitest"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/integration/miniotest"
)

const (
	testAdminToken = "integration-admin-token-0123456789"
	testReadToken  = "integration-read-token-0123456789"
)

// server is a `graphkeep serve` process.
type server struct {
	t    *testing.T
	url  string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs the binary with e's environment and an optional config.
func (e *env) startServer(t *testing.T, config string) *server {
	t.Helper()
	port := freePort(t)
	args := []string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port)}
	if config != "" {
		path := filepath.Join(e.dir, fmt.Sprintf("config-%d.yaml", port))
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = e.environ()
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, logs: logs}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
		}
		if strings.Contains(logs.String(), testAdminToken) {
			t.Error("the server logged a token")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not start:\n%s", logs.String())
	return nil
}

// call sends a request with the admin token and decodes the answer.
func (s *server) call(method, path, body string, out any) int {
	s.t.Helper()
	return s.callAs(testAdminToken, method, path, body, out)
}

func (s *server) callAs(token, method, path, body string, out any) int {
	s.t.Helper()
	return apitest.Call(s.t, s.url, token, method, path, body, out)
}

// must fails unless the call answers want.
func (s *server) must(want int, method, path, body string, out any) {
	s.t.Helper()
	var raw json.RawMessage
	code := s.call(method, path, body, &raw)
	if code != want {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatal(err)
		}
	}
}

type apiJob struct {
	ID     string          `json:"id"`
	State  string          `json:"state"`
	Result json.RawMessage `json:"result"`
}

// TestServerOnMinIO starts the real binary against MinIO and drives every
// route with an HTTP client, restore byte-identity included.
func TestServerOnMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	e := newEnv(t)
	e.repo = "s3://" + srv.NewBucket(t) + "/graphkeep?endpoint=" + srv.Endpoint + "&use_path_style=true"
	target := "s3://" + srv.NewBucket(t) + "/replica?endpoint=" + srv.Endpoint + "&use_path_style=true"
	e.extra = minioEnv("server test", "GRAPHKEEP_ADMIN_TOKEN="+testAdminToken, "GRAPHKEEP_READ_TOKEN="+testReadToken)
	g1 := e.graph("g1", 8)
	e.graph("g2", 8)
	e.ok("init")
	restoreRoot := filepath.Join(e.dir, "restores")
	s := e.startServer(t, "server:\n  restore_root: "+restoreRoot+"\nretention:\n  keep_last: 1\n")

	// Open routes and auth.
	s.must(200, "GET", "/healthz", "", nil)
	s.must(200, "GET", "/readyz", "", nil)
	s.must(200, "GET", "/openapi.json", "", nil)
	if code := s.callAs("", "GET", "/graphs", "", nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code := s.callAs(testReadToken, "POST", "/backup/graphs/g1/snapshots", "", nil); code != 403 {
		t.Fatalf("read token posting: %d", code)
	}

	// Backup.
	var j apiJob
	s.must(201, "POST", "/backup/graphs/g1/snapshots?wait=true", "", &j)
	var snap struct{ ID string }
	_ = json.Unmarshal(j.Result, &snap)
	s.must(202, "POST", "/backup/graphs/g2/snapshots", "", &j)
	waitJob(t, s, j.ID)
	var snaps []struct{ ID string }
	s.must(200, "GET", "/backup/graphs/g1/snapshots", "", &snaps)
	if len(snaps) != 1 {
		t.Fatalf("g1 snapshots: %+v", snaps)
	}
	s.must(200, "GET", "/backup/graphs/g1/snapshots/"+snap.ID, "", nil)
	s.must(201, "POST", "/backup/graphs/g1/snapshots/"+snap.ID+"/verify?wait=true", `{"read_data": true}`, nil)
	s.must(201, "POST", "/backup/graphs/g1/snapshots/latest/restore?wait=true", `{"to": "`+filepath.Join(restoreRoot, "g1")+`"}`, nil)
	sameTree(t, g1, filepath.Join(restoreRoot, "g1"))
	s.must(200, "GET", "/backup/stats", "", nil)
	s.must(200, "GET", "/graphs", "", nil)
	s.must(200, "GET", "/graphs/g1", "", nil)

	// Replication.
	s.must(201, "POST", "/replication/targets", `{"id": "dr", "url": "`+target+`"}`, nil)
	s.must(200, "GET", "/replication/targets", "", nil)
	s.must(201, "POST", "/replication/sync?wait=true", "{}", nil)
	s.must(200, "GET", "/replication/targets/dr/health", "", nil)
	var gs struct {
		Targets []struct {
			HoldsLatest bool `json:"holds_latest"`
		}
	}
	s.must(200, "GET", "/replication/graphs/g1/status", "", &gs)
	if len(gs.Targets) != 1 || !gs.Targets[0].HoldsLatest {
		t.Fatalf("g1 replication status: %+v", gs)
	}

	// Recovery.
	s.must(201, "POST", "/recovery/checkpoints?wait=true", `{"note": "server test"}`, &j)
	var cp struct {
		ID        string
		Snapshots []struct{ Graph, ID string }
	}
	_ = json.Unmarshal(j.Result, &cp)
	s.must(200, "GET", "/recovery/checkpoints", "", nil)
	s.must(200, "GET", "/recovery/checkpoints/"+cp.ID, "", nil)
	s.must(201, "POST", "/replication/sync?wait=true", "", nil)
	s.must(201, "POST", "/recovery/checkpoints/"+cp.ID+"/validate?wait=true", `{"read_data": false}`, nil)
	var h struct {
		Status  string
		Reasons []string
	}
	s.must(200, "GET", "/recovery/health?refresh=true", "", &h)
	if h.Status != "HEALTHY" {
		t.Fatalf("health: %+v", h)
	}
	s.must(200, "GET", "/recovery/status", "", nil)
	s.must(201, "POST", "/recovery/checkpoints/"+cp.ID+"/failover?wait=true", `{"target": "dr", "dry_run": true}`, nil)

	// Cleanup, delete (pinned -> 409), jobs.
	s.must(201, "POST", "/backup/cleanup?wait=true", `{"dry_run": true}`, nil)
	s.must(409, "DELETE", "/backup/graphs/"+cp.Snapshots[0].Graph+"/snapshots/"+cp.Snapshots[0].ID, "", nil)
	s.must(204, "DELETE", "/backup/graphs/g1/snapshots/"+snap.ID, "", nil) // not pinned
	var jobs []apiJob
	s.must(200, "GET", "/jobs", "", &jobs)
	s.must(200, "GET", "/jobs/"+jobs[0].ID, "", nil)
	s.must(202, "DELETE", "/jobs/"+jobs[0].ID, "", nil)
	s.must(204, "DELETE", "/replication/targets/dr", "", nil)
	var metrics bytes.Buffer
	req, _ := http.NewRequest("GET", s.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testReadToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(&metrics, resp.Body)
	resp.Body.Close()
	if !strings.Contains(metrics.String(), `graphkeep_backup_last_success_timestamp_seconds{graph="g1"}`) {
		t.Fatal("metrics lack the last backup of g1")
	}
}

func waitJob(t *testing.T, s *server, id string) apiJob {
	t.Helper()
	var j apiJob
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s.must(200, "GET", "/jobs/"+id, "", &j)
		if j.State != "queued" && j.State != "running" {
			if j.State != "succeeded" {
				t.Fatalf("job %s ended %s: %s", id, j.State, j.Result)
			}
			return j
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish", id)
	return j
}

// TestTwoInstancesShareARepository: two servers with the same schedule on
// one repository never run the same scheduled backup twice in a window,
// and either serves every read.
func TestTwoInstancesShareARepository(t *testing.T) {
	e := newEnv(t)
	e.extra = []string{"GRAPHKEEP_ADMIN_TOKEN=" + testAdminToken}
	e.graph("g1", 3)
	e.graph("g2", 3)
	e.ok("init")
	config := "schedule:\n  backup_interval: 3s\n"
	a := e.startServer(t, config)
	b := e.startServer(t, config)
	// Each window's backup of g1 is claimed by one claim object; wait for
	// three windows.
	claimDir := filepath.Join(e.dir, "repo", "schedule", "backup-g1")
	claims := func() int { entries, _ := os.ReadDir(claimDir); return len(entries) }
	deadline := time.Now().Add(30 * time.Second)
	for claims() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d windows of g1 claimed within 30s", claims())
		}
		time.Sleep(100 * time.Millisecond)
	}
	backupsOfG1 := func(s *server) int {
		var jobs []struct{ Kind, Target string }
		s.must(200, "GET", "/jobs", "", &jobs)
		n := 0
		for _, j := range jobs {
			if j.Kind == "backup" && j.Target == "g1" {
				n++
			}
		}
		return n
	}
	// Jobs first, claims after: a claim is written before its job, so
	// the jobs can never outnumber the claims read later.
	jobs := backupsOfG1(a) + backupsOfG1(b)
	claimed := claims()
	if jobs == 0 || jobs > claimed {
		t.Fatalf("%d scheduled backup jobs of g1 for %d claimed windows (two instances)", jobs, claimed)
	}
	var fromA, fromB []struct{ ID string }
	a.must(200, "GET", "/backup/graphs/g1/snapshots", "", &fromA)
	if len(fromA) == 0 || len(fromA) > claims() {
		t.Fatalf("%d snapshots of g1 for %d claimed windows", len(fromA), claims())
	}
	// Both see the same repository once their read caches (2s) agree.
	deadline = time.Now().Add(10 * time.Second)
	for {
		a.must(200, "GET", "/backup/graphs/g1/snapshots", "", &fromA)
		b.must(200, "GET", "/backup/graphs/g1/snapshots", "", &fromB)
		if len(fromA) == len(fromB) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance a sees %d snapshots, b %d", len(fromA), len(fromB))
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.ok("verify", "--read-data")
}

// TestServerContinuousProtection: with schedule.continuous the server
// snapshots a graph soon after it changes, and records the RPO metric.
func TestServerContinuousProtection(t *testing.T) {
	e := newEnv(t)
	dir := e.graph("g1", 2)
	e.ok("init")
	e.extra = []string{"GRAPHKEEP_ADMIN_TOKEN=" + testAdminToken, "GRAPHKEEP_QUIET_WINDOW=200ms"}
	s := e.startServer(t, "schedule:\n  continuous: true\n  continuous_min_interval: 200ms\n")
	count := func() int {
		var snaps []json.RawMessage
		s.must(200, "GET", "/backup/graphs/g1/snapshots", "", &snaps)
		return len(snaps)
	}
	deadline := time.Now().Add(15 * time.Second)
	for count() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot of the new graph within 15s:\n%s", s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := fixture.Grow(dir, fixture.Spec{Docs: 2, EmbeddingDim: 256, Seed: uint64(len("g1"))}, 1); err != nil {
		t.Fatal(err)
	}
	// Grow dates the files at rest (long ago): touch one, as LightRAG's write would.
	now := time.Now()
	if err := os.Chtimes(filepath.Join(dir, "kv_store_doc_status.json"), now, now); err != nil {
		t.Fatal(err)
	}
	for count() < 2 {
		if time.Now().After(deadline.Add(15 * time.Second)) {
			t.Fatalf("the change was not protected:\n%s", s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", s.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "graphkeep_watch_rpo_seconds_count{graph=\"g1\"}") {
		t.Fatalf("/metrics (%d) has no RPO series for g1", resp.StatusCode)
	}
}

// TestServerS3TargetWithoutCredentials: a target the server cannot
// authenticate to (no credentials, nothing listening) is the client's
// mistake, a 4xx, never a 500.
func TestServerS3TargetWithoutCredentials(t *testing.T) {
	e := newEnv(t)
	e.graph("g1", 1)
	e.ok("init")
	e.extra = []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_PROFILE=", "AWS_SESSION_TOKEN=",
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(e.dir, "none"), "AWS_CONFIG_FILE=" + filepath.Join(e.dir, "none")}
	s := e.startServer(t, "")
	var raw json.RawMessage
	if code := s.call("POST", "/replication/targets", `{"id": "eu", "url": "s3://bucket-x/p?region=us-east-1&endpoint=http://127.0.0.1:1"}`, &raw); code < 400 || code >= 500 {
		t.Fatalf("a target without credentials: %d %s", code, raw)
	}
}
