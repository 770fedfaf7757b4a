package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers"
)

// apiBench serves a repository holding 1,000 snapshots of one graph with
// the real binary and measures request latency under concurrent load for
// listing them and for /recovery/health.
func apiBench(dir string) {
	const snapshots, clients, duration = 1000, 8, 5 * time.Second
	repoDir := filepath.Join(dir, "repo-api")
	root := filepath.Join(dir, "graphs-api")
	must(os.RemoveAll(repoDir))
	must(os.RemoveAll(root))
	must(os.MkdirAll(filepath.Join(root, "g1"), 0o755))
	must(os.WriteFile(filepath.Join(root, "g1", "kv_store_full_docs.json"), []byte(`{"doc-1": {"content": "x"}}`), 0o644))
	fillRepo(repoDir, snapshots)

	url, _, stop, err := serve(append(os.Environ(), "GRAPHKEEP_REPO=file://"+repoDir, "GRAPHKEEP_GRAPHS_ROOT="+root,
		"GRAPHKEEP_CACHE_DIR="+filepath.Join(dir, "cache-api"), "GRAPHKEEP_STATE_DIR="+filepath.Join(dir, "state-api"), "GRAPHKEEP_PASSWORD="))
	if err != nil {
		fmt.Fprintln(os.Stderr, "api bench:", err)
		return
	}
	defer stop()
	fmt.Printf("\nAPI latency, %d concurrent clients for %s each, repository with %d snapshots\n\n", clients, duration, snapshots)
	fmt.Println("| route | requests/s | p50 | p90 | p99 | max |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, path := range []string{"/backup/graphs/g1/snapshots", "/recovery/health"} {
		lat, n := load(url+path, clients, duration)
		fmt.Printf("| GET %s | %.0f | %s | %s | %s | %s |\n", path, float64(n)/duration.Seconds(),
			pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))
	}
}

// fillRepo makes a repository with n snapshots of graph g1 (one small file
// each, one shared chunk), written through the repository API.
func fillRepo(dir string, n int) {
	ctx := context.Background()
	store := must2(providers.Open(ctx, "file://"+dir+"?create=true", providers.Options{}))
	r := must2(repo.Init(ctx, store, repo.InitOptions{}))
	data := []byte(`{"doc-1": {"content": "x"}}`)
	id := r.HashChunk(data)
	must(r.PutChunk(ctx, id, r.EncodeChunk(id, data)))
	start := time.Now().Add(-time.Duration(n) * time.Minute)
	for i := 0; i < n; i++ {
		t := start.Add(time.Duration(i) * time.Minute)
		m := &repo.Manifest{Version: 1, ID: repo.NewSnapshotID(t), Graph: "g1", Time: t,
			Files:  []repo.FileEntry{{Path: "kv_store_full_docs.json", Type: repo.TypeFile, Mode: 0o644, Size: int64(len(data)), MTime: t, Chunks: []repo.ChunkRef{{ID: id, Size: len(data)}}}},
			Totals: repo.Totals{Files: 1, SizeBytes: int64(len(data)), Chunks: 1}}
		must(r.SaveManifest(ctx, m))
	}
}

// load runs clients sending GETs to url for d and returns the latencies.
func load(url string, clients int, d time.Duration) ([]time.Duration, int) {
	var mu sync.Mutex
	var all []time.Duration
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			var mine []time.Duration
			for time.Now().Before(stop) {
				t0 := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all, len(all)
}

func pct(sorted []time.Duration, p int) string {
	if len(sorted) == 0 {
		return "-"
	}
	i := len(sorted) * p / 100
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i].Round(10 * time.Microsecond).String()
}

func must2[T any](v T, err error) T {
	must(err)
	return v
}

// jobsBench floods the real server with 500 concurrent backup requests of
// one 100 MB graph and reports the server's peak RSS (VmHWM) and how many
// jobs it made of them: jobs are bounded and duplicate backups coalesce.
func jobsBench(dir string) {
	const requests = 500
	repoDir := filepath.Join(dir, "repo-jobs")
	root := filepath.Join(dir, "graphs-jobs")
	must(os.RemoveAll(repoDir))
	must(os.RemoveAll(root))
	runQuiet(*graphkeepBin, "fixture", "generate", root, "--graphs", "g1", "--size", "105000000", "--seed", "9")
	env := append(os.Environ(), "GRAPHKEEP_REPO=file://"+repoDir+"?create=true", "GRAPHKEEP_GRAPHS_ROOT="+root,
		"GRAPHKEEP_CACHE_DIR="+filepath.Join(dir, "cache-jobs"), "GRAPHKEEP_STATE_DIR="+filepath.Join(dir, "state-jobs"), "GRAPHKEEP_PASSWORD=")
	initCmd := exec.Command(*graphkeepBin, "init")
	initCmd.Env = env
	must(initCmd.Run())
	url, pid, stop, err := serve(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobs bench:", err)
		return
	}
	defer stop()
	var wg sync.WaitGroup
	codes := make([]int, requests)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := http.Post(url+"/backup/graphs/g1/snapshots", "application/json", nil); err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(url + "/jobs")
		if err != nil {
			break
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"queued"`) && !strings.Contains(string(body), `"running"`) {
			var jobs []json.RawMessage
			_ = json.Unmarshal(body, &jobs)
			accepted := 0
			for _, c := range codes {
				if c == http.StatusAccepted {
					accepted++
				}
			}
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			hwm := "?"
			for _, line := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(line, "VmHWM:") {
					hwm = strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
				}
			}
			fmt.Printf("\n%d concurrent backup requests of a 100 MB graph: %d accepted, %d jobs run, server peak RSS %s\n", requests, accepted, len(jobs), hwm)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "jobs bench: the jobs did not finish within 5 minutes")
}

// serve starts graphkeep serve with env on a free loopback port and waits
// until it answers; stop ends it.
func serve(env []string) (url string, pid int, stop func(), err error) {
	port, err := freePort()
	if err != nil {
		return "", 0, nil, err
	}
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(*graphkeepBin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			return url, cmd.Process.Pid, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", 0, nil, fmt.Errorf("the server did not start")
		}
	}
}
