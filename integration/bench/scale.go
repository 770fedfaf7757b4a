package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/providers"
)

var (
	scaleOnly   = flag.Bool("scale", false, "run only the scale bench (make bench-scale)")
	scaleSets   = flag.String("scales", "big,graphs,history,chunks", "the scales the scale bench runs")
	scaleStores = flag.String("scale-stores", "local,minio", "the stores the scale bench writes to")
	bigGB       = flag.Float64("big-gb", 10, "size of the big scale in GB (3 graphs, one holding most of it in its vector store)")
	historyN    = flag.Int("history", 10000, "snapshots in the history scale")
	chunksN     = flag.Int("chunks", 1000000, "chunks in the chunks scale")
	minioChunks = flag.Int("minio-chunks", 1000000, "chunks in the chunks scale on MinIO (a packed repository gets them in packs of 16; each object written takes about 1 ms there)")
	synthesize  = flag.String("synthesize", "", "internal: add history:N or chunks:N to the repository in GRAPHKEEP_REPO")
)

// scaleRow is one command measured at one scale.
type scaleRow struct {
	scale, store, step string
	m                  measurement
	requests           blob.RequestStats
}

// scaleEnv is a repository on one store, with its graphs and a target.
type scaleEnv struct {
	dir, live, store string
	env              []string
	target           string // URL of the replication target
	rows             *[]scaleRow
	scale            string
}

// scaleBench measures graphkeep at the scales users reach: big graphs,
// many graphs, a long history, a repository of a million chunks; on a
// local folder and on MinIO. Each command's time, peak RSS and requests
// (by kind, from GRAPHKEEP_REQUEST_STATS) go into one table.
func scaleBench(dir string) {
	wanted := map[string]bool{}
	for _, s := range strings.Split(*scaleSets+","+*scaleStores, ",") {
		wanted[s] = true
	}
	var endpoint string
	if wanted["minio"] {
		var stop func()
		var err error
		endpoint, stop, err = startMinIO(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "scale bench: MinIO: %v; MinIO skipped\n", err)
			wanted["minio"] = false
		} else {
			defer stop()
		}
	}
	var rows []scaleRow
	for _, scale := range []string{"big", "graphs", "history", "chunks"} {
		if !wanted[scale] {
			continue
		}
		for _, store := range []string{"local", "minio"} {
			if !wanted[store] {
				continue
			}
			fmt.Fprintf(os.Stderr, "scale bench: %s on %s\n", scale, store)
			e := newScaleEnv(dir, scale, store, endpoint, &rows)
			e.run(scale)
			e.cleanup()
		}
	}
	fmt.Printf("\nscale bench: graphkeep %s; time, peak RSS, requests (puts/gets/lists/heads/deletes)\n\n", time.Now().Format("2006-01-02"))
	fmt.Println("| scale | store | step | time | peak RSS | requests |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		q := r.requests
		fmt.Printf("| %s | %s | %s | %s | %s | %d/%d/%d/%d/%d |\n", r.scale, r.store, r.step,
			r.m.wall.Round(10*time.Millisecond), mb(r.m.rssKB<<10), q.Puts, q.Gets, q.Lists, q.Stats, q.Deletes)
	}
}

func newScaleEnv(dir, scale, store, endpoint string, rows *[]scaleRow) *scaleEnv {
	e := &scaleEnv{dir: filepath.Join(dir, "scale-"+scale), store: store, rows: rows, scale: scale}
	must(os.RemoveAll(e.dir))
	e.live = filepath.Join(e.dir, "graphs")
	var repoURL string
	if store == "local" {
		repoURL = "file://" + filepath.Join(e.dir, "repo") + "?create=true"
		e.target = "file://" + filepath.Join(e.dir, "target") + "?create=true"
	} else {
		bucket := fmt.Sprintf("scale-%s-%d", scale, time.Now().Unix())
		ensureBucket(endpoint, bucket)
		ensureBucket(endpoint, bucket+"-t")
		repoURL = "s3://" + bucket + "/repo?endpoint=" + endpoint + "&use_path_style=true"
		e.target = "s3://" + bucket + "-t/repo?endpoint=" + endpoint + "&use_path_style=true"
	}
	e.env = append(os.Environ(), "GRAPHKEEP_PASSWORD=bench password", "GRAPHKEEP_REPO="+repoURL,
		"GRAPHKEEP_GRAPHS_ROOT="+e.live, "GRAPHKEEP_CACHE_DIR="+filepath.Join(e.dir, "cache"),
		"GRAPHKEEP_STATE_DIR="+filepath.Join(e.dir, "state"), "GRAPHKEEP_QUIET_WINDOW=0",
		"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench-secret", "AWS_EC2_METADATA_DISABLED=true")
	return e
}

func (e *scaleEnv) cleanup() {
	_ = os.RemoveAll(e.dir)
}

