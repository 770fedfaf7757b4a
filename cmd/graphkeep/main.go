// Command graphkeep backs up, replicates and recovers knowledge-graph
// workspaces on object storage.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers"
)

const usage = `graphkeep — backup, replication and recovery for knowledge-graph workspaces

Usage:
  graphkeep check --repo URL   open the storage a repository URL names, then write,
                               read back and delete a probe object
  graphkeep version

Repository URLs: file:///abs/dir, mem://name,
  s3://bucket/prefix?endpoint=...&region=...&use_path_style=true,
  gs://bucket/prefix, azblob://container/prefix
`

var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "graphkeep:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Print(usage)
		return nil
	}
	switch args[0] {
	case "version":
		fmt.Println("graphkeep", version)
		return nil
	case "check":
		repo := os.Getenv("GRAPHKEEP_REPO")
		if len(args) == 3 && args[1] == "--repo" {
			repo = args[2]
		}
		if repo == "" {
			return fmt.Errorf("check needs --repo URL (or GRAPHKEEP_REPO)")
		}
		return check(repo)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q; run 'graphkeep help'", args[0])
}

func check(rawURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := providers.Open(ctx, rawURL, providers.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	key := fmt.Sprintf("health/check-%d", time.Now().UnixNano())
	payload := []byte("graphkeep storage check")
	if err := blob.PutBytes(ctx, s, key, payload, nil); err != nil {
		return fmt.Errorf("write a probe object: %w", err)
	}
	got, err := blob.ReadAll(ctx, s, key)
	if err != nil {
		return fmt.Errorf("read the probe object back: %w", err)
	}
	if string(got) != string(payload) {
		return fmt.Errorf("the probe object read back differs from what was written")
	}
	if err := s.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete the probe object: %w", err)
	}
	stats, _ := blob.StatsOf(s)
	fmt.Printf("%s: ok (write, read, delete; %d requests)\n", s.Location(), stats.Puts+stats.Gets+stats.Deletes+stats.Stats+stats.Lists)
	return nil
}
