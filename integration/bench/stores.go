package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

var (
	storesOnly = flag.Bool("stores-only", false, "run only the stores bench (local folder, MinIO, MinIO behind latency)")
	oneWay     = flag.Duration("latency", 15*time.Millisecond, "latency the proxy adds each way in the stores bench (0 skips the latency store)")
	serveSlow  = flag.Bool("serve-latency", false, "start MinIO behind the latency proxy, print its endpoint and wait (for measuring by hand)")
	onlyTools  = flag.String("tools", "graphkeep,restic,kopia", "the tools the stores bench compares")
	onlyStores = flag.String("stores", "local,loopback,latency", "the stores the stores bench writes to")
	proxyFor   = flag.String("proxy-for", "", "internal: run the latency proxy in front of this MinIO endpoint, print its address, serve until stdin closes")
)

// A store the stores bench writes to: where each tool's repository goes.
type benchStore struct {
	name string
	// repo returns tool's repository location on this store, with the
	// environment it needs.
	repo func(tool string) (location string, env []string)
}

// storesBench runs graphkeep, restic and kopia on the same data set and the
// same kinds of store in one run, alternating which goes first: a local
// folder, MinIO on loopback, and the same MinIO behind a proxy adding
// latency each way (15 ms: a 30 ms round trip, a cloud region away). Each
// tool takes a full backup, a no-change backup and a restore of everything,
// checked byte-identical.
func storesBench(dir, base string, size int64) {
	endpoint, stop, err := startMinIO(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stores bench: MinIO: %v; skipped\n", err)
		return
	}
	defer stop()
	wanted := map[string]bool{}
	for _, s := range strings.Split(*onlyStores+","+*onlyTools, ",") {
		wanted[s] = true
	}
	var stores []benchStore
	if wanted["local"] {
		stores = append(stores, localStore(dir))
	}
	if wanted["loopback"] {
		stores = append(stores, minioStore("MinIO (loopback)", endpoint, "loop"))
	}
	if wanted["latency"] && *oneWay > 0 {
		slow, closeProxy := latencyProxyProcess(endpoint, *oneWay)
		defer closeProxy()
		stores = append(stores, minioStore(fmt.Sprintf("MinIO, %s round trip", 2**oneWay), slow, "slow"))
	}
	var tools []string
	for _, tool := range []string{"graphkeep", "restic", "kopia"} {
		if !wanted[tool] {
			continue
		}
		if tool == "kopia" {
			if _, err := os.Stat(*kopiaBin); err != nil {
				fmt.Fprintf(os.Stderr, "stores bench: no kopia at %s (make bench builds it)\n", *kopiaBin)
				continue
			}
		}
		tools = append(tools, tool)
	}
	fmt.Printf("\nstores bench: %s in %d graphs, encrypted, %d rounds; medians\n\n", mb(size), len(graphs), *rounds)
	type key struct{ store, tool string }
	results := map[key]map[step][]measurement{}
	for _, st := range stores {
		for r := 0; r < *rounds; r++ {
			for i := range tools {
				tool := tools[(i+r)%len(tools)]
				fmt.Fprintf(os.Stderr, "stores bench: %s, round %d: %s\n", st.name, r+1, tool)
				k := key{st.name, tool}
				if results[k] == nil {
					results[k] = map[step][]measurement{}
				}
				for s, m := range storeRound(tool, dir, base, st) {
					results[k][s] = append(results[k][s], m)
				}
			}
		}
	}
	fmt.Printf("| store | step | %s | graphkeep / best peer |\n", strings.Join(tools, " | "))
	fmt.Printf("|---|---|%s---|\n", strings.Repeat("---|", len(tools)))
	for _, st := range stores {
		for _, s := range []step{stepFull, stepNoChange, stepRestore} {
			cells := make([]string, len(tools))
			var mine, best float64
			for i, tool := range tools {
				m := median(results[key{st.name, tool}][s])
				cells[i] = fmt.Sprintf("%s (%s)", m.wall.Round(10*time.Millisecond), mb(m.rssKB<<10))
				sec := m.wall.Seconds()
				if tool == "graphkeep" {
					mine = sec
				} else if best == 0 || sec < best {
					best = sec
				}
			}
			fmt.Printf("| %s | %s | %s | %.2f |\n", st.name, s, strings.Join(cells, " | "), ratio(mine, best))
		}
	}
	fmt.Println("\n(time, and peak RSS in brackets)")
}

