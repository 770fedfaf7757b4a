package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/core/backup"
)

// previousCmd lists and removes the undo copies restores keep.
func previousCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "previous",
		Short: "The undo copies restores keep beside a graph (.graphkeep-previous-NAME-TIME)",
	}
	list := &cobra.Command{
		Use:   "list GRAPH|DIR",
		Short: "List the undo copies of a graph's directory (or of DIR), oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := previousDir(g, args[0])
			if err != nil {
				return err
			}
			prev, err := backup.ListPrevious(dir)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(os.Stdout, prev)
			}
			if len(prev) == 0 {
				fmt.Printf("no undo copies of %s\n", dir)
				return nil
			}
			tw := newTable("KEPT\tSIZE\tPATH")
			for _, p := range prev {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Time.Local().Format("2006-01-02 15:04:05"), humanBytes(p.SizeBytes), p.Path)
			}
			return tw.Flush()
		},
	}
	var all bool
	var olderThan time.Duration
	remove := &cobra.Command{
		Use:   "remove GRAPH|DIR --all | --older-than D",
		Short: "Delete undo copies of a graph's directory (or of DIR)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (olderThan > 0) {
				return errors.New("say which undo copies to delete: --all, or --older-than D (e.g. 7d)")
			}
			dir, err := previousDir(g, args[0])
			if err != nil {
				return err
			}
			removed, err := backup.RemovePrevious(dir, olderThan)
			if g.json {
				if perr := printJSON(os.Stdout, removed); perr != nil {
					return perr
				}
			} else {
				for _, p := range removed {
					fmt.Printf("removed %s (%s)\n", p.Path, humanBytes(p.SizeBytes))
				}
				if err == nil && len(removed) == 0 {
					fmt.Printf("no undo copies of %s to remove\n", dir)
				}
			}
			return err
		},
	}
	remove.Flags().BoolVar(&all, "all", false, "delete every undo copy")
	durationVar(remove.Flags(), &olderThan, "older-than", 0, "delete the undo copies kept longer ago than this (e.g. 7d)")
	remove.MarkFlagsOneRequired("all", "older-than")
	remove.MarkFlagsMutuallyExclusive("all", "older-than")
	cmd.AddCommand(list, remove)
	return cmd
}

// previousDir is a graph's directory (a known graph id), or the directory
// given.
func previousDir(g *globals, arg string) (string, error) {
	svc, err := g.service()
	if err != nil {
		return "", err
	}
	s, err := svc.Source(arg)
	if err == nil {
		return s.Dir, nil
	}
	if info, serr := os.Stat(filepath.Dir(arg)); serr == nil && info.IsDir() && filepath.Base(arg) != "." {
		return filepath.Abs(arg)
	}
	return "", fmt.Errorf("%q is neither a directory path nor a known graph: %w", arg, err)
}
