package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoRunsAndCleansUp runs make demo's script end to end on small
// graphs, as the README's first command does: it must succeed, and leave
// no undo copy behind that it meant to remove.
func TestDemoRunsAndCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs the whole product end to end")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command("bash", "demo/demo.sh")
	env := []string{"GK=" + binary, "DEMO_DIR=" + dir, "DEMO_SIZE=2000000"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRAPHKEEP_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"byte-identical to the live graph", "failover done", "Summary"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "graphs", ".graphkeep-previous-*"))
	if len(left) > 0 {
		t.Fatalf("the demo left undo copies behind: %v", left)
	}
}

// TestVersionNamesTheBuild: --version says which build this is, as make
// build makes it, never a bare "dev".
func TestVersionNamesTheBuild(t *testing.T) {
	out, err := exec.Command(binary, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "graphkeep version "+gitVersion(); got != want || strings.Contains(got, "dev") {
		t.Fatalf("--version = %q, want %q", got, want)
	}
}