// serveLatency starts MinIO behind the latency proxy with a bucket "slow"
// and waits until interrupted.
func serveLatency(dir string) {
	endpoint, stop, err := startMinIO(dir)
	must(err)
	defer stop()
	slow, closeProxy := latencyProxy(endpoint, *oneWay)
	defer closeProxy()
	ensureBucket(slow, "slow")
	fmt.Printf("MinIO at %s, behind %s each way at %s; bucket \"slow\"; user bench, password bench-secret\n", endpoint, *oneWay, slow)
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	<-interrupted
}

// storeRound: fresh repository, full backup, no-change backup, restore.
func storeRound(toolName, dir, base string, st benchStore) map[step]measurement {
	work := filepath.Join(dir, "stores-"+toolName)
	must(os.RemoveAll(work))
	must(os.MkdirAll(work, 0o755))
	defer os.RemoveAll(work)
	live := filepath.Join(dir, "live")
	must(os.RemoveAll(live))
	copyTree(base, live)
	atRest(live)
	loc, env := st.repo(toolName)
	t := newTool(toolName, work, loc, live)
	t.env = append(t.env, env...)
	t.env = append(t.env, "GRAPHKEEP_REPO="+graphkeepURL(loc), "RESTIC_REPOSITORY="+resticURL(loc),
		"GRAPHKEEP_CACHE_DIR="+filepath.Join(work, "cache"), "RESTIC_CACHE_DIR="+filepath.Join(work, "cache"),
		"KOPIA_PASSWORD=bench password", "KOPIA_CONFIG_PATH="+filepath.Join(work, "kopia.config"),
		"KOPIA_CACHE_DIRECTORY="+filepath.Join(work, "cache"), "KOPIA_LOG_DIR="+filepath.Join(work, "kopia-logs"),
		"KOPIA_CHECK_FOR_UPDATES=false")
	restored := filepath.Join(work, "restored")
	out := map[step]measurement{}
	switch toolName {
	case "graphkeep", "restic":
		t.init()
		out[stepFull] = t.backup()()
		out[stepNoChange] = t.backup()()
		out[stepRestore] = t.restore(restored)()
	case "kopia":
		t.run(*kopiaBin, append([]string{"repository", "create"}, kopiaStorage(loc)...)...)
		out[stepFull] = t.run(*kopiaBin, "snapshot", "create", live)
		out[stepNoChange] = t.run(*kopiaBin, "snapshot", "create", live)
		var snaps []struct {
			ID string `json:"id"`
		}
		must(json.Unmarshal(t.run(*kopiaBin, "snapshot", "list", live, "--json").output, &snaps))
		out[stepRestore] = t.run(*kopiaBin, "snapshot", "restore", snaps[len(snaps)-1].ID, restored)
	}
	for _, g := range graphs {
		from := filepath.Join(restored, g)
		if toolName == "restic" {
			from = filepath.Join(restored, strings.TrimPrefix(live, "/"), g)
		}
		if err := sameTree(filepath.Join(live, g), from); err != nil {
			fmt.Fprintf(os.Stderr, "%s restore from %s is not byte-identical: %v\n", toolName, st.name, err)
			os.Exit(1)
		}
	}
	return out
}

// atRest waits until the copy just made has been still for graphkeep's
// flush settle time, as a graph at rest has been: graphkeep waits for the
// end of a flush before it cuts a snapshot (restic and kopia do not), and
// a bench timing that wait would time the copy, not the backup.
func atRest(dir string) {
	last, err := backup.LastWrite(dir)
	must(err)
	time.Sleep(time.Until(last.Add(backup.FlushSettle + 50*time.Millisecond)))
}

// Repository locations are written "file:<dir>" or "s3:<endpoint>/<bucket>/<prefix>"
// and translated for each tool.
func localStore(dir string) benchStore {
	return benchStore{name: "local folder", repo: func(tool string) (string, []string) {
		return "file:" + filepath.Join(dir, "stores-"+tool, "repo"), nil
	}}
}

func minioStore(name, endpoint, bucket string) benchStore {
	ensureBucket(endpoint, bucket)
	return benchStore{name: name, repo: func(tool string) (string, []string) {
		prefix := fmt.Sprintf("%s-%d", tool, time.Now().UnixNano())
		return "s3:" + endpoint + "/" + bucket + "/" + prefix,
			[]string{"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench-secret", "AWS_EC2_METADATA_DISABLED=true"}
	}}
}

