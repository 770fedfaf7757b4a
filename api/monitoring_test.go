package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/api"
	"github.com/graphkeep/graphkeep/api/monitoring"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
)

// promtool finds Prometheus's promtool; under CI=true a missing one fails
// with the fix, elsewhere the test skips.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	msg := "no promtool for the alerting rules' tests: install Debian's prometheus package (make test does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// The shipped rules are valid and each alert fires and stays silent where
// its unit tests say (monitoring/rules_test.yml).
func TestAlertingRules(t *testing.T) {
	tool := promtool(t)
	dir := t.TempDir()
	tests, err := os.ReadFile(filepath.Join("monitoring", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"rules.yml": monitoring.Rules(), "rules_test.yml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(tool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every rule has a unit test that makes it fire.
	fired := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels`).FindAllStringSubmatch(string(tests), -1) {
		fired[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)- alert: (\w+)`).FindAllStringSubmatch(string(monitoring.Rules()), -1) {
		if !fired[m[1]] {
			t.Errorf("no unit test makes %s fire", m[1])
		}
	}
}

// scrape is /metrics as series name -> the label names of each of its series.
type scrape map[string][]string

var seriesLine = regexp.MustCompile(`^(\w+)(?:\{(.*)\})? `)
var labelPair = regexp.MustCompile(`(\w+)="(?:[^"\\]|\\.)*"`)

func parseScrape(t *testing.T, body string) scrape {
	t.Helper()
	out := scrape{}
	for _, line := range strings.Split(body, "\n") {
		m := seriesLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		var keys []string
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			keys = append(keys, p[1])
		}
		sort.Strings(keys)
		out[m[1]] = append(out[m[1]], strings.Join(keys, ","))
	}
	return out
}

// fullScrape is the real /metrics of a server that has backed up, failed a
// backup, and whose health names a target, a validated checkpoint and a
// failover: every series graphkeep exports has a value.
func fullScrape(t *testing.T) scrape {
	f := newServer(t, false)
	f.do("POST", "/backup/graphs/g1/snapshots?wait=true", "", "", nil)
	m := api.MetricsOf(f.s)
	now := time.Now()
	age, rpo := 30.0, 12.0
	m.ObserveHealth(&recovery.Health{
		Status:  recovery.StateDegraded,
		Primary: recovery.PrimaryHealth{URL: "mem://x", Reachable: true},
		Targets: []recovery.TargetHealth{{ID: "eu", Status: replication.Healthy, LagSnapshots: 1, LagBytes: 10, RPOSeconds: rpo}},
		Graphs: []recovery.GraphHealth{{Graph: "g1", AgeSeconds: &age, LastGood: "x", LastGoodAgeSeconds: &age, ScheduleSeconds: 3600},
			{Graph: "g2", ScheduleSeconds: 3600}},
		Checkpoint: &recovery.CheckpointHealth{ID: "c", AgeSeconds: age, RestorableAt: []string{recovery.PrimaryName, "eu"}, ValidatedAt: now},
		Failovers:  []recovery.Switch{{Time: now.Add(-time.Hour), Target: "eu"}},
	})
	m.ObserveBackupFailure("g2", now)
	m.ObserveRPO("g1", 2*time.Second)
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return parseScrape(t, string(body))
}

var metricName = regexp.MustCompile(`graphkeep_[a-z0-9_]+`)

// The rules, their tests and the Grafana dashboard name only series that a
// real /metrics exports, and the tests' series carry its label names.
func TestMonitoringNamesRealSeries(t *testing.T) {
	got := fullScrape(t)
	tests, err := os.ReadFile(filepath.Join("monitoring", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(monitoring.Grafana(), &dash); err != nil {
		t.Fatalf("grafana.json: %v", err)
	}
	var grafanaExprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			grafanaExprs = append(grafanaExprs, q.Expr)
		}
	}
	for what, text := range map[string]string{"rules.yml": string(monitoring.Rules()), "rules_test.yml": string(tests), "grafana.json": strings.Join(grafanaExprs, "\n")} {
		for _, name := range metricName.FindAllString(text, -1) {
			if _, ok := got[name]; !ok {
				t.Errorf("%s names %s, which /metrics does not export", what, name)
			}
		}
	}
	// The unit tests' input series have the labels /metrics gives them
	// (plus the instance and job Prometheus adds).
	for _, m := range regexp.MustCompile(`series: '(\w+)\{([^}]*)\}'`).FindAllStringSubmatch(string(tests), -1) {
		var keys []string
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			if p[1] != "instance" && p[1] != "job" {
				keys = append(keys, p[1])
			}
		}
		sort.Strings(keys)
		want := strings.Join(keys, ",")
		found := false
		for _, have := range got[m[1]] {
			found = found || have == want
		}
		if !found {
			t.Errorf("rules_test.yml feeds %s{%s}; /metrics has it with labels %q", m[1], want, got[m[1]])
		}
	}
}

// What is unknown is absent: everything the health view feeds before it
// first ran; then an unreachable target's lag and RPO, a checkpoint never
// validated, a graph never backed up.
func TestUnknownSeriesAreAbsent(t *testing.T) {
	f := newServer(t, false)
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for name := range parseScrape(t, string(body)) {
		if strings.HasPrefix(name, "graphkeep_") && !strings.HasPrefix(name, "graphkeep_http_") {
			t.Errorf("%s is exported before anything was measured", name)
		}
	}
	m := api.MetricsOf(f.s)
	m.ObserveHealth(&recovery.Health{
		Status:     recovery.StateCritical,
		Primary:    recovery.PrimaryHealth{Reachable: true},
		Targets:    []recovery.TargetHealth{{ID: "eu", Status: replication.Unreachable, LagSnapshots: -1}},
		Graphs:     []recovery.GraphHealth{{Graph: "g1", ScheduleSeconds: 60}},
		Checkpoint: &recovery.CheckpointHealth{ID: "c", AgeSeconds: 5},
	})
	resp, err = http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	got := parseScrape(t, string(body))
	for _, absent := range []string{"graphkeep_replication_lag_snapshots", "graphkeep_replication_lag_bytes", "graphkeep_replication_rpo_seconds",
		"graphkeep_checkpoint_restorable_targets", "graphkeep_graph_last_snapshot_timestamp_seconds", "graphkeep_graph_last_good_snapshot_timestamp_seconds",
		"graphkeep_last_failover_timestamp_seconds"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s is exported though unknown", absent)
		}
	}
	for _, present := range []string{"graphkeep_target_health", "graphkeep_graph_schedule_seconds", "graphkeep_checkpoint_age_seconds", "graphkeep_health_status", "graphkeep_failovers"} {
		if _, ok := got[present]; !ok {
			t.Errorf("%s is missing", present)
		}
	}
}
