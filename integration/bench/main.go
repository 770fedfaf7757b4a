// Command bench measures graphkeep against restic on LightRAG-shaped data,
// in the same run, alternating the tools round by round: full backup,
// re-backup with no change, backup after ~2% more documents per graph (time
// and bytes stored), restore (time, byte-identical check), and peak RSS.
// Then graphkeep's peak RSS on a data set four times larger.
//
//	go run ./integration/bench -graphkeep bin/graphkeep -restic .cache/bin/restic
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

var (
	graphkeepBin = flag.String("graphkeep", "bin/graphkeep", "graphkeep binary")
	resticBin    = flag.String("restic", "restic", "restic binary")
	workDir      = flag.String("dir", ".cache/bench", "working directory (needs ~4 GB free)")
	sizeMB       = flag.Int("size", 540, "data set size in MB, split over 3 graphs")
	bigMB        = flag.Int("big", 2100, "size in MB of the larger set for graphkeep's RSS scaling (0 skips it)")
	rounds       = flag.Int("rounds", 3, "rounds per tool")
	growPercent  = flag.Float64("grow", 2, "percent more documents per graph for the growth step")
	apiOnly      = flag.Bool("api-only", false, "run only the API latency bench")
	rcloneBin    = flag.String("rclone", "rclone", "rclone binary for the replication comparison (\"\" skips it)")
	minioBin     = flag.String("minio", ".cache/minio/minio", "MinIO server binary for the replication comparison")
)

var graphs = []string{"alpha", "beta", "gamma"}

// measurement is one command's cost.
type measurement struct {
	wall   time.Duration
	rssKB  int64
	stored int64 // bytes the repository grew by
	// chunkBytes: graphkeep's own count of chunk bytes written (the
	// stored_bytes of backup --json), without manifests; -1 when unknown.
	chunkBytes int64
	output     []byte
}

type step string

const (
	stepFull     step = "full backup"
	stepNoChange step = "no-change re-backup"
	stepGrowth   step = "backup after growth"
	stepRestore  step = "restore"
)

var steps = []step{stepFull, stepNoChange, stepGrowth, stepRestore}

func main() {
	flag.Parse()
	must(os.MkdirAll(*workDir, 0o755))
	dir, err := filepath.Abs(*workDir)
	must(err)

	if *synthesize != "" {
		synthesizeInto(*synthesize)
		return
	}
	if *proxyFor != "" {
		serveProxy(*proxyFor, *oneWay)
		return
	}
	if *scaleOnly {
		scaleBench(dir)
		return
	}
	if *apiOnly {
		apiBench(dir)
		jobsBench(dir)
		return
	}
	if *serveSlow {
		serveLatency(dir)
		return
	}
	if *liveOnly {
		liveBench(dir)
		return
	}
	if *pgOnly {
		pgBench(dir)
		return
	}
	base, grown := filepath.Join(dir, "data-base"), filepath.Join(dir, "data-grown")
	size := prepare(base, grown, int64(*sizeMB)<<20)
	if *storesOnly {
		storesBench(dir, base, size)
		return
	}
	fmt.Printf("data set: %d graphs, %s (growth step: +%.0f%% documents per graph)\n", len(graphs), mb(size), *growPercent)

	results := map[string]map[step][]measurement{"graphkeep": {}, "restic": {}}
	for r := 0; r < *rounds; r++ {
		for _, tool := range order(r) {
			fmt.Printf("round %d: %s\n", r+1, tool)
			for s, m := range runRound(tool, dir, base, grown) {
				results[tool][s] = append(results[tool][s], m)
			}
		}
	}
	report(results, size)
	storesBench(dir, base, size)
	if *rcloneBin != "" {
		replicationBench(dir)
	}
	if *bigMB > 0 {
		scaling(dir, base, size)
	}
	apiBench(dir)
	jobsBench(dir)
	liveBench(dir)
	pgBench(dir)
}

// order alternates which tool goes first, so neither always gets a warm or
// cold page cache.
func order(round int) []string {
	if round%2 == 0 {
		return []string{"graphkeep", "restic"}
	}
	return []string{"restic", "graphkeep"}
}

// prepare generates the base data set and its grown version once, with the
// graphkeep binary's fixture command: this process stays small, so the
// peak RSS the kernel reports for its children is theirs, not inherited
// from a large parent at fork.
func prepare(base, grown string, size int64) int64 {
	if _, err := os.Stat(filepath.Join(grown, "done")); err != nil {
		_ = os.RemoveAll(base)
		_ = os.RemoveAll(grown)
		per := fmt.Sprint(size / int64(len(graphs)))
		list := strings.Join(graphs, ",")
		runQuiet(*graphkeepBin, "fixture", "generate", base, "--graphs", list, "--size", per, "--seed", "100")
		runQuiet(*graphkeepBin, "fixture", "generate", grown, "--graphs", list, "--size", per, "--seed", "100")
		for _, g := range graphs {
			runQuiet(*graphkeepBin, "fixture", "grow", grown, g, "--percent", fmt.Sprint(*growPercent))
		}
		must(os.WriteFile(filepath.Join(grown, "done"), nil, 0o644))
	}
	return dirSize(base)
}