func graphkeepURL(loc string) string {
	if p, ok := strings.CutPrefix(loc, "file:"); ok {
		return "file://" + p
	}
	endpoint, bucket, prefix := splitS3(loc)
	return "s3://" + bucket + "/" + prefix + "?endpoint=" + endpoint + "&use_path_style=true"
}

func resticURL(loc string) string {
	if p, ok := strings.CutPrefix(loc, "file:"); ok {
		return p
	}
	endpoint, bucket, prefix := splitS3(loc)
	return "s3:" + endpoint + "/" + bucket + "/" + prefix
}

func kopiaStorage(loc string) []string {
	if p, ok := strings.CutPrefix(loc, "file:"); ok {
		return []string{"filesystem", "--path", p}
	}
	endpoint, bucket, prefix := splitS3(loc)
	return []string{"s3", "--bucket", bucket, "--prefix", prefix + "/", "--endpoint", strings.TrimPrefix(endpoint, "http://"),
		"--disable-tls", "--access-key", "bench", "--secret-access-key", "bench-secret"}
}

// splitS3 takes "s3:http://host:port/bucket/prefix" apart.
func splitS3(loc string) (endpoint, bucket, prefix string) {
	rest := strings.TrimPrefix(loc, "s3:")
	scheme, rest, _ := strings.Cut(rest, "://")
	host, path, _ := strings.Cut(rest, "/")
	bucket, prefix, _ = strings.Cut(path, "/")
	return scheme + "://" + host, bucket, prefix
}

// latencyProxy forwards a listener on loopback to endpoint through
// toxiproxy, adding oneWay to every byte in each direction (pipelined, as
// on a long link: throughput is kept, each round trip pays twice oneWay).
func latencyProxy(endpoint string, oneWay time.Duration) (string, func()) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	upstream := strings.TrimPrefix(endpoint, "http://")
	proxy := toxiproxy.NewProxy(srv, "minio", "127.0.0.1:0", upstream)
	must(proxy.Start())
	for _, stream := range []string{"upstream", "downstream"} {
		spec := fmt.Sprintf(`{"name":"latency-%s","type":"latency","stream":%q,"toxicity":1,"attributes":{"latency":%d}}`,
			stream, stream, oneWay.Milliseconds())
		_, err := proxy.Toxics.AddToxicJson(strings.NewReader(spec))
		must(err)
	}
	return "http://" + proxy.Listen, proxy.Stop
}

// latencyProxyProcess runs latencyProxy in a child process. In this one,
// the proxy's buffers (hundreds of MiB through it) would grow the bench's
// memory, and a tool the bench starts reports as its peak RSS at least the
// bench's RSS when it started (Linux counts the parent's pages shared until
// exec): every tool on the latency store showed the same 132 MiB.
func latencyProxyProcess(endpoint string, oneWay time.Duration) (string, func()) {
	self, err := os.Executable()
	must(err)
	cmd := exec.Command(self, "-proxy-for", endpoint, "-latency", oneWay.String())
	dieWithBench(cmd)
	stdin, err := cmd.StdinPipe()
	must(err)
	stdout, err := cmd.StdoutPipe()
	must(err)
	cmd.Stderr = os.Stderr
	must(cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		must(fmt.Errorf("latency proxy: %w", err))
	}
	return strings.TrimSpace(line), func() {
		stdin.Close()
		_ = cmd.Wait()
	}
}

// serveProxy is the child latencyProxyProcess starts: it prints the
// proxy's endpoint and serves until its standard input closes.
func serveProxy(upstream string, oneWay time.Duration) {
	endpoint, stop := latencyProxy(upstream, oneWay)
	defer stop()
	fmt.Println(endpoint)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// ensureBucket creates bucket on the MinIO at endpoint.
func ensureBucket(endpoint, bucket string) {
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("bench", "bench-secret", "")))
	must(err)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
	// MinIO says it is ready before its object layer is (it answers
	// XMinioServerNotInitialized for a while on a busy machine).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		switch {
		case err == nil || strings.Contains(err.Error(), "BucketAlreadyOwnedByYou"):
			return
		case strings.Contains(err.Error(), "XMinioServerNotInitialized") && time.Now().Before(deadline):
			continue
		}
		must(fmt.Errorf("create bucket %s: %w", bucket, err))
	}
}
