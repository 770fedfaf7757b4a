package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/service"
)

func lockCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "The repository's object lock (init --object-lock): keep what is still needed locked",
	}
	var window, target string
	extend := &cobra.Command{
		Use:   "extend [--window D] [--target ID]",
		Short: "Extend the lock of every object still needed that would lapse within the window (default: a third of the retention)",
		Long: `Objects are locked for the retention from when they were written. extend pushes the
lock of everything the repository still needs (config, keys, manifests, checkpoints,
meta, the chunks snapshots name) to a full retention from now when it would lapse within
--window. Objects written recently are not even asked: their listing time shows they
cannot lapse that soon. Run it more often than the window (for example daily with a
30d retention and a 10d window).`,
		Args: cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, _ []string) error {
			var w time.Duration
			if window != "" {
				d, err := parseDays(window)
				if err != nil {
					return fmt.Errorf("--window %q: %w", window, err)
				}
				w = d
			}
			res, err := svc.ExtendLocks(ctx, w, target)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, res)
			}
			fmt.Printf("%d objects still needed; %d old enough to ask; %d locks extended until %s (%.1fs)\n",
				res.Objects, res.Checked, res.Extended, res.Until.Local().Format(time.DateTime), res.Duration)
			return nil
		}),
	}
	extend.Flags().StringVar(&window, "window", "", "extend locks that lapse within this (such as 10d)")
	extend.Flags().StringVar(&target, "target", "", "extend the locks of this replication target (by its own policy) instead of the primary's")
	cmd.AddCommand(extend)
	return cmd
}