func runQuiet(bin string, args ...string) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
		os.Exit(1)
	}
}

// runRound runs the four steps with one tool on fresh data and a fresh
// repository.
func runRound(tool, dir, base, grown string) map[step]measurement {
	live := filepath.Join(dir, "live")
	repoDir := filepath.Join(dir, "repo-"+tool)
	restored := filepath.Join(dir, "restored")
	for _, p := range []string{live, repoDir, restored, filepath.Join(dir, "cache-"+tool)} {
		must(os.RemoveAll(p))
	}
	copyTree(base, live)
	atRest(live)
	t := newTool(tool, dir, repoDir, live)
	t.init()

	out := map[step]measurement{}
	out[stepFull] = t.measure(repoDir, t.backup())
	out[stepNoChange] = t.measure(repoDir, t.backup())
	for _, g := range graphs { // LightRAG's way: each file replaced by rename
		replaceFiles(filepath.Join(grown, g), filepath.Join(live, g))
	}
	atRest(live)
	out[stepGrowth] = t.measure(repoDir, t.backup())
	out[stepRestore] = t.measure(repoDir, t.restore(restored))
	for _, g := range graphs {
		from := filepath.Join(restored, g)
		if tool == "restic" {
			from = filepath.Join(restored, strings.TrimPrefix(live, "/"), g)
		}
		if err := sameTree(filepath.Join(live, g), from); err != nil {
			fmt.Fprintf(os.Stderr, "%s restore is not byte-identical: %v\n", tool, err)
			os.Exit(1)
		}
	}
	return out
}

type tool struct {
	name, dir, repo, live string
	env                   []string
}

func newTool(name, dir, repoDir, live string) *tool {
	t := &tool{name: name, dir: dir, repo: repoDir, live: live}
	t.env = append(os.Environ(), "GRAPHKEEP_PASSWORD=bench password", "RESTIC_PASSWORD=bench password",
		"GRAPHKEEP_REPO=file://"+repoDir, "RESTIC_REPOSITORY="+repoDir,
		"GRAPHKEEP_GRAPHS_ROOT="+live, "GRAPHKEEP_CACHE_DIR="+filepath.Join(dir, "cache-graphkeep"),
		"RESTIC_CACHE_DIR="+filepath.Join(dir, "cache-restic"))
	return t
}

func (t *tool) init() {
	if t.name == "graphkeep" {
		t.run(*graphkeepBin, "init")
	} else {
		t.run(*resticBin, "init")
	}
}

// backup returns the command that backs up every graph.
func (t *tool) backup() func() measurement {
	if t.name == "graphkeep" {
		return func() measurement {
			m := t.run(*graphkeepBin, "backup", "--all", "--json")
			var lines []struct {
				StoredBytes int64 `json:"stored_bytes"`
			}
			if err := json.Unmarshal(m.output, &lines); err != nil {
				fmt.Fprintf(os.Stderr, "graphkeep backup --json: %v\n%s", err, m.output)
				os.Exit(1)
			}
			for _, l := range lines {
				m.chunkBytes += l.StoredBytes
			}
			return m
		}
	}
	return func() measurement {
		m := t.run(*resticBin, "backup", "--host", "bench", t.live)
		m.chunkBytes = -1
		return m
	}
}

// restore returns the command that restores every graph's latest snapshot
// under to.
func (t *tool) restore(to string) func() measurement {
	if t.name == "restic" {
		return func() measurement { return t.run(*resticBin, "restore", "latest", "--target", to) }
	}
	return func() measurement { return t.run(*graphkeepBin, "restore", "--all", "--to", to) }
}

// measure runs work and adds the repository's growth to its cost.
func (t *tool) measure(repoDir string, work func() measurement) measurement {
	before := dirSize(repoDir)
	m := work()
	m.stored = dirSize(repoDir) - before
	return m
}

func (t *tool) run(bin string, args ...string) measurement {
	return t.runAllowing(nil, bin, args...)
}

