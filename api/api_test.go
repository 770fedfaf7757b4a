package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/api"
	"github.com/graphkeep/graphkeep/api/apitest"
	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
	"github.com/graphkeep/graphkeep/core/service"
	"github.com/graphkeep/graphkeep/providers/local"
)

const (
	adminToken  = "admin-token-0123456789abcdef"
	readToken   = "read-token-0123456789abcdefgh"
	backupToken = "backup-token-0123456789abcdef"
)

var seq atomic.Int64

func open(ctx context.Context, url string) (blob.Store, error) {
	return local.Open(ctx, url, local.Options{})
}

type fixtureServer struct {
	t    testing.TB
	url  string
	root string
	s    *api.Server
	svc  *service.Service
}

func newServer(t testing.TB, tokens bool) *fixtureServer {
	t.Helper()
	return newServerWith(t, tokens, false)
}

// newServerWith is newServer, append-only when asked.
func newServerWith(t testing.TB, tokens, appendOnly bool) *fixtureServer {
	t.Helper()
	ctx := context.Background()
	url := fmt.Sprintf("mem://api-%d", seq.Add(1))
	root := t.TempDir()
	for i, g := range []string{"g1", "g2"} {
		if err := fixture.Generate(filepath.Join(root, g), fixture.Spec{Docs: 2, EmbeddingDim: 32, Seed: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	svc := service.New(service.Config{PrimaryURL: url, Sources: func() ([]backup.Source, error) { return backup.Discover(root) }, Open: open,
		CacheDir: t.TempDir(), GraphsRoot: root, RestoreRoots: []string{filepath.Join(t.TempDir(), "restores")}, Retention: retention.Policy{KeepLast: 1},
		StateDir: t.TempDir(), Lease: repo.LeaseOptions{TTL: 5 * time.Second, Skew: time.Second, Wait: 10 * time.Second}})
	if _, err := svc.Init(ctx, service.InitOptions{AvgChunkSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	deps := api.Deps{Service: svc, AppendOnly: appendOnly}
	if tokens {
		deps.Tokens = []api.Token{{Name: "a", Token: adminToken, Role: "admin"}, {Name: "r", Token: readToken, Role: "read"},
			{Name: "b", Token: backupToken, Role: "backup"}}
	}
	deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s := api.New(deps)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	// Jobs still running write into the temporary directories: stop them
	// before those are removed.
	t.Cleanup(func() { s.Shutdown(10 * time.Second) })
	return &fixtureServer{t: t, url: ts.URL, root: root, s: s, svc: svc}
}

// do sends a request and decodes the JSON answer into out (when non-nil).
func (f *fixtureServer) do(method, path, token, body string, out any) int {
	f.t.Helper()
	return apitest.Call(f.t, f.url, token, method, path, body, out)
}

type job struct {
	ID     string          `json:"id"`
	State  string          `json:"state"`
	Result json.RawMessage `json:"result"`
	Error  *struct{ Code, Message string }
}

type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func TestBackupRoutes(t *testing.T) {
	f := newServer(t, false)
	var j job
	if code := f.do("POST", "/backup/graphs/g1/snapshots?wait=true", "", "", &j); code != 201 || j.State != "succeeded" {
		t.Fatalf("backup: %d %+v", code, j)
	}
	var res struct{ ID string }
	_ = json.Unmarshal(j.Result, &res)

	// Async: 202 with a job to poll.
	var async job
	if code := f.do("POST", "/backup/graphs/g1/snapshots", "", "{}", &async); code != 202 || async.ID == "" {
		t.Fatalf("async backup: %d %+v", code, async)
	}
	deadline := time.Now().Add(10 * time.Second)
	for async.State != "succeeded" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		f.do("GET", "/jobs/"+async.ID, "", "", &async)
	}
	if async.State != "succeeded" {
		t.Fatalf("job never finished: %+v", async)
	}
	var snaps []struct {
		ID       string
		Graph    string
		LightRAG struct{ Docs int64 } `json:"lightrag"`
	}
	if code := f.do("GET", "/backup/graphs/g1/snapshots", "", "", &snaps); code != 200 || len(snaps) != 2 || snaps[0].LightRAG.Docs != 2 {
		t.Fatalf("list: %d %+v", code, snaps)
	}
	var one struct {
		Files []struct{ Path string } `json:"files"`
	}
	if code := f.do("GET", "/backup/graphs/g1/snapshots/"+res.ID, "", "", &one); code != 200 || len(one.Files) != 12 {
		t.Fatalf("get: %d %+v", code, one)
	}
	if code := f.do("POST", "/backup/graphs/g1/snapshots/latest/verify?wait=true", "", `{"read_data": true}`, &j); code != 201 {
		t.Fatalf("verify: %d %+v", code, j)
	}
	// Restore into the restore root, byte-identical.
	if code := f.do("POST", "/backup/graphs/g1/snapshots/"+res.ID+"/restore?wait=true", "", `{"to": "g1-copy"}`, &j); code != 201 {
		t.Fatalf("restore: %d %+v", code, j)
	}
	want, _ := os.ReadFile(filepath.Join(f.root, "g1", "vdb_entities.json"))
	got, _ := os.ReadFile(filepath.Join(f.root, "g1-copy", "vdb_entities.json"))
	if !bytes.Equal(want, got) {
		t.Fatal("restored graph differs")
	}
	var e apiError
	if code := f.do("POST", "/backup/graphs/g1/snapshots/latest/restore", "", `{"to": "/etc"}`, &e); code != 422 || e.Error.Code != "outside_restore_roots" {
		t.Fatalf("restore outside the roots: %d %+v", code, e)
	}
	var stats struct{ Repository struct{ Snapshots int } }
	if code := f.do("GET", "/backup/stats", "", "", &stats); code != 200 || stats.Repository.Snapshots != 2 {
		t.Fatalf("stats: %d %+v", code, stats)
	}
	// Cleanup (keep_last 1 by default) then delete the last.
	// A duration in the API reads days, as flags and the config file do.
	var dry job
	if code := f.do("POST", "/backup/cleanup?wait=true", "", `{"policy": {"keep_within": "7d"}, "dry_run": true}`, &dry); code != 201 || !strings.Contains(string(dry.Result), `"within 1w"`) {
		t.Fatalf("cleanup keeping 7d: %d %s", code, dry.Result)
	}
	if code := f.do("POST", "/backup/cleanup?wait=true", "", `{"dry_run": false}`, &j); code != 201 {
		t.Fatalf("cleanup: %d %+v", code, j)
	}
	f.do("GET", "/backup/graphs/g1/snapshots", "", "", &snaps)
	if len(snaps) != 1 {
		t.Fatalf("after cleanup %d snapshots", len(snaps))
	}
	if code := f.do("DELETE", "/backup/graphs/g1/snapshots/"+snaps[0].ID, "", "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code := f.do("DELETE", "/backup/graphs/g1/snapshots/"+snaps[0].ID, "", "", &e); code != 404 {
		t.Fatalf("delete again: %d", code)
	}
}

func TestPinnedSnapshotIsConflict(t *testing.T) {
	f := newServer(t, false)
	var j job
	if code := f.do("POST", "/recovery/checkpoints?wait=true", "", `{"graphs": ["g1"], "note": "pin"}`, &j); code != 201 {
		t.Fatalf("checkpoint: %d %+v", code, j)
	}
	var snaps []struct{ ID string }
	f.do("GET", "/backup/graphs/g1/snapshots", "", "", &snaps)
	var e apiError
	if code := f.do("DELETE", "/backup/graphs/g1/snapshots/"+snaps[0].ID, "", "", &e); code != 409 || e.Error.Code != "conflict" {
		t.Fatalf("delete pinned: %d %+v", code, e)
	}
}

func TestBadInput(t *testing.T) {
	f := newServer(t, false)
	cases := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/backup/graphs/g1/snapshots", `{"unknown": 1}`, 400, `unknown field "unknown"`},
		{"POST", "/backup/graphs/g1/snapshots", `{} {}`, 400, "trailing data"},
		{"POST", "/backup/graphs/g1/snapshots", `{`, 400, "malformed JSON"},
		{"POST", "/backup/graphs/g1/snapshots/latest/verify", `{"read_data": "yes"}`, 400, `field "read_data" must be bool`},
		{"POST", "/replication/targets", `{"id": "t1", "url": 5}`, 400, `field "url" must be string`},
		{"POST", "/replication/targets", `{"id": "../x", "url": "mem://x"}`, 400, `"id"`},
		{"POST", "/replication/targets", `{"id": "t1"}`, 400, `"url" is required`},
		{"POST", "/backup/cleanup", `{"policy": {}}`, 422, "keeps nothing"},
		{"POST", "/backup/cleanup", `{"policy": {"keep_within": "6 hours"}}`, 400, "7d"},
		{"GET", "/backup/graphs/g%2F..%2Fx/snapshots", "", 400, `graph "`},
		{"GET", "/backup/graphs/g%00/snapshots", "", 400, `graph "`},
		{"GET", "/backup/graphs/gr%C3%A2ph/snapshots", "", 400, `graph "`},
		{"GET", "/backup/graphs/" + strings.Repeat("a", 65) + "/snapshots", "", 400, `graph "`},
		{"GET", "/backup/graphs/g1/snapshots/..%2Fetc", "", 400, "id"},
		{"GET", "/replication/targets/a%20b/health", "", 400, "id"},
		{"DELETE", "/jobs/..", "", 400, "id"},
		{"GET", "/backup/graphs/g1/snapshots/20991231T000000Z-aaaaaa", "", 404, "no snapshot"},
		{"POST", "/backup/graphs/nope/snapshots", "", 404, "not under the graphs root"},
		{"GET", "/recovery/checkpoints/latest", "", 404, "no checkpoints"},
		{"GET", "/replication/targets/none/health", "", 404, "no such target"},
		{"GET", "/jobs/job-none", "", 404, "no job"},
		{"GET", "/no/such/route", "", 404, "no such route"},
		{"PUT", "/backup/stats", "", 405, "not allowed"},
		{"POST", "/recovery/checkpoints/latest/failover", `{"target": "nowhere"}`, 404, "no such target"},
		{"POST", "/backup/graphs/g1/snapshots", strings.Repeat(" ", 2<<20) + "{}", 413, "over"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var e apiError
			code := f.do(c.method, c.path, "", c.body, &e)
			if code != c.status || !strings.Contains(e.Error.Message, c.want) {
				t.Fatalf("%d %+v, want %d with %q", code, e, c.status, c.want)
			}
		})
	}
}

func TestPanicIsA500WithRequestID(t *testing.T) {
	f := newServer(t, false)
	// A Sources func that panics reaches a handler.
	svc := service.New(service.Config{Sources: func() ([]backup.Source, error) { panic("boom") }})
	s := api.New(api.Deps{Service: svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	resp, err := http.Post(ts.URL+"/backup/graphs/g1/snapshots", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 500 || e.Error.RequestID == "" || e.Error.Code != "internal" {
		t.Fatalf("panic: %d %+v", resp.StatusCode, e)
	}
	_ = f
}

func TestReplicationAndRecoveryRoutes(t *testing.T) {
	f := newServer(t, false)
	target := fmt.Sprintf("mem://api-target-%d", seq.Add(1))
	var tv map[string]any
	if code := f.do("POST", "/replication/targets", "", `{"id": "t1", "url": "`+target+`"}`, &tv); code != 201 || tv["id"] != "t1" {
		t.Fatalf("add target: %d %+v", code, tv)
	}
	// A new target has no success and no measured lag yet: null, not a
	// zero time or -1.
	for _, k := range []string{"last_success", "lag_snapshots", "lag_bytes", "rpo_seconds"} {
		if v, ok := tv[k]; !ok || v != nil {
			t.Errorf("new target's %s = %v (present %v), want null", k, v, ok)
		}
	}
	var e apiError
	if code := f.do("POST", "/replication/targets", "", `{"id": "t1", "url": "`+target+`"}`, &e); code != 409 {
		t.Fatalf("add again: %d %+v", code, e)
	}
	var j job
	if code := f.do("POST", "/recovery/checkpoints?wait=true", "", `{"note": "api"}`, &j); code != 201 {
		t.Fatalf("checkpoint: %d %+v", code, j)
	}
	var cp struct{ ID string }
	_ = json.Unmarshal(j.Result, &cp)
	if code := f.do("POST", "/replication/sync?wait=true", "", "", &j); code != 201 {
		t.Fatalf("sync: %d %+v", code, j)
	}
	var targets []struct {
		ID           string
		Status       string
		LagSnapshots int `json:"lag_snapshots"`
	}
	f.do("GET", "/recovery/health?refresh=true", "", "", nil)
	if code := f.do("GET", "/replication/targets", "", "", &targets); code != 200 || len(targets) != 1 || targets[0].LagSnapshots != 0 || targets[0].Status != "HEALTHY" {
		t.Fatalf("targets: %d %+v", code, targets)
	}
	var th map[string]any
	if code := f.do("GET", "/replication/targets/t1/health", "", "", &th); code != 200 {
		t.Fatalf("target health: %d", code)
	}
	var gs struct {
		Targets []struct {
			HoldsLatest bool `json:"holds_latest"`
		}
	}
	if code := f.do("GET", "/replication/graphs/g1/status", "", "", &gs); code != 200 || len(gs.Targets) != 1 || !gs.Targets[0].HoldsLatest {
		t.Fatalf("graph status: %d %+v", code, gs)
	}
	var cps []map[string]any
	if code := f.do("GET", "/recovery/checkpoints", "", "", &cps); code != 200 || len(cps) != 1 {
		t.Fatalf("checkpoints: %d %+v", code, cps)
	}
	if code := f.do("GET", "/recovery/checkpoints/"+cp.ID, "", "", nil); code != 200 {
		t.Fatalf("checkpoint: %d", code)
	}
	if code := f.do("POST", "/recovery/checkpoints/latest/validate?wait=true", "", `{"read_data": true}`, &j); code != 201 {
		t.Fatalf("validate: %d %+v", code, j)
	}
	var h struct{ Status string }
	if code := f.do("GET", "/recovery/health?refresh=true", "", "", &h); code != 200 || h.Status != "HEALTHY" {
		t.Fatalf("health: %d %+v", code, h)
	}
	if code := f.do("GET", "/recovery/status", "", "", nil); code != 200 {
		t.Fatalf("status: %d", code)
	}
	// A target that holds no repository: "not possible now" (409), not a
	// missing route (404).
	empty := fmt.Sprintf("mem://api-empty-%d", seq.Add(1))
	if code := f.do("POST", "/replication/targets", "", `{"id": "t2", "url": "`+empty+`"}`, nil); code != 201 {
		t.Fatalf("add empty target: %d", code)
	}
	var e409 apiError
	if code := f.do("POST", "/recovery/checkpoints/"+cp.ID+"/failover?wait=true", "", `{"target": "t2", "dry_run": true}`, &e409); code != 409 || e409.Error.Code != "target_empty" || !strings.Contains(e409.Error.Message, "holds no repository") {
		t.Fatalf("dry run to an empty target: %d %+v", code, e409)
	}
	if code := f.do("POST", "/recovery/checkpoints/"+cp.ID+"/failover?wait=true", "", `{"target": "t1", "dry_run": true}`, &j); code != 201 {
		t.Fatalf("failover dry run: %d %+v", code, j)
	}
	if code := f.do("POST", "/recovery/checkpoints/"+cp.ID+"/failover?wait=true", "", `{"target": "t1"}`, &j); code != 201 {
		t.Fatalf("failover: %d %+v", code, j)
	}
	// The server now serves from the promoted target.
	if got, _, _ := f.svc.PrimaryURL(); got != target {
		t.Fatalf("primary after failover = %s, want %s", got, target)
	}
	var graphs []struct {
		ID        string
		Snapshots int
	}
	if code := f.do("GET", "/graphs", "", "", &graphs); code != 200 || len(graphs) != 2 || graphs[0].Snapshots != 1 {
		t.Fatalf("graphs after failover: %d %+v", code, graphs)
	}
	if code := f.do("GET", "/graphs/g2", "", "", nil); code != 200 {
		t.Fatalf("graph: %d", code)
	}
	if code := f.do("DELETE", "/replication/targets/old-primary", "", "", nil); code != 204 {
		t.Fatalf("remove target: %d", code)
	}
	var jobs []job
	if code := f.do("GET", "/jobs", "", "", &jobs); code != 200 || len(jobs) < 5 {
		t.Fatalf("jobs: %d %d", code, len(jobs))
	}
}

func TestCancelJob(t *testing.T) {
	f := newServer(t, false)
	j, _ := f.s.Jobs().Submit("slow", "", func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	var got job
	if code := f.do("DELETE", "/jobs/"+j.ID, "", "", &got); code != 202 {
		t.Fatalf("cancel: %d", code)
	}
	final, _ := f.s.Jobs().Wait(context.Background(), j.ID)
	if final.State != api.JobCancelled {
		t.Fatalf("state after cancel: %s", final.State)
	}
}

// TestAuthMatrix: every route, with no token, a read, backup and admin
// token, on a normal and an append-only server.
func TestAuthMatrix(t *testing.T) {
	for _, appendOnly := range []bool{false, true} {
		f := newServerWith(t, true, appendOnly)
		for _, op := range api.Operations() {
			path := strings.NewReplacer("{asset}", "app.js", "{graph}", "g1", "{snapshot}", "20991231T000000Z-aaaaaa", "{checkpoint}", "20991231T000000Z-aaaaaa",
				"{target}", "none", "{job}", "none").Replace(op.Path)
			for _, who := range []struct {
				name, token string
			}{{"none", ""}, {"read", readToken}, {"backup", backupToken}, {"admin", adminToken}, {"wrong", "wrong-token-0123456789abcdef"}} {
				code := f.do(op.Method, path, who.token, "", nil)
				var want string
				switch {
				case op.Open:
					want = "allowed"
				case who.name == "none" || who.name == "wrong":
					want = "401"
				case who.name == "read" && op.Role != "":
					want = "403"
				case who.name == "backup" && op.Role == "admin":
					want = "403"
				case appendOnly && op.Destructive:
					want = "403"
				default:
					want = "allowed"
				}
				got := "allowed"
				if code == 401 || code == 403 {
					got = fmt.Sprint(code)
				}
				if got != want {
					t.Errorf("append-only %v: %s %s as %s: %d, want %s", appendOnly, op.Method, op.Path, who.name, code, want)
				}
			}
		}
	}
}

// An append-only server refuses to take data away and says why; a backup
// token adds snapshots but cannot forget them.
func TestAppendOnlyAndBackupRole(t *testing.T) {
	f := newServerWith(t, true, true)
	var j job
	if code := f.do("POST", "/backup/graphs/g1/snapshots?wait=true", backupToken, "", &j); code != 201 {
		t.Fatalf("backup token backing up: %d", code)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if code := f.do("DELETE", "/backup/graphs/g1/snapshots/latest", adminToken, "", &e); code != 403 || e.Error.Code != "append_only" || !strings.Contains(e.Error.Message, "append-only") {
		t.Fatalf("append-only forget as admin: %d %+v", code, e)
	}
	if code := f.do("POST", "/backup/cleanup", adminToken, `{"policy":{"keep_last":1}}`, &e); code != 403 || e.Error.Code != "append_only" {
		t.Fatalf("append-only cleanup as admin: %d %+v", code, e)
	}
	normal := newServerWith(t, true, false)
	if code := normal.do("DELETE", "/backup/graphs/g1/snapshots/latest", backupToken, "", &e); code != 403 || !strings.Contains(e.Error.Message, "admin") {
		t.Fatalf("backup token forgetting: %d %+v", code, e)
	}
	var s api.Session
	if code := normal.do("GET", "/session", backupToken, "", &s); code != 200 || s.Role != "backup" {
		t.Fatalf("session of a backup token: %d %+v", code, s)
	}
}

// TestOpenAPIMatchesRoutes: every registered route is documented, and
// every documented route is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newServer(t, false)
	var registered []string
	err := chi.Walk(f.s.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		if route == "" {
			route = "/"
		}
		registered = append(registered, method+" "+strings.ReplaceAll(route, "/*", ""))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, op := range api.Operations() {
		documented = append(documented, op.Method+" "+op.Path)
	}
	sort.Strings(registered)
	sort.Strings(documented)
	if strings.Join(registered, "\n") != strings.Join(documented, "\n") {
		t.Fatalf("routes and OpenAPI differ:\nregistered:\n%s\ndocumented:\n%s", strings.Join(registered, "\n"), strings.Join(documented, "\n"))
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if code := f.do("GET", "/openapi.json", "", "", &doc); code != 200 || doc.OpenAPI != "3.0.3" || len(doc.Paths) < 20 {
		t.Fatalf("openapi.json: %d %s %d paths", code, doc.OpenAPI, len(doc.Paths))
	}
}

func TestMetrics(t *testing.T) {
	f := newServer(t, false)
	f.do("POST", "/backup/graphs/g1/snapshots?wait=true", "", "", nil)
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`graphkeep_backup_last_success_timestamp_seconds{graph="g1"}`,
		`graphkeep_backup_bytes_total{graph="g1",kind="stored"}`,
		`graphkeep_http_requests_total{code="201",route="/backup/graphs/{graph}/snapshots"}`,
		`graphkeep_jobs_finished_total{kind="backup",state="succeeded"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, "graphkeep_http_requests_total") {
					t.Log(line)
				}
			}
		}
	}
}

// TestRestoreLatestPassesOverMidIngestion: a snapshot whose stores disagree
// is listed as mid-ingestion, "latest" restores the good one before it and
// names what it passed over, and restoring it by id needs allow_flagged.
func TestRestoreLatestPassesOverMidIngestion(t *testing.T) {
	f := newServer(t, false)
	var j job
	if code := f.do("POST", "/backup/graphs/g1/snapshots?wait=true", "", "", &j); code != 201 {
		t.Fatalf("backup: %d %+v", code, j)
	}
	var good struct{ ID string }
	_ = json.Unmarshal(j.Result, &good)
	// A document stored but never processed, an hour ago: LightRAG stopped
	// mid-ingestion and has not written since.
	docs := filepath.Join(f.root, "g1", "kv_store_full_docs.json")
	data, _ := os.ReadFile(docs)
	data = append([]byte(`{"doc-unprocessed": {"content": "x"},`), bytes.TrimPrefix(bytes.TrimSpace(data), []byte("{"))...)
	if err := os.WriteFile(docs, data, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{docs, filepath.Join(f.root, "g1")} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if code := f.do("POST", "/backup/graphs/g1/snapshots?wait=true", "", "", &j); code != 201 {
		t.Fatalf("backup: %d %+v", code, j)
	}
	var torn struct {
		ID           string `json:"id"`
		MidIngestion bool   `json:"mid_ingestion"`
	}
	_ = json.Unmarshal(j.Result, &torn)
	if !torn.MidIngestion {
		t.Fatalf("backup result %s, want mid_ingestion", j.Result)
	}
	var snaps []struct {
		ID           string `json:"id"`
		MidIngestion bool   `json:"mid_ingestion"`
		Good         bool   `json:"good"`
	}
	if f.do("GET", "/backup/graphs/g1/snapshots", "", "", &snaps); len(snaps) != 2 || !snaps[1].MidIngestion || snaps[1].Good || !snaps[0].Good {
		t.Fatalf("list: %+v", snaps)
	}
	if code := f.do("POST", "/backup/graphs/g1/snapshots/latest/restore?wait=true", "", `{"to": "latest"}`, &j); code != 201 {
		t.Fatalf("restore latest: %d %+v", code, j)
	}
	var restored struct {
		Snapshot   struct{ ID string }
		PassedOver []struct{ ID, Reason string } `json:"passed_over"`
	}
	_ = json.Unmarshal(j.Result, &restored)
	if restored.Snapshot.ID != good.ID || len(restored.PassedOver) != 1 || restored.PassedOver[0].ID != torn.ID {
		t.Fatalf("restore latest: %s, want %s passing over %s", j.Result, good.ID, torn.ID)
	}
	var e apiError
	if code := f.do("POST", "/backup/graphs/g1/snapshots/"+torn.ID+"/restore", "", `{"to": "torn"}`, &e); code != 409 || e.Error.Code != "not_good" || !strings.Contains(e.Error.Message, "allow_flagged") {
		t.Fatalf("restore of a mid-ingestion snapshot: %d %+v", code, e)
	}
	if code := f.do("POST", "/backup/graphs/g1/snapshots/"+torn.ID+"/restore?wait=true", "", `{"to": "torn", "allow_flagged": true}`, &j); code != 201 {
		t.Fatalf("restore allowed: %d %+v", code, j)
	}
}

// TestRestoreCannotEscapeThroughSymlinks: a symlink inside the graphs root
// pointing elsewhere is followed before the check, so the restore is
// refused; files as destinations and over-long paths are 4xx, not 500s.
func TestRestoreCannotEscapeThroughSymlinks(t *testing.T) {
	f := newServer(t, false)
	var j job
	if code := f.do("POST", "/backup/graphs/g1/snapshots?wait=true", "", "", &j); code != 201 {
		t.Fatalf("backup: %d %+v", code, j)
	}
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(f.root, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.root, "plain-file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(f.root, "plain-file"), filepath.Join(f.root, "file-link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		to   string
		code int
		want string
	}{
		{"evil/x", 422, "outside_restore_roots"},
		{filepath.Join(f.root, "evil", "x"), 422, "outside_restore_roots"},
		{"plain-file", 422, "not_a_directory"},
		{"file-link", 422, "not_a_directory"},
		{strings.Repeat("a", 5000), 400, "bad_request"},
	} {
		var e apiError
		body, _ := json.Marshal(map[string]string{"to": c.to})
		if code := f.do("POST", "/backup/graphs/g1/snapshots/latest/restore", "", string(body), &e); code != c.code || e.Error.Code != c.want {
			t.Errorf("restore to %.40q: %d %+v, want %d %s", c.to, code, e, c.code, c.want)
		}
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("a restore wrote outside the roots: %v", entries)
	}
}

func TestUnknownGraphIsNotFound(t *testing.T) {
	f := newServer(t, false)
	var e apiError
	if code := f.do("GET", "/backup/graphs/nosuch/snapshots", "", "", &e); code != 404 || !strings.Contains(e.Error.Message, "known graphs: g1, g2") {
		t.Fatalf("GET snapshots of an unknown graph: %d %+v", code, e)
	}
	var list []any
	if code := f.do("GET", "/backup/graphs/g1/snapshots", "", "", &list); code != 200 || len(list) != 0 {
		t.Fatalf("a configured graph without snapshots: %d %v", code, list)
	}
}

// TestAbsentMeansAbsent: without a checkpoint there is no checkpoint age
// series (an age alert must not see 0), and stats not measured are null.
func TestAbsentMeansAbsent(t *testing.T) {
	f := newServer(t, false)
	f.do("GET", "/recovery/health?refresh=true", "", "", nil)
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "graphkeep_checkpoint_age_seconds") {
			t.Fatalf("no checkpoint, yet /metrics has %q", line)
		}
	}
	var stats struct{ Repository map[string]any }
	if code := f.do("GET", "/backup/stats", "", "", &stats); code != 200 || stats.Repository["stored_bytes"] != nil {
		t.Fatalf("stats: %d stored_bytes=%v, want null", code, stats.Repository["stored_bytes"])
	}
}

// TestClientMistakesAre4xx: a body trickled in is cut off (408), invalid
// UTF-8 is refused, and a target whose storage cannot be opened (no
// credentials, nothing listening) is a 422, not a 500.
func TestClientMistakesAre4xx(t *testing.T) {
	defer api.SetBodyTimeout(300 * time.Millisecond)()
	f := newServer(t, false)
	var e apiError
	if code := f.do("POST", "/backup/graphs/g1/snapshots/latest/restore", "", "{\"to\": \"\xff\xfe\"}", &e); code != 400 || !strings.Contains(e.Error.Message, "UTF-8") {
		t.Fatalf("invalid UTF-8: %d %+v", code, e)
	}
	// (An S3 target without credentials is checked end to end, in
	// integration: these tests open local storage only.)

	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /backup/cleanup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "408") {
		t.Fatalf("a trickled body: %q, %v; want 408 after the body timeout", status, err)
	}
}

// TestSessionAndDashboard: the page and its files are served with a strict
// policy and no token; /session says what the token sent may do.
func TestSessionAndDashboard(t *testing.T) {
	f := newServer(t, true)
	for _, c := range []struct{ token, role string }{{"", ""}, {"wrong-token-0123456789abcdef", ""}, {readToken, "read"}, {adminToken, "admin"}} {
		var s api.Session
		if code := f.do("GET", "/session", c.token, "", &s); code != 200 || s.Role != c.role || !s.Tokens {
			t.Errorf("session with %q: %d %+v, want role %q", c.token, code, s, c.role)
		}
	}
	loopback := newServer(t, false)
	var s api.Session
	if code := loopback.do("GET", "/session", "", "", &s); code != 200 || s.Role != "admin" || s.Tokens {
		t.Errorf("session without tokens: %d %+v", code, s)
	}
	for path, typ := range map[string]string{"/": "text/html", "/ui/app.js": "text/javascript", "/ui/app.css": "text/css", "/ui/icon.svg": "image/svg+xml"} {
		req := httptest.NewRequest("GET", path, nil)
		rec := httptest.NewRecorder()
		f.s.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), typ) {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: policy %q", path, csp)
		}
	}
	for _, path := range []string{"/ui/index.html", "/ui/nothing.js", "/ui/..%2fdashboard.go"} {
		if code := f.do("GET", path, "", "", nil); code != 404 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
}

// TestUnauthorizedSaysWhy: a missing token and a wrong one get different
// answers; a wrong token is never told to send a token.
func TestUnauthorizedSaysWhy(t *testing.T) {
	f := newServerWith(t, true, false)
	var e struct {
		Error struct{ Code, Message string }
	}
	for _, c := range []struct {
		token, want string
	}{
		{"", "no token sent"},
		{"wrong-token-0123456789abcdef", "the token was not accepted"},
	} {
		if code := f.do("GET", "/backup/stats", c.token, "", &e); code != 401 || !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("token %q: %d %q, want 401 saying %q", c.token, code, e.Error.Message, c.want)
		}
	}
}

// TestFailoverDryRunWithBlockersSucceeds: a dry run that finds the failover
// blocked is a job that succeeded, answering "not possible" with the
// blockers (the dashboard shows it as a plan, not a red failure).
func TestFailoverDryRunWithBlockersSucceeds(t *testing.T) {
	f := newServer(t, false)
	target := fmt.Sprintf("mem://api-lagging-%d", seq.Add(1))
	var j job
	if code := f.do("POST", "/replication/targets", "", `{"id": "t1", "url": "`+target+`"}`, nil); code != 201 {
		t.Fatalf("add target: %d", code)
	}
	if code := f.do("POST", "/recovery/checkpoints?wait=true", "", "", &j); code != 201 {
		t.Fatalf("checkpoint: %d %+v", code, j)
	}
	if code := f.do("POST", "/replication/sync?wait=true", "", "", &j); code != 201 {
		t.Fatalf("sync: %d %+v", code, j)
	}
	if code := f.do("POST", "/backup/graphs/g1/snapshots?wait=true", "", "", &j); code != 201 {
		t.Fatalf("backup: %d", code)
	}
	var dry struct {
		State  string
		Result struct {
			Possible bool
			Plan     struct{ Blockers []string }
		}
	}
	if code := f.do("POST", "/recovery/checkpoints/latest/failover?wait=true", "", `{"target": "t1", "dry_run": true}`, &dry); code != 201 || dry.State != "succeeded" || dry.Result.Possible || len(dry.Result.Plan.Blockers) == 0 {
		t.Fatalf("dry run with a lagging target: %d %+v", code, dry)
	}
}
