package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigErrorsSayWhere: every mistake in the config file is reported
// with the file, the line, the key, what was expected and, for a misspelt
// key, the closest valid one; never as a raw decoder message.
func TestConfigErrorsSayWhere(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       []string
		not        []string
	}{
		{"misspelt key", "repo: file:///r\nretention:\n  keep_lst: 3\n",
			[]string{"line 3", `unknown key "keep_lst" in retention`, "did you mean keep_last?", "keep_within"},
			[]string{"not found in type", "retention.Policy"}},
		{"misspelt top key", "repo: file:///r\ngraph_root: /x\n",
			[]string{"line 2", `unknown key "graph_root"`, "did you mean graphs_root?"}, nil},
		{"bad YAML", "repo: file:///r\nretention:\n  keep_last: 3\n  keep_daily: 7\n    schedule: x: y\n",
			[]string{"graphkeep.yaml, line 5", "not valid YAML", "mapping values are not allowed", "indentation"}, []string{"yaml: line"}},
		{"words for a duration", "repo: file:///r\nschedule:\n  backup_interval: 6 hours\n",
			[]string{"line 3", "schedule.backup_interval", `"6 hours" is not a duration`, "7d"}, []string{"!!str", "time.Duration"}},
		{"text for a number", "retention:\n  keep_daily: seven\n",
			[]string{"line 2", "retention.keep_daily", `"seven" is not a whole number`}, []string{"!!str"}},
		{"mapping for a value", "repo:\n  url: x\n",
			[]string{"line 2", "repo", "want a single value, not a mapping"}, nil},
		{"value for a mapping", "consistency: 5s\n",
			[]string{"line 1", "consistency", "want a mapping"}, nil},
		{"text for a bool", "server:\n  metrics_open: sometimes\n",
			[]string{"line 2", "server.metrics_open", `"sometimes" is not true or false`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg fileConfig
			err := parseConfig("graphkeep.yaml", []byte(tc.yaml), &cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tc.want, "config file graphkeep.yaml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q still says %q", err, n)
				}
			}
		})
	}
}

// TestConfigDurationsTakeDays: every duration in the config file reads days
// and weeks, whatever type holds it.
func TestConfigDurationsTakeDays(t *testing.T) {
	t.Parallel()
	var cfg fileConfig
	yaml := `retention: {keep_within: 7d}
backup_interval: 1d
key_cache: 1h
consistency: {quiet_window: 2s, max_wait: 1m}
schedule:
  cleanup_interval: 1w
  graphs:
    alpha: {backup_interval: 12h, retention: {keep_within: 2w}}
auto_failover: {after: 1d}
`
	if err := parseConfig("graphkeep.yaml", []byte(yaml), &cfg); err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"keep_within", time.Duration(cfg.Retention.KeepWithin), 7 * day},
		{"backup_interval", cfg.BackupInterval, day},
		{"key_cache", *cfg.KeyCache, time.Hour},
		{"max_wait", cfg.Consistency.MaxWait, time.Minute},
		{"cleanup_interval", cfg.Schedule.CleanupInterval, 7 * day},
		{"graph backup_interval", cfg.Schedule.Graphs["alpha"].BackupInterval, 12 * time.Hour},
		{"graph keep_within", time.Duration(cfg.Schedule.Graphs["alpha"].Retention.KeepWithin), 14 * day},
		{"auto_failover.after", cfg.AutoFailover.After, day},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestConfigFileErrorNamesPath: load reports the path it read.
func TestConfigFileErrorNamesPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gk.yaml")
	if err := os.WriteFile(p, []byte("retention:\n  keep_lst: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GRAPHKEEP_CONFIG", "")
	err := (&globals{configFile: p}).load()
	if err == nil || !strings.Contains(err.Error(), "config file "+p+", line 2") {
		t.Fatalf("load: %v", err)
	}
}
