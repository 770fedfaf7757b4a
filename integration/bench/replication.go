package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// replicationBench copies the repository the last round left to a second
// local folder and to a MinIO bucket, with graphkeep replicate and with
// rclone copy, first into an empty target and then again with nothing new.
func replicationBench(dir string) {
	repoDir := filepath.Join(dir, "repo-graphkeep")
	if _, err := os.Stat(repoDir); err != nil {
		fmt.Fprintln(os.Stderr, "replication bench: no graphkeep repository left by the rounds; skipped")
		return
	}
	fmt.Printf("\nreplication of the %s repository (graphkeep replicate vs rclone copy, defaults)\n\n", mb(dirSize(repoDir)))
	fmt.Println("| target | graphkeep first copy | rclone first copy | graphkeep / rclone | graphkeep second run | rclone second run |")
	fmt.Println("|---|---|---|---|---|---|")

	t := newTool("graphkeep", dir, repoDir, filepath.Join(dir, "live"))
	t.env = append(t.env, "GRAPHKEEP_STATE_DIR="+filepath.Join(dir, "state"))
	t.run(*graphkeepBin, "checkpoint", "create", "--note", "bench")
	rcloneEnv := withoutEnv(os.Environ(), "AWS_CA_BUNDLE")
	var drRows []string

	local := filepath.Join(dir, "replica-graphkeep")
	rcLocal := filepath.Join(dir, "replica-rclone")
	for _, p := range []string{local, rcLocal} {
		must(os.RemoveAll(p))
		must(os.MkdirAll(p, 0o755))
	}
	t.run(*graphkeepBin, "targets", "add", "bench-local", "file://"+local)
	g1 := t.run(*graphkeepBin, "replicate", "--target", "bench-local")
	g2 := t.run(*graphkeepBin, "replicate", "--target", "bench-local")
	r1 := runEnv(rcloneEnv, *rcloneBin, "copy", repoDir, rcLocal)
	r2 := runEnv(rcloneEnv, *rcloneBin, "copy", repoDir, rcLocal)
	row("local folder", g1, r1, g2, r2)
	drRows = append(drRows, disaster(t, dir, repoDir, "bench-local", "local folder"))
	t.run(*graphkeepBin, "targets", "remove", "bench-local")

	endpoint, stop, err := startMinIO(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "replication bench: MinIO: %v; skipped\n", err)
		return
	}
	defer stop()
	rcloneEnv = append(rcloneEnv, "RCLONE_CONFIG_BENCH_TYPE=s3", "RCLONE_CONFIG_BENCH_PROVIDER=Minio",
		"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=bench", "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=bench-secret",
		"RCLONE_CONFIG_BENCH_ENDPOINT="+endpoint)
	runEnv(rcloneEnv, *rcloneBin, "mkdir", "bench:graphkeep")
	runEnv(rcloneEnv, *rcloneBin, "mkdir", "bench:rclone")
	t.env = append(t.env, "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench-secret", "AWS_EC2_METADATA_DISABLED=true")
	t.run(*graphkeepBin, "targets", "add", "bench-minio", "s3://graphkeep/replica?endpoint="+endpoint+"&use_path_style=true")
	g1 = t.run(*graphkeepBin, "replicate", "--target", "bench-minio")
	g2 = t.run(*graphkeepBin, "replicate", "--target", "bench-minio")
	r1 = runEnv(rcloneEnv, *rcloneBin, "copy", repoDir, "bench:rclone/replica")
	r2 = runEnv(rcloneEnv, *rcloneBin, "copy", repoDir, "bench:rclone/replica")
	row("MinIO (127.0.0.1)", g1, r1, g2, r2)
	drRows = append(drRows, disaster(t, dir, repoDir, "bench-minio", "MinIO (127.0.0.1)"))
	t.run(*graphkeepBin, "targets", "remove", "bench-minio")
	fmt.Printf("\ndisaster recovery: primary gone -> every graph restored from the replica (failover --restore)\n\n")
	fmt.Println("| replica | data restored | time |")
	fmt.Println("|---|---|---|")
	for _, r := range drRows {
		fmt.Println(r)
	}
}

// disaster takes the primary away and times 'failover --target id
// --restore' into an empty graphs root, then checks every graph is
// byte-identical and puts the primary back.
func disaster(t *tool, dir, repoDir, target, name string) string {
	lost := repoDir + ".lost"
	restored := filepath.Join(dir, "dr-restored")
	state := filepath.Join(dir, "state")
	must(os.RemoveAll(restored))
	must(os.Rename(repoDir, lost))
	env := t.env
	t.env = append(append([]string{}, env...), "GRAPHKEEP_GRAPHS_ROOT="+restored)
	m := t.run(*graphkeepBin, "failover", "--target", target, "--restore")
	t.env = env
	for _, g := range graphs {
		if err := sameTree(filepath.Join(t.live, g), filepath.Join(restored, g)); err != nil {
			fmt.Fprintf(os.Stderr, "disaster recovery from %s is not byte-identical: %v\n", target, err)
			os.Exit(1)
		}
	}
	must(os.Rename(lost, repoDir))
	must(os.RemoveAll(state)) // forget the switch: the next step uses the primary again
	size := dirSize(restored)
	must(os.RemoveAll(restored))
	return fmt.Sprintf("| %s | %s | %s |", name, mb(size), m.wall.Round(time.Millisecond))
}

func row(name string, g1, r1, g2, r2 measurement) {
	fmt.Printf("| %s | %s | %s | %.2f | %s | %s |\n", name, g1.wall.Round(time.Millisecond), r1.wall.Round(time.Millisecond),
		ratio(g1.wall.Seconds(), r1.wall.Seconds()), g2.wall.Round(time.Millisecond), r2.wall.Round(time.Millisecond))
}

func runEnv(env []string, bin string, args ...string) measurement {
	t := &tool{env: env}
	return t.run(bin, args...)
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// startMinIO runs the MinIO binary as a plain process on loopback.
func startMinIO(dir string) (endpoint string, stop func(), err error) {
	if _, err := os.Stat(*minioBin); err != nil {
		return "", nil, fmt.Errorf("no MinIO binary at %s (make bench builds it)", *minioBin)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	data := filepath.Join(dir, "minio-data")
	_ = os.RemoveAll(data)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(*minioBin, "server", data, "--address", addr, "--console-address", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=bench", "MINIO_ROOT_PASSWORD=bench-secret", "MINIO_BROWSER=off", "HOME="+dir)
	dieWithBench(cmd)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = os.RemoveAll(data) }
	endpoint = "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(endpoint + "/minio/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return endpoint, stop, nil
			}
		}
	}
	stop()
	return "", nil, fmt.Errorf("MinIO did not start on %s", addr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
