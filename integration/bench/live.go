package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/graphkeep/graphkeep/core/lightrag/fixture"
)

var (
	liveOnly   = flag.Bool("live-only", false, "run only the live-writer bench (backup latency and watch RPO)")
	liveMB     = flag.Int("live-size", 110, "size in MB of the graph LightRAG writes during the live bench")
	liveDocs   = flag.Int("live-docs", 8, "documents the live writer ingests in each live step")
	liveGap    = flag.Duration("live-gap", 3*time.Second, "pause between documents (LightRAG waiting for the next upload)")
	liveBackup = flag.Int("live-backups", 10, "backups per tool while LightRAG writes")
	kopiaBin   = flag.String("kopia", ".cache/bin/kopia", "kopia binary for the live comparison (absent: restic only)")
)

// liveBench measures what a user of a live LightRAG sees: backups taken
// while it ingests at a LightRAG-like pace (19 file replaces per document,
// 0.5 s of extraction before the main flush), with a gap between documents
// and back to back (a bulk import), for graphkeep, restic and kopia in the
// same run: latency, how many snapshots hold one state of the directory
// (the peers read the files in turn), one at rest, one LightRAG resumes
// from, and how graphkeep marked its own. Then graphkeep watch's RPO: from
// LightRAG's last write of a settled state to its snapshot being committed.
func liveBench(dir string) {
	work := filepath.Join(dir, "live-bench")
	_ = os.RemoveAll(work)
	must(os.MkdirAll(work, 0o755))
	spec := fixture.SpecForSize(int64(*liveMB)<<20, 7)
	fmt.Printf("\nlive LightRAG writer: %s graph (%d documents), %d writes per document\n",
		mb(int64(*liveMB)<<20), spec.Docs, fixture.WritesPerDoc)
	paced := fixture.LiveOptions{DocGap: *liveGap, StepDelay: 30 * time.Millisecond, ExtractDelay: 500 * time.Millisecond}
	bulk := fixture.LiveOptions{Bulk: true, StepDelay: 30 * time.Millisecond, ExtractDelay: 500 * time.Millisecond}
	fmt.Printf("\n| LightRAG ingesting | tool | backup p50 | p95 | single-instant | at rest | resumable state | graphkeep marked it: consistent / resumable / mid-ingestion |\n|---|---|---|---|---|---|---|---|\n")
	for _, pace := range []struct {
		name string
		opts fixture.LiveOptions
	}{{fmt.Sprintf("a %s gap between documents", *liveGap), paced}, {"back to back (bulk import)", bulk}} {
		liveRound(work, spec, pace.name, pace.opts)
	}
	watchRPO(work, spec, paced, fmt.Sprintf("a %s gap", *liveGap))
	watchRPO(work, spec, bulk, "no gap (bulk import)")
}

// liveRound backs up with each tool while the writer ingests at one pace.
func liveRound(work string, spec fixture.Spec, pace string, opts fixture.LiveOptions) {
	for _, name := range liveTools() {
		for _, old := range []string{name + "-graphs", "repo-" + name, "cache-" + name, "kopia.config", "kopia.config.kopia-password"} {
			_ = os.RemoveAll(filepath.Join(work, old)) // the round before at another pace
		}
		root := filepath.Join(work, name+"-graphs")
		graph := filepath.Join(root, "g1")
		lw, err := fixture.NewWriter(graph, spec, opts)
		must(err)
		lt := newLiveTool(name, work, root)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- lw.Run(ctx) }()
		var lat []time.Duration
		for i := 0; i < *liveBackup; i++ {
			lat = append(lat, lt.backup(graph).wall)
			time.Sleep(time.Duration(i%3) * 700 * time.Millisecond) // backups land at every phase of a document
		}
		cancel()
		must(<-done)
		// Which directory state does each snapshot hold?
		var single, consistent, resumable, snapshots int
		for i, id := range lt.list(graph) {
			to := filepath.Join(work, fmt.Sprintf("check-%s-%d", name, i))
			files := map[string]string{}
			restored := lt.restore(id, graph, to)
			entries, err := os.ReadDir(restored)
			must(err)
			for _, e := range entries {
				if e.Type().IsRegular() {
					files[e.Name()], err = fileHash(filepath.Join(restored, e.Name()))
					must(err)
				}
			}
			snapshots++
			if st, ok := lw.Generation(files); ok {
				single++
				if st.AtRest {
					consistent++
				}
				if st.Resumable {
					resumable++
				}
			}
			_ = os.RemoveAll(to)
		}
		marked := "-"
		if lt.states != nil {
			s := lt.states(graph)
			marked = fmt.Sprintf("%d / %d / %d", s[repoStateConsistent], s[repoStateResumable], s[repoStateMid])
		}
		fmt.Printf("| %s | %s | %s | %s | %d/%d | %d/%d | %d/%d | %s |\n", pace, name, pctD(lat, 50), pctD(lat, 95),
			single, snapshots, consistent, snapshots, resumable, snapshots, marked)
	}
}

// The states graphkeep's snapshots list ("state" in snapshots --json).
const (
	repoStateConsistent = "consistent"
	repoStateResumable  = "resumable"
	repoStateMid        = "mid-ingestion"
)

// liveTools are the tools the live bench compares: kopia only when its
// binary is there.
func liveTools() []string {
	tools := []string{"graphkeep", "restic"}
	if _, err := os.Stat(*kopiaBin); err == nil {
		tools = append(tools, "kopia")
	} else {
		fmt.Fprintf(os.Stderr, "live bench: no kopia at %s (make bench builds it); comparing with restic only\n", *kopiaBin)
	}
	return tools
}

