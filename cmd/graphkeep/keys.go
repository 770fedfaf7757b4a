package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/service"
)

// keyCmd manages the repository's passwords: each wraps the same master
// key, so none of this re-encrypts data.
func keyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the repository's passwords (several can open it)",
		Long: `An encrypted repository's master key is wrapped once per password: in its config
(key "config") and in objects under keys/. Any of them opens the repository. Adding,
removing or changing a password rewrites one small object, never the data; each step
is atomic, so an interrupted change always leaves a password that works. The config's
key cannot be removed (so the last password never goes) and the password in use cannot
remove itself. Replication makes targets follow: a removed password stops opening them
after their next replication.`,
	}
	var newFile, newCommand string
	newPassword := func() (string, error) {
		switch {
		case newFile != "" && newCommand != "":
			return "", fmt.Errorf("give the new password one way: --new-password-file or --new-password-command, not both")
		case newFile != "":
			return readSecretFile("new password file", newFile)
		case newCommand != "":
			return runSecretCommand("new password command", newCommand)
		case os.Getenv("GRAPHKEEP_NEW_PASSWORD") != "":
			return os.Getenv("GRAPHKEEP_NEW_PASSWORD"), nil
		}
		return "", fmt.Errorf("no new password: give it with --new-password-file FILE, --new-password-command CMD or GRAPHKEEP_NEW_PASSWORD")
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the passwords' keys (* marks the one in use)",
		Args:  cobra.NoArgs,
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			keys, err := svc.Keys(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, keys)
			}
			fmt.Printf("  %-18s %-20s %s\n", "KEY", "ADDED", "HOST")
			for _, k := range keys {
				mark := " "
				if k.Current {
					mark = "*"
				}
				fmt.Printf("%s %-18s %-20s %s\n", mark, k.ID, k.Created.Local().Format(time.DateTime), k.Host)
			}
			return nil
		}),
	}
	// withNewPassword runs a command that sets a new password: it reads
	// the password, calls set, and reports the key with said.
	withNewPassword := func(set func(*service.Service, context.Context, string) (repo.KeyInfo, error), said string) func(*cobra.Command, []string) error {
		return g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			pw, err := newPassword()
			if err != nil {
				return err
			}
			k, err := set(svc, ctx, pw)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, k)
			}
			fmt.Printf(said+"\n", k.ID)
			return nil
		})
	}
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a password (the new one from --new-password-file, --new-password-command or GRAPHKEEP_NEW_PASSWORD)",
		Args:  cobra.NoArgs,
		RunE:  withNewPassword((*service.Service).AddKey, "added key %s: the new password opens the repository too"),
	}
	remove := &cobra.Command{
		Use:   "remove KEY",
		Short: "Remove a password's key (not the one in use, not the config's)",
		Args:  cobra.ExactArgs(1),
		RunE: g.run(func(ctx context.Context, svc *service.Service, args []string) error {
			if err := svc.RemoveKey(ctx, args[0]); err != nil {
				return err
			}
			fmt.Printf("removed key %s: its password no longer opens the repository (replicas: after their next replication)\n", args[0])
			return nil
		}),
	}
	passwd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password in use (the new one from --new-password-file, --new-password-command or GRAPHKEEP_NEW_PASSWORD)",
		Args:  cobra.NoArgs,
		RunE:  withNewPassword((*service.Service).ChangePassword, "changed the password of key %s: the old one no longer opens the repository"),
	}
	for _, c := range []*cobra.Command{add, passwd} {
		c.Flags().StringVar(&newFile, "new-password-file", "", "file holding the new password")
		c.Flags().StringVar(&newCommand, "new-password-command", "", "command printing the new password (sh -c)")
	}
	cmd.AddCommand(list, add, remove, passwd)
	return cmd
}
