package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var envName = regexp.MustCompile(`GRAPHKEEP_[A-Z][A-Z_]*[A-Z]`)

// TestREADMENamesEveryVariable: every environment variable the CLI reads or
// names in its help is in the README, except those only tests set.
func TestREADMENamesEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.go")
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range envName.FindAllString(string(src), -1) {
			seen[v] = true
		}
	}
	if len(seen) < 15 {
		t.Fatalf("found only %d variables", len(seen))
	}
	for v := range seen {
		if !strings.Contains(string(readme), v) {
			t.Errorf("the README does not name %s", v)
		}
	}
}

// TestFlagHelpNamesItsVariable: a flag whose setting the README gives an
// environment variable for names that variable in its help.
func TestFlagHelpNamesItsVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The README's global flag table: | `--flag ...` | `GRAPHKEEP_X` ...
	row := regexp.MustCompile("(?m)^\\| `--([a-z-]+)[^|]*\\| ([^|]*)\\|")
	want := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		want[m[1]] = envName.FindAllString(m[2], -1)
	}
	if len(want) < 8 {
		t.Fatalf("read %d rows of the README's flag table", len(want))
	}
	root, _ := newRoot()
	var flags []*pflag.Flag
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) { flags = append(flags, f) })
	for _, c := range root.Commands() {
		addLocal(c, &flags)
	}
	for _, f := range flags {
		for _, v := range want[f.Name] {
			if !strings.Contains(f.Usage, v) {
				t.Errorf("--%s's help does not name %s: %q", f.Name, v, f.Usage)
			}
		}
	}
}

func addLocal(c *cobra.Command, out *[]*pflag.Flag) {
	c.LocalFlags().VisitAll(func(f *pflag.Flag) { *out = append(*out, f) })
	for _, sub := range c.Commands() {
		addLocal(sub, out)
	}
}