func (e *scaleEnv) run(scale string) {
	must(os.MkdirAll(e.live, 0o755))
	e.cmd("", "init")
	switch scale {
	case "big":
		total := int64(*bigGB * 1e9)
		// One graph holds most of the data (its vector store about 4 GB at
		// 10 GB); two hold the rest.
		e.fixture("huge", total*55/100)
		e.fixture("g1", total*225/1000)
		e.fixture("g2", total*225/1000)
		e.cmd("full backup", "backup", "--all")
		e.cmd("no-change backup", "backup", "--all")
	case "graphs":
		for i := range 100 {
			e.fixture(fmt.Sprintf("g%03d", i), 2<<20)
		}
		e.cmd("full backup", "backup", "--all")
		e.cmd("no-change backup", "backup", "--all")
	case "history", "chunks":
		for i := range 10 {
			e.fixture(fmt.Sprintf("g%02d", i), 1<<20)
		}
		e.cmd("full backup", "backup", "--all")
		e.quiet("backup", "--all")
		e.cmd("no-change backup, before", "backup", "--all")
		n := *historyN
		what := "history"
		if scale == "chunks" {
			what, n = "chunks", *chunksN
			if e.store == "minio" {
				n = *minioChunks
			}
		}
		start := time.Now()
		self, err := os.Executable()
		must(err)
		e.quiet2(self, "-synthesize", fmt.Sprintf("%s:%d", what, n))
		fmt.Fprintf(os.Stderr, "scale bench: added %d %s in %s\n", n, what, time.Since(start).Round(time.Second))
		// The synthesizer put what it made in the kept index, as the
		// backups that made it would have; the first backup after checks
		// that index against the listing once (no prune has run, but the
		// check is older than the trust window only when the synthesis
		// took longer than it).
		e.cmd(fmt.Sprintf("first backup after adding %d %s", n, what), "backup", "--all")
		e.cmd(fmt.Sprintf("no-change backup, %d %s", n, what), "backup", "--all")
	}
	e.cmd("snapshots", "snapshots")
	if scale == "big" || scale == "graphs" {
		e.cmd("restore all", "restore", "--all", "--to", filepath.Join(e.dir, "restored"))
	} else {
		e.cmd("restore one graph", "restore", "g00", "latest", "--to", filepath.Join(e.dir, "restored"))
	}
	must(os.RemoveAll(filepath.Join(e.dir, "restored")))
	e.cmd("prune", "prune")
	e.quiet("targets", "add", "t", e.target)
	e.cmd("replicate (all)", "replicate")
}

func (e *scaleEnv) fixture(graph string, size int64) {
	runQuiet(*graphkeepBin, "fixture", "generate", e.live, "--graphs", graph, "--size", fmt.Sprint(size), "--seed", fmt.Sprint(len(graph)+int(size%97)))
}

// cmd runs graphkeep with args, and records it as step unless step is "".
func (e *scaleEnv) cmd(step string, args ...string) {
	stats := filepath.Join(e.dir, "requests.json")
	_ = os.Remove(stats)
	t := &tool{env: append(e.env, "GRAPHKEEP_REQUEST_STATS="+stats)}
	m := t.run(*graphkeepBin, args...)
	if step == "" {
		return
	}
	var byStore map[string]blob.RequestStats
	data, err := os.ReadFile(stats)
	must(err)
	must(json.Unmarshal(data, &byStore))
	var sum blob.RequestStats
	for _, s := range byStore {
		sum.Puts += s.Puts
		sum.Gets += s.Gets
		sum.Lists += s.Lists
		sum.Stats += s.Stats
		sum.Deletes += s.Deletes
	}
	*e.rows = append(*e.rows, scaleRow{scale: e.scaleName(), store: e.store, step: step, m: m, requests: sum})
	fmt.Fprintf(os.Stderr, "  %s: %s, %s\n", step, m.wall.Round(10*time.Millisecond), mb(m.rssKB<<10))
}

func (e *scaleEnv) scaleName() string {
	switch e.scale {
	case "big":
		return fmt.Sprintf("%.0f GB in 3 graphs", *bigGB)
	case "graphs":
		return "100 graphs"
	case "history":
		return fmt.Sprintf("%d snapshots", *historyN)
	}
	return "chunks"
}

func (e *scaleEnv) quiet(args ...string) { e.quiet2(*graphkeepBin, args...) }

func (e *scaleEnv) quiet2(bin string, args ...string) {
	t := &tool{env: e.env}
	t.run(bin, args...)
}