// runAllowing is run where the exit codes in ok are outcomes, not failures
// (restic's 3: a snapshot saved though a file vanished while it was read).
func (t *tool) runAllowing(ok []int, bin string, args ...string) measurement {
	cmd := exec.Command(bin, args...)
	cmd.Env = t.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var exit *exec.ExitError
	if errors.As(err, &exit) && slices.Contains(ok, exit.ExitCode()) {
		err = nil
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n%s", bin, strings.Join(args, " "), err, out.String())
		os.Exit(1)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return measurement{wall: wall, rssKB: ru.Maxrss, output: out.Bytes()}
}

func report(results map[string]map[step][]measurement, size int64) {
	fmt.Printf("\n%d rounds per tool, medians; data %s; graphkeep encrypted (restic always is)\n\n", *rounds, mb(size))
	fmt.Println("| step | graphkeep | restic | graphkeep / restic |")
	fmt.Println("|---|---|---|---|")
	for _, s := range steps {
		g, r := median(results["graphkeep"][s]), median(results["restic"][s])
		fmt.Printf("| %s: time | %s | %s | %.2f |\n", s, g.wall.Round(time.Millisecond), r.wall.Round(time.Millisecond), ratio(g.wall.Seconds(), r.wall.Seconds()))
		if s != stepRestore {
			rel := fmt.Sprintf("%.2f", ratio(float64(g.stored), float64(r.stored)))
			if g.stored < 1<<20 && r.stored < 1<<20 {
				rel = "metadata only"
			}
			fmt.Printf("| %s: bytes stored | %s | %s | %s |\n", s, human(g.stored), human(r.stored), rel)
			fmt.Printf("| %s: chunk bytes written (graphkeep --json) | %s | | |\n", s, human(g.chunkBytes))
		}
		fmt.Printf("| %s: peak RSS | %s | %s | %.2f |\n", s, mb(g.rssKB<<10), mb(r.rssKB<<10), ratio(float64(g.rssKB), float64(r.rssKB)))
	}
}

// scaling runs graphkeep alone on a larger data set to show its memory does
// not grow with the data.
func scaling(dir, base string, baseSize int64) {
	big := filepath.Join(dir, "data-big")
	if _, err := os.Stat(filepath.Join(big, "done")); err != nil {
		_ = os.RemoveAll(big)
		runQuiet(*graphkeepBin, "fixture", "generate", big, "--graphs", strings.Join(graphs, ","),
			"--size", fmt.Sprint((int64(*bigMB)<<20)/int64(len(graphs))), "--seed", "200")
		must(os.WriteFile(filepath.Join(big, "done"), nil, 0o644))
	}
	_ = os.Remove(filepath.Join(big, "done"))
	defer os.WriteFile(filepath.Join(big, "done"), nil, 0o644)
	fmt.Printf("\ngraphkeep peak RSS against data size\n\n| data | full backup RSS | restore RSS |\n|---|---|---|\n")
	for _, set := range []string{base, big} {
		repoDir := filepath.Join(dir, "repo-scaling")
		restored := filepath.Join(dir, "restored")
		must(os.RemoveAll(repoDir))
		must(os.RemoveAll(restored))
		must(os.RemoveAll(filepath.Join(dir, "cache-graphkeep")))
		t := newTool("graphkeep", dir, repoDir, set)
		t.init()
		b := t.measure(repoDir, t.backup())
		r := t.measure(repoDir, t.restore(restored))
		fmt.Printf("| %s | %s | %s |\n", mb(dirSize(set)), mb(b.rssKB<<10), mb(r.rssKB<<10))
	}
	must(os.RemoveAll(filepath.Join(dir, "repo-scaling")))
	must(os.RemoveAll(filepath.Join(dir, "restored")))
}

func median(ms []measurement) measurement {
	if len(ms) == 0 {
		return measurement{}
	}
	by := func(less func(a, b measurement) bool) measurement {
		c := append([]measurement(nil), ms...)
		sort.Slice(c, func(i, j int) bool { return less(c[i], c[j]) })
		return c[len(c)/2]
	}
	return measurement{
		wall:       by(func(a, b measurement) bool { return a.wall < b.wall }).wall,
		rssKB:      by(func(a, b measurement) bool { return a.rssKB < b.rssKB }).rssKB,
		stored:     by(func(a, b measurement) bool { return a.stored < b.stored }).stored,
		chunkBytes: by(func(a, b measurement) bool { return a.chunkBytes < b.chunkBytes }).chunkBytes,
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mb(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// human is mb, or KiB under a MiB (manifests, indexes), or bytes under a KiB.
func human(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return mb(n)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// copyTree copies src to dst, keeping modification times.
func copyTree(src, dst string) {
	must(filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if rel == "done" {
			return nil
		}
		return copyFile(p, target)
	}))
}

// replaceFiles puts each file of src into dst through a temporary name and
// a rename, as LightRAG flushes.
func replaceFiles(src, dst string) {
	entries, err := os.ReadDir(src)
	must(err)
	for _, e := range entries {
		tmp := filepath.Join(dst, e.Name()+".tmp.bench")
		must(copyFile(filepath.Join(src, e.Name()), tmp))
		must(os.Rename(tmp, filepath.Join(dst, e.Name())))
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	info, err := in.Stat()
	if err != nil {
		return err
	}
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}

// sameTree compares by SHA-256, streaming.
func sameTree(a, b string) error {
	return filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".fixture-") {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, err := fileHash(p)
		if err != nil {
			return err
		}
		y, err := fileHash(filepath.Join(b, rel))
		if err != nil {
			return err
		}
		if x != y {
			return fmt.Errorf("%s differs", rel)
		}
		return nil
	})
}

func fileHash(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
