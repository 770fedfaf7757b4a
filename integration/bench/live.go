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
)

// liveBench measures what a user of a live LightRAG sees: backups taken
// while it ingests at a LightRAG-like pace (19 file replaces per document,
// 0.5 s of extraction before the main flush, a gap between documents), for
// graphkeep and restic in the same run: latency, and how many snapshots
// hold one state of the directory (restic reads the files in turn) and a
// consistent one. Then graphkeep watch's RPO: from LightRAG's last write of
// a settled state to its snapshot being committed.
func liveBench(dir string) {
	work := filepath.Join(dir, "live-bench")
	_ = os.RemoveAll(work)
	must(os.MkdirAll(work, 0o755))
	spec := fixture.SpecForSize(int64(*liveMB)<<20, 7)
	fmt.Printf("\nlive LightRAG writer: %s graph (%d documents), +%d documents per step, %d writes each, gap %s\n",
		mb(int64(*liveMB)<<20), spec.Docs, *liveDocs, fixture.WritesPerDoc, *liveGap)
	opts := fixture.LiveOptions{DocGap: *liveGap, StepDelay: 30 * time.Millisecond, ExtractDelay: 500 * time.Millisecond}

	type row struct {
		tool                          string
		lat                           []time.Duration
		single, consistent, snapshots int
	}
	var rows []row
	for _, name := range []string{"graphkeep", "restic"} {
		root := filepath.Join(work, name+"-graphs")
		lw, err := fixture.NewWriter(filepath.Join(root, "g1"), spec, opts)
		must(err)
		repoDir := filepath.Join(work, "repo-"+name)
		t := newTool(name, work, repoDir, root)
		t.init()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- lw.Run(ctx) }()
		r := row{tool: name}
		for i := 0; i < *liveBackup; i++ {
			var m measurement
			if name == "graphkeep" {
				m = t.run(*graphkeepBin, "backup", "g1", "--json")
			} else {
				m = t.run(*resticBin, "backup", "--host", "bench", filepath.Join(root, "g1"))
			}
			r.lat = append(r.lat, m.wall)
			time.Sleep(time.Duration(i%3) * 700 * time.Millisecond) // backups land at every phase of a document
		}
		cancel()
		must(<-done)
		// Which directory state does each snapshot hold?
		ids := snapshotIDs(t)
		for i, id := range ids {
			to := filepath.Join(work, fmt.Sprintf("check-%s-%d", name, i))
			if name == "graphkeep" {
				t.run(*graphkeepBin, "restore", "g1", id, "--to", to, "--allow-flagged")
			} else {
				t.run(*resticBin, "restore", id, "--target", to)
				to = filepath.Join(to, root, "g1")
			}
			files := map[string]string{}
			entries, err := os.ReadDir(to)
			must(err)
			for _, e := range entries {
				if e.Type().IsRegular() {
					files[e.Name()], err = fileHash(filepath.Join(to, e.Name()))
					must(err)
				}
			}
			r.snapshots++
			if st, ok := lw.Generation(files); ok {
				r.single++
				if st.AtRest {
					r.consistent++
				}
			}
			_ = os.RemoveAll(filepath.Join(work, fmt.Sprintf("check-%s-%d", name, i)))
		}
		rows = append(rows, r)
	}
	fmt.Printf("\n| backups while LightRAG writes | p50 | p95 | single-instant | consistent (a state at rest) |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %d/%d | %d/%d |\n", r.tool, pctD(r.lat, 50), pctD(r.lat, 95), r.single, r.snapshots, r.consistent, r.snapshots)
	}
	watchRPO(work, spec, opts)
}

// snapshotIDs lists a tool's snapshots of the live bench.
func snapshotIDs(t *tool) []string {
	var ids []string
	if t.name == "graphkeep" {
		m := t.run(*graphkeepBin, "snapshots", "g1", "--json")
		var snaps []struct {
			ID string `json:"id"`
		}
		must(json.Unmarshal(m.output, &snaps))
		for _, s := range snaps {
			ids = append(ids, s.ID)
		}
		return ids
	}
	m := t.run(*resticBin, "snapshots", "--json")
	var snaps []struct {
		ID string `json:"short_id"`
	}
	must(json.Unmarshal(m.output, &snaps))
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids
}

// watchRPO runs graphkeep watch (defaults: 2 s quiet window) while the
// writer ingests, and reads each snapshot's RPO from its log.
func watchRPO(work string, spec fixture.Spec, opts fixture.LiveOptions) {
	root := filepath.Join(work, "watch-graphs")
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
	var consistent, total int
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l struct {
				Msg        string `json:"msg"`
				RPO        int64  `json:"rpo"`
				Took       int64  `json:"took"`
				Consistent bool   `json:"consistent"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && strings.Contains(l.Msg, "snapshot committed") {
				total++
				if total == 1 {
					continue // the workspace as generated: its files are dated long ago, no RPO to speak of
				}
				if l.Consistent {
					consistent++
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
	fmt.Printf("\ngraphkeep watch, %d documents at a %s gap: %d snapshots after the first (%d consistent); RPO of the consistent ones p50 %s, p95 %s; backup (quiet wait included) p50 %s, p95 %s\n",
		*liveDocs, *liveGap, total-1, consistent, pctD(rpos, 50), pctD(rpos, 95), pctD(took, 50), pctD(took, 95))
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
