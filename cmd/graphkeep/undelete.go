package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/service"
)

func undeleteCmd(g *globals) *cobra.Command {
	var since string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "undelete [--since TIME|DURATION] [--dry-run]",
		Short: "Bring back objects someone deleted or overwrote, from a versioned bucket",
		Long: `In a versioned bucket (S3 with versioning; object lock implies it) a delete only hides
an object under a delete marker and an overwrite adds a version on top: an attacker with
the repository's credentials can hide every snapshot, but not remove it (and with object
lock, not even by version). undelete finds, for every object a repository needs (config,
keys, snapshots, checkpoints, meta, chunks), the newest version that is really this
repository's (decrypts, or matches its checksum or chunk id) and makes it current again.
--since undoes only what happened after that time (RFC 3339, or a duration ago such as
36h); without it every delete is undone, graphkeep's own forgets and prunes included
(prune them again afterwards). Run it with --dry-run first.`,
		Args: cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			var from time.Time
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				from = t
			}
			res, err := svc.Undelete(ctx, from, dryRun)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, res)
			}
			verb := map[bool]string{true: "would bring back", false: "brought back"}[dryRun]
			fmt.Printf("checked %d objects; %s %d hidden by delete markers and %d covered by foreign content\n", res.Checked, verb, len(res.Undeleted), len(res.Restored))
			for _, k := range res.Restored {
				fmt.Println("  restored", k)
			}
			if len(res.Unrecoverable) > 0 {
				fmt.Printf("%d objects have no version that is this repository's:\n", len(res.Unrecoverable))
				for _, k := range res.Unrecoverable {
					fmt.Println("  ", k)
				}
				return fmt.Errorf("%d objects could not be brought back; verify --read-data names the snapshots they affect", len(res.Unrecoverable))
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&since, "since", "", "undo only deletes and overwrites after this time (RFC 3339, or a duration ago such as 36h)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be brought back, change nothing")
	return cmd
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := duration.Parse(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give a time such as 2026-12-06T03:00:00Z or a duration ago such as 36h", s)
}
