package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// quotedCommand is how our messages suggest a command: 'graphkeep ...'.
var quotedCommand = regexp.MustCompile(`'graphkeep ([^']*)'`)

// TestEveryHintedCommandParses: every command a message, help text or
// remedy suggests ('graphkeep ...' in a string of this package) names a
// runnable command whose flags exist, whose arguments fit and whose flag
// rules (one of, not both) hold: it runs as printed.
func TestEveryHintedCommandParses(t *testing.T) {
	t.Parallel()
	hints := hintedCommands(t)
	if len(hints) < 15 {
		t.Fatalf("found only %d hinted commands; the scan is broken", len(hints))
	}
	for _, h := range hints {
		if err := parsesAsCommand(h.line); err != nil {
			t.Errorf("%s: 'graphkeep %s' does not run as printed: %v", h.where, h.line, err)
		}
	}
}

// TestHintCheckerFindsBrokenHints: the check above can fail.
func TestHintCheckerFindsBrokenHints(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"previous remove DIR", "snapshots a b", "nosuch command", "checkpoint validate a b", "restore --no-such-flag", "previous remove DIR --all --older-than 7d"} {
		if parsesAsCommand(bad) == nil {
			t.Errorf("'graphkeep %s' passed", bad)
		}
	}
}

type hint struct{ where, line string }

// hintedCommands finds 'graphkeep ...' in every string literal of the
// package's own files, with format verbs filled in.
func hintedCommands(t *testing.T) []hint {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []hint
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, m := range quotedCommand.FindAllStringSubmatch(s, -1) {
				line := strings.NewReplacer("%s", "alpha", "%d", "1", "%v", "alpha").Replace(m[1])
				out = append(out, hint{fset.Position(lit.Pos()).String(), line})
			}
			return true
		})
	}
	return out
}

// parsesAsCommand checks line (after "graphkeep") against a fresh command
// tree as cobra would before running it.
func parsesAsCommand(line string) error {
	root, _ := newRoot()
	cmd, rest, err := root.Find(strings.Fields(line))
	if err != nil {
		return err
	}
	if !cmd.Runnable() {
		return errNotRunnable(cmd)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	if cmd.Args != nil {
		if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
			return err
		}
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return err
	}
	return cmd.ValidateFlagGroups()
}

type notRunnable struct{ name string }

func (e notRunnable) Error() string { return e.name + " only groups other commands" }

func errNotRunnable(c *cobra.Command) error { return notRunnable{c.CommandPath()} }

// TestEveryDurationFlagTakesDays: each duration flag of every command reads
// days and weeks, like the config file and the API.
func TestEveryDurationFlagTakesDays(t *testing.T) {
	t.Parallel()
	root, _ := newRoot()
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if f.Value.Type() != "duration" {
					return
				}
				n++
				if err := f.Value.Set("7d"); err != nil {
					t.Errorf("%s --%s 7d: %v", c.CommandPath(), f.Name, err)
				}
				if err := f.Value.Set("2w"); err != nil {
					t.Errorf("%s --%s 2w: %v", c.CommandPath(), f.Name, err)
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 10 {
		t.Fatalf("found only %d duration flags", n)
	}
}
