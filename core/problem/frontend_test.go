package problem_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// frontEndWords are what only a front end may say: flags, commands and
// environment variables.
var frontEndWords = []*regexp.Regexp{
	regexp.MustCompile(`(^|[\s'"(])--[a-z][a-z-]+`),
	regexp.MustCompile(`GRAPHKEEP_[A-Z]`),
	regexp.MustCompile(`graphkeep (init|backup|restore|snapshots|verify|forget|prune|stats|check|targets|replicate|replication|checkpoint|failover|health|recovery|serve|watch|previous|fixture)\b`),
}

// speaksFrontEnd reports the string literals and environment reads in src
// that belong to a front end.
func speaksFrontEnd(t *testing.T, name string, src any) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(n.Value)
			if err != nil {
				return true
			}
			for _, re := range frontEndWords {
				if re.MatchString(s) {
					found = append(found, fset.Position(n.Pos()).String()+": "+s)
				}
			}
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && id.Name == "os" && (n.Sel.Name == "Getenv" || n.Sel.Name == "LookupEnv" || n.Sel.Name == "Environ") {
				found = append(found, fset.Position(n.Pos()).String()+": os."+n.Sel.Name)
			}
		}
		return true
	})
	return found
}

// TestCoreSpeaksNoFrontEnd: no string in core names a flag, command or
// environment variable, and core reads no environment; configuration comes
// in as values and remedies are rendered by the front ends.
func TestCoreSpeaksNoFrontEnd(t *testing.T) {
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		for _, bad := range speaksFrontEnd(t, path, nil) {
			t.Errorf("core speaks a front end's language: %s", bad)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckerFindsPlantedWords: the check above can fail.
func TestCheckerFindsPlantedWords(t *testing.T) {
	planted := `package x
import "os"
var a = "use --force to insist"
var b = "set GRAPHKEEP_PASSWORD"
var c = "run 'graphkeep init' first"
var d = os.Getenv("HOME")
var ok = "the graphkeep object header"
`
	if got := speaksFrontEnd(t, "planted.go", planted); len(got) != 4 {
		t.Fatalf("found %d front-end words, want 4: %q", len(got), got)
	}
}