// liveTool backs up, lists and restores one graph directory with one tool.
type liveTool struct {
	*tool
	backup  func(graph string) measurement
	list    func(graph string) []string
	restore func(id, graph, to string) string // returns the restored graph directory
	// states counts the snapshots by the state the tool marked (graphkeep
	// alone marks them; nil for the others).
	states func(graph string) map[string]int
}

func newLiveTool(name, work, root string) *liveTool {
	t := newTool(name, work, filepath.Join(work, "repo-"+name), root)
	lt := &liveTool{tool: t}
	switch name {
	case "graphkeep":
		t.init()
		lt.backup = func(string) measurement { return t.run(*graphkeepBin, "backup", "g1", "--json") }
		lt.list = func(string) []string {
			return jsonIDs(t.run(*graphkeepBin, "snapshots", "g1", "--json").output, "id")
		}
		lt.states = func(string) map[string]int {
			out := map[string]int{}
			for _, s := range jsonIDs(t.run(*graphkeepBin, "snapshots", "g1", "--json").output, "state") {
				out[s]++
			}
			return out
		}
		lt.restore = func(id, _, to string) string {
			t.run(*graphkeepBin, "restore", "g1", id, "--to", to, "--allow-flagged")
			return to
		}
	case "restic":
		t.init()
		// Exit 3: the snapshot is saved, but a file vanished while restic
		// read the directory (LightRAG renamed a temporary file away).
		lt.backup = func(graph string) measurement {
			return t.runAllowing([]int{3}, *resticBin, "backup", "--host", "bench", graph)
		}
		lt.list = func(string) []string { return jsonIDs(t.run(*resticBin, "snapshots", "--json").output, "short_id") }
		lt.restore = func(id, graph, to string) string {
			t.run(*resticBin, "restore", id, "--target", to)
			return filepath.Join(to, graph)
		}
	case "kopia":
		t.env = append(t.env, "KOPIA_PASSWORD=bench password", "KOPIA_CONFIG_PATH="+filepath.Join(work, "kopia.config"),
			"KOPIA_CACHE_DIRECTORY="+filepath.Join(work, "cache-kopia"), "KOPIA_LOG_DIR="+filepath.Join(work, "kopia-logs"),
			"KOPIA_CHECK_FOR_UPDATES=false")
		t.run(*kopiaBin, "repository", "create", "filesystem", "--path", t.repo)
		lt.backup = func(graph string) measurement { return t.run(*kopiaBin, "snapshot", "create", graph) }
		lt.list = func(graph string) []string {
			return jsonIDs(t.run(*kopiaBin, "snapshot", "list", graph, "--json").output, "id")
		}
		lt.restore = func(id, _, to string) string {
			t.run(*kopiaBin, "snapshot", "restore", id, to)
			return to
		}
	}
	return lt
}

// jsonIDs reads field of every object in a JSON array, oldest first as
// the tools list them.
func jsonIDs(out []byte, field string) []string {
	var items []map[string]any
	must(json.Unmarshal(out, &items))
	var ids []string
	for _, it := range items {
		if id, ok := it[field].(string); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// watchRPO runs graphkeep watch (defaults: cut when no flush is in
// progress) while the writer ingests, and reads each snapshot's RPO from
// its log.
func watchRPO(work string, spec fixture.Spec, opts fixture.LiveOptions, pace string) {
	root := filepath.Join(work, "watch-graphs")
	_ = os.RemoveAll(root)
	_ = os.RemoveAll(filepath.Join(work, "repo-watch"))
	opts.Docs = *liveDocs
	lw, err := fixture.NewWriter(filepath.Join(root, "g1"), spec, opts)
	must(err)
	t := newTool("graphkeep", work, filepath.Join(work, "repo-watch"), root)
	t.init()
	cmd := exec.Command(*graphkeepBin, "watch", "g1", "--json", "--min-interval", "1s", "--keep-within", "24h")
	cmd.Env = t.env
	out, err := cmd.StdoutPipe()
	must(err)
	must(cmd.Start())
	var rpos, took []time.Duration
	var good, resumable, total int
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l struct {
				Msg   string `json:"msg"`
				RPO   int64  `json:"rpo"`
				Took  int64  `json:"took"`
				Good  bool   `json:"good"`
				State string `json:"state"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && strings.Contains(l.Msg, "snapshot committed") {
				total++
				if total == 1 {
					continue // the workspace as generated: its files are dated long ago, no RPO to speak of
				}
				if l.Good {
					good++
					if l.State == repoStateResumable {
						resumable++
					}
					rpos = append(rpos, time.Duration(l.RPO))
				}
				took = append(took, time.Duration(l.Took))
			}
		}
	}()
	time.Sleep(3 * time.Second) // the first snapshot of the initial state
	must(lw.Run(context.Background()))
	time.Sleep(8 * time.Second) // the last state settles and is committed
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	<-lines
	fmt.Printf("\ngraphkeep watch, %d documents, %s: %d snapshots after the first (%d good, %d of them resumable); RPO of the good ones p50 %s, p95 %s; backup (wait included) p50 %s, p95 %s\n",
		*liveDocs, pace, total-1, good, resumable, pctD(rpos, 50), pctD(rpos, 95), pctD(took, 50), pctD(took, 95))
}

func pctD(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[min(i, len(s)-1)].Round(10 * time.Millisecond).String()
}