// synthesizeInto adds to the repository in GRAPHKEEP_REPO, in this child
// process (so the bench's own memory never shows in a measured command's
// RSS): "history:N", N snapshots copied from each graph's latest, dated
// before it; or "chunks:N", N small chunks, nine in ten named by 100
// snapshots of a graph "synthetic".
func synthesizeInto(spec string) {
	ctx := context.Background()
	what, nStr, _ := strings.Cut(spec, ":")
	var n int
	_, err := fmt.Sscan(nStr, &n)
	must(err)
	store, err := providers.Open(ctx, os.Getenv("GRAPHKEEP_REPO"), providers.Options{})
	must(err)
	r, err := repo.Open(ctx, store, repo.OpenOptions{Password: os.Getenv("GRAPHKEEP_PASSWORD"), CacheDir: os.Getenv("GRAPHKEEP_CACHE_DIR")})
	must(err)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * blob.RequestsOf(store))
	var made manifests
	switch what {
	case "history":
		refs, err := r.ListSnapshots(ctx, "")
		must(err)
		latest := map[string]repo.SnapshotRef{}
		for _, ref := range refs {
			if ref.ID > latest[ref.Graph].ID {
				latest[ref.Graph] = ref
			}
		}
		per := n / len(latest)
		for _, ref := range latest {
			m, err := r.Cache().Manifest(ctx, ref)
			must(err)
			for i := range per {
				g.Go(func() error {
					c := *m
					c.Time = m.Time.Add(-time.Duration(per-i) * time.Minute)
					c.ID = repo.NewSnapshotID(c.Time)
					if err := r.SaveManifest(gctx, &c); err != nil {
						return err
					}
					made.add(&c)
					return nil
				})
			}
		}
	case "chunks":
		const snapshots = 100
		named := n * 9 / 10
		per := named / snapshots
		// In a repository that packs, chunks go into packs of perPack, as
		// a backup of ~1 MiB chunks into 8 MiB packs would leave them (a
		// pack of 512-byte chunks filled to 8 MiB would hold 16,000, far
		// fewer objects than real data makes); else each is an object.
		perPack := 1
		if r.PackSize() > 0 {
			perPack = 16
		}
		var done atomic.Int64
		var mu sync.Mutex
		refs := make([][]repo.ChunkRef, snapshots)
		for first := 0; first < n; first += perPack {
			g.Go(func() error {
				last := min(first+perPack, n)
				made := make([]repo.ChunkRef, 0, last-first)
				parts := make([][]byte, 0, last-first+1)
				pack := repo.NewPackID()
				var off int64
				for i := first; i < last; i++ {
					data := make([]byte, 512)
					rng := rand.New(rand.NewPCG(uint64(i), 7))
					for j := range data {
						data[j] = byte(rng.Uint32())
					}
					id := r.HashChunk(data)
					stored := r.EncodeChunk(id, data)
					ref := repo.ChunkRef{ID: id, Size: len(data)}
					if perPack > 1 {
						ref.Pack, ref.Offset, ref.Length = pack, off, len(stored)
						off += int64(len(stored))
						parts = append(parts, stored)
					} else if err := r.Store().Put(gctx, repo.ChunkKey(id), bytes.NewReader(stored), &blob.PutOptions{DeferSync: true}); err != nil {
						return err
					}
					made = append(made, ref)
				}
				if perPack > 1 {
					if err := r.PutPackDeferred(gctx, pack, append(parts, r.PackTail(pack, made))); err != nil {
						return err
					}
				}
				mu.Lock()
				for k, ref := range made {
					if i := first + k; i < named {
						refs[i/per] = append(refs[i/per], ref)
					}
				}
				mu.Unlock()
				if d := done.Add(int64(len(made))); d/100000 != (d-int64(len(made)))/100000 {
					fmt.Fprintf(os.Stderr, "  %d chunks\n", d/100000*100000)
				}
				return nil
			})
		}
		must(g.Wait())
		g, gctx = errgroup.WithContext(ctx)
		g.SetLimit(8)
		t0 := time.Now().Add(-24 * time.Hour)
		for s := range snapshots {
			g.Go(func() error {
				var files []repo.FileEntry
				for f := 0; f < 10; f++ {
					part := refs[s][f*len(refs[s])/10 : (f+1)*len(refs[s])/10]
					files = append(files, repo.FileEntry{Path: fmt.Sprintf("part-%d", f), Type: repo.TypeFile, Mode: 0o644, Chunks: part})
				}
				m := &repo.Manifest{Version: repo.FormatVersion, ID: repo.NewSnapshotID(t0.Add(time.Duration(s) * time.Minute)),
					Graph: "synthetic", Time: t0.Add(time.Duration(s) * time.Minute), Files: files}
				if err := r.SaveManifest(gctx, m); err != nil {
					return err
				}
				made.add(m)
				return nil
			})
		}
	default:
		must(fmt.Errorf("-synthesize %q: want history:N or chunks:N", spec))
	}
	must(g.Wait())
	// The backups that made these snapshots would each have put theirs in
	// the kept index.
	r.Cache().Add(made.list...)
	// Durability does not matter for a bench's made-up data, but a local
	// folder should not be writing back a million files while the next
	// command is measured.
	_ = exec.Command("sync").Run()
}

// manifests collects what concurrent synthesizers made.
type manifests struct {
	mu   sync.Mutex
	list []*repo.Manifest
}

func (m *manifests) add(made *repo.Manifest) {
	m.mu.Lock()
	m.list = append(m.list, made)
	m.mu.Unlock()
}
