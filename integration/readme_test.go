package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMECurlExamples runs every curl line of the README's route block
// against a real server, as a user would paste them, and wants each to
// succeed (2xx). The placeholders of the README (a snapshot id, a job id,
// the replica's folder) are replaced with real ones.
func TestREADMECurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed to run the README's examples: install it (apt-get install curl)")
	}
	lines := readmeCurlLines(t)
	if len(lines) < 30 {
		t.Fatalf("found %d curl lines in the README's route block", len(lines))
	}
	e := newEnv(t)
	e.graph("alpha", 2)
	e.ok("init")
	e.extra = []string{"GRAPHKEEP_ADMIN_TOKEN=" + testAdminToken}
	replicas := filepath.Join(e.dir, "replicas") + "/"
	if err := os.MkdirAll(replicas, 0o755); err != nil {
		t.Fatal(err)
	}
	s := e.startServer(t, "server: {restore_root: "+replicas+"}\n")
	var j struct {
		ID     string          `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	s.must(201, "POST", "/backup/graphs/alpha/snapshots?wait=true", "", &j)
	var first struct{ ID string }
	_ = json.Unmarshal(j.Result, &first)
	s.must(201, "POST", "/backup/graphs/alpha/snapshots?wait=true", "", &j)
	replace := strings.NewReplacer(
		"20261127T150405Z-k3f7qa", first.ID,
		"job-3f9a0c1d2e4b", j.ID,
		"/var/lib/graphkeep/", replicas,
	)
	prelude := "S=" + s.url + "; T=" + testAdminToken + `; H="Authorization: Bearer $T"; J="Content-Type: application/json"; `
	for _, line := range lines {
		cmd := exec.Command("bash", "-c", prelude+replace.Replace(line)+` -s -o /dev/null -w '%{http_code}\n'`)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		for _, code := range strings.Fields(string(out)) {
			if !strings.HasPrefix(code, "2") {
				t.Errorf("README example answers %s: %s", code, line)
			}
		}
	}
	// The README's restores made copies to look at, not graphs.
	var graphs []struct{ ID string }
	s.must(200, "GET", "/graphs", "", &graphs)
	for _, g := range graphs {
		if g.ID != "alpha" {
			t.Errorf("the README's examples added graph %q", g.ID)
		}
	}
}

// readmeCurlLines returns the commands of the README's route block, one
// per curl (a line may hold several, split by ';'), without comments.
func readmeCurlLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "Every route, with an example")
	if start < 0 {
		t.Fatal("the README has no route examples")
	}
	block := text[start:]
	block = block[strings.Index(block, "```sh")+5:]
	block = block[:strings.Index(block, "```")]
	var out []string
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		if i := strings.Index(line, "  # "); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		for _, part := range strings.Split(line, "; curl ") {
			if !strings.HasPrefix(part, "curl ") {
				part = "curl " + part
			}
			out = append(out, strings.TrimSpace(part))
		}
	}
	return out
}
