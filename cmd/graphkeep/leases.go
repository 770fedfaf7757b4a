package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/service"
)

// leasesCmd shows who holds the repository and breaks what a dead process
// left behind.
func leasesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leases",
		Short: "Who holds the repository (backups, prunes, replications) and since when",
		Long: `Backups and replications take shared leases; a prune takes a prune lease (one prune at
a time). A holder renews its lease while it works. A lease stops counting when it
expires, or at once when its holder was a process of this host (same boot and pid
namespace) that is gone. 'leases break' removes one; a lease that still counts only
with --force (its holder may be working).`,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List leases with their holder and whether they still count",
		Args:  cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			leases, err := svc.Leases(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, leases)
			}
			if len(leases) == 0 {
				fmt.Println("no leases: nothing holds the repository")
				return nil
			}
			fmt.Printf("%-44s %-9s %-24s %-20s %-8s %-20s %s\n", "LEASE", "KIND", "PURPOSE", "HOST", "PID", "SINCE", "STATE")
			for _, l := range leases {
				state := "held until " + l.Expires.Local().Format(time.TimeOnly)
				if !l.Alive {
					state = "dead: " + l.Why
				}
				fmt.Printf("%-44s %-9s %-24s %-20s %-8d %-20s %s\n", l.ID, l.Kind, l.Purpose, l.Host, l.PID, l.Created.Local().Format(time.DateTime), state)
			}
			return nil
		}),
	}
	var force bool
	brk := &cobra.Command{
		Use:   "break LEASE",
		Short: "Remove a lease (one that still counts only with --force)",
		Args:  cobra.ExactArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			st, err := svc.BreakLease(ctx, args[0], force)
			if err != nil {
				return err
			}
			if st.Alive {
				fmt.Printf("broke lease %s of pid %d on %s by force: if that process is still working, its next renewal writes the lease again\n", st.ID, st.PID, st.Host)
			} else {
				fmt.Printf("removed lease %s (%s)\n", st.ID, st.Why)
			}
			return nil
		}),
	}
	brk.Flags().BoolVar(&force, "force", false, "break a lease that still counts (its holder may be working)")
	cmd.AddCommand(list, brk)
	return cmd
}
