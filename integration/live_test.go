package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
	"github.com/graphkeep/graphkeep/core/repo"
)

// pipelineServer answers LightRAG's GET /documents/pipeline_status from the
// live writer's state, and wants the API key.
func pipelineServer(t *testing.T, lw *fixture.Writer, key string) (url string, asked func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/documents/pipeline_status" || r.Header.Get("X-API-Key") != key {
			http.Error(w, `{"detail":"Invalid API Key"}`, http.StatusForbidden)
			return
		}
		mu.Lock()
		n++
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"busy": lw.Busy(), "job_name": "indexing", "docs": 1, "cur_batch": 1, "latest_message": ""})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// TestCLIBacksUpALiveGraphConsistently: graphkeep backup while LightRAG
// (the live writer) ingests, with its pipeline_status configured: every
// snapshot is one state of the directory and consistent. Then LightRAG
// stops half-way through a document: the backup is stored mid-ingestion,
// "restore latest" passes over it and says so, and restoring it by id
// needs --allow-flagged.
func TestCLIBacksUpALiveGraphConsistently(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	lw, err := fixture.NewWriter(filepath.Join(e.root, "g1"), fixture.Spec{Docs: 8, EmbeddingDim: 64, Seed: 3},
		fixture.LiveOptions{DocGap: 400 * time.Millisecond, StepDelay: 5 * time.Millisecond, ExtractDelay: 80 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url, asked := pipelineServer(t, lw, "s3cret")
	e.extra = append(e.extra, "GRAPHKEEP_LIGHTRAG_API_KEY=s3cret")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lw.Run(ctx) }()
	for i := 0; i < 5; i++ {
		var lines []struct {
			ID           string            `json:"id"`
			Consistent   bool              `json:"consistent"`
			MidIngestion bool              `json:"mid_ingestion"`
			Consistency  *repo.Consistency `json:"consistency"`
		}
		e.jsonOut(&lines, "backup", "g1", "--lightrag-url", url, "--quiet-window", "150ms", "--max-wait", "10s")
		if len(lines) != 1 || !lines[0].Consistent || lines[0].MidIngestion || lines[0].Consistency.Pipeline != "idle" {
			t.Fatalf("backup %d while LightRAG ingests: %+v", i, lines)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if asked() < 5 {
		t.Fatalf("the pipeline was asked %d times for 5 backups", asked())
	}
	var snaps []repo.Summary
	e.jsonOut(&snaps, "snapshots", "g1")
	for _, s := range snaps {
		m := manifestOf(t, e, s.ID)
		if _, ok := lw.Generation(m); !ok {
			t.Errorf("snapshot %s mixes states of the directory", s.ID)
		}
	}

	// LightRAG stops with a document processing, every other store in
	// agreement: the default backup keeps that state at once, resumable,
	// and restore says which document LightRAG processes again.
	stopAfter(t, lw, 5)
	out := e.ok("backup", "g1")
	if !strings.Contains(out, "RESUMABLE") {
		t.Fatalf("backup of a graph stopped between documents' flushes says:\n%s", out)
	}
	var snaps0 []repo.Summary
	e.jsonOut(&snaps0, "snapshots", "g1")
	resumable := snaps0[len(snaps0)-1]
	if !resumable.Resumable || !resumable.Good || resumable.State != "resumable" || resumable.Consistency.Resume.Total() < 1 {
		t.Fatalf("snapshots --json: %+v, want the newest resumable", resumable)
	}
	out = e.ok("restore", "g1", "latest", "--to", filepath.Join(e.dir, "resumed"))
	if !strings.Contains(out, "LightRAG processes again "+resumable.Consistency.Resume.String()) || !strings.Contains(out, resumable.Consistency.Resume.Docs[0].ID) {
		t.Fatalf("restore of a resumable snapshot says:\n%s", out)
	}

	// LightRAG stops half-way through a document's main flush.
	wctx, stop := context.WithCancel(context.Background())
	go func() {
		start := len(lw.States())
		for len(lw.States()) < start+12 { // the next document, up to its entity-chunks store
			time.Sleep(time.Millisecond)
		}
		stop()
	}()
	if err := lw.Run(wctx); err != nil {
		t.Fatal(err)
	}
	out = e.ok("backup", "g1", "--quiet-window", "100ms", "--max-wait", "1s")
	if !strings.Contains(out, "MID-INGESTION") {
		t.Fatalf("backup of a graph left mid-ingestion says:\n%s", out)
	}
	e.jsonOut(&snaps, "snapshots", "g1")
	torn := snaps[len(snaps)-1]
	if !torn.MidIngestion || torn.Good || torn.Consistency == nil || torn.Consistency.Reason == "" {
		t.Fatalf("snapshots --json: %+v, want the newest mid-ingestion with a reason", torn)
	}
	table := e.ok("snapshots", "g1")
	if !strings.Contains(table, "MID-INGESTION") || !strings.Contains(table, "consistent") {
		t.Fatalf("snapshots table:\n%s", table)
	}
	out = e.ok("restore", "g1", "latest", "--to", filepath.Join(e.dir, "latest"))
	if !strings.Contains(out, "passed over snapshot "+torn.ID) || !strings.Contains(out, snaps[len(snaps)-2].ID) {
		t.Fatalf("restore latest says:\n%s", out)
	}
	e.fails("--allow-flagged", "restore", "g1", torn.ID, "--to", filepath.Join(e.dir, "torn"))
	e.ok("restore", "g1", torn.ID, "--to", filepath.Join(e.dir, "torn"), "--allow-flagged")
}

// stopAfter runs the writer (its next document) until it has made n more
// states, and stops it there, as a crash of LightRAG would.
func stopAfter(t *testing.T, lw *fixture.Writer, n int) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	start := len(lw.States())
	go func() {
		defer stop()
		deadline := time.Now().Add(30 * time.Second) // the writer makes a state every few ms
		for len(lw.States()) < start+n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}()
	if err := lw.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(lw.States()); got < start+n {
		t.Fatalf("the writer made %d states in 30 s, want %d", got-start, n)
	}
}

// manifestOf reads a snapshot's file hashes through the CLI's cache-free
// path: restore it and hash the files.
func manifestOf(t *testing.T, e *env, id string) map[string]string {
	t.Helper()
	dest := filepath.Join(e.dir, "check-"+id)
	e.ok("restore", "g1", id, "--to", dest)
	out := map[string]string{}
	for _, name := range lightragFiles(t, dest) {
		out[name] = sha256File(t, filepath.Join(dest, name))
	}
	return out
}

// TestCLIWatch: graphkeep watch protects every settled state while LightRAG
// writes, and stops cleanly on SIGINT.
func TestCLIWatch(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	lw, err := fixture.NewWriter(filepath.Join(e.root, "g1"), fixture.Spec{Docs: 6, EmbeddingDim: 64, Seed: 4},
		fixture.LiveOptions{Mode: fixture.InPlace, Docs: 3, DocGap: 700 * time.Millisecond, StepDelay: 5 * time.Millisecond, ExtractDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "watch", "g1", "--min-interval", "200ms", "--rescan", "1s", "--quiet-window", "200ms", "--keep-within", "1h")
	cmd.Env = e.environ()
	var log strings.Builder
	var logMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return log.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := lw.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	final := lw.States()[len(lw.States())-1]
	deadline := time.Now().Add(15 * time.Second)
	for {
		var snaps []repo.Summary
		e.jsonOut(&snaps, "snapshots", "g1")
		if n := len(snaps); n > 0 {
			if st, ok := lw.Generation(manifestOf(t, e, snaps[n-1].ID)); ok && st.Seq == final.Seq {
				if len(snaps) < 2 {
					t.Fatalf("%d snapshots for 3 documents", len(snaps))
				}
				break
			}
		}
		if time.Now().After(deadline) {
			logMu.Lock()
			t.Fatalf("watch did not protect the final state within 15s; log:\n%s", log.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch after SIGINT: %v, want exit 0", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(log.String(), "snapshot committed") || !strings.Contains(log.String(), "rpo=") || !strings.Contains(log.String(), "watch: stopped") {
		t.Fatalf("watch log:\n%s", log.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// lightragFiles lists the regular files at the top of dir.
func lightragFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		if en.Type().IsRegular() {
			names = append(names, en.Name())
		}
	}
	return names
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
