package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestSettingPrecedence: for every setting, a flag wins over the
// environment, which wins over the config file.
func TestSettingPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flagPW, envPWFile, filePW := write("flag-pw", "from-flag\n"), write("env-pw", "from-env-file\n"), write("file-pw", "from-config\n")
	cfg := write("graphkeep.yaml", `repo: file:///from-config
graphs_root: /config-root
cache_dir: /config-cache
password_file: `+filePW+`
consistency: {quiet_window: 7s, max_wait: 70s}
lightrag: {url: "http://config:1"}
`)
	type setting struct {
		name string
		get  func(g *globals) string
		flag func(g *globals)
		env  [2]string
		want [3]string // flag, env, file
	}
	repoURL := func(g *globals) string { u, _ := g.repoURL(); return u }
	pw := func(g *globals) string { p, _ := g.password(); return p }
	quiet := func(g *globals) string { o, _ := g.backupOptions(); return o.Quiet.String() }
	maxWait := func(g *globals) string { o, _ := g.backupOptions(); return o.MaxWait.String() }
	lightragURL := func(g *globals) string {
		p, _ := g.pipeline("g1")
		if p == nil {
			return ""
		}
		return p.URL
	}
	for _, s := range []setting{
		{"repo", repoURL, func(g *globals) { g.repo = "file:///from-flag" }, [2]string{"GRAPHKEEP_REPO", "file:///from-env"}, [3]string{"file:///from-flag", "file:///from-env", "file:///from-config"}},
		{"graphs root", (*globals).graphsRootDir, func(g *globals) { g.graphsRoot = "/flag-root" }, [2]string{"GRAPHKEEP_GRAPHS_ROOT", "/env-root"}, [3]string{"/flag-root", "/env-root", "/config-root"}},
		{"cache", (*globals).cache, func(g *globals) { g.cacheDir = "/flag-cache" }, [2]string{"GRAPHKEEP_CACHE_DIR", "/env-cache"}, [3]string{"/flag-cache", "/env-cache", "/config-cache"}},
		{"password", pw, func(g *globals) { g.passwordFile = flagPW }, [2]string{"GRAPHKEEP_PASSWORD", "from-env"}, [3]string{"from-flag", "from-env", "from-config"}},
		{"password file", pw, func(g *globals) { g.passwordFile = flagPW }, [2]string{"GRAPHKEEP_PASSWORD_FILE", envPWFile}, [3]string{"from-flag", "from-env-file", "from-config"}},
		{"quiet window", quiet, func(g *globals) { g.quietWindow = "3s" }, [2]string{"GRAPHKEEP_QUIET_WINDOW", "5s"}, [3]string{"3s", "5s", "7s"}},
		{"max wait", maxWait, func(g *globals) { g.maxWait = "30s" }, [2]string{"GRAPHKEEP_MAX_WAIT", "50s"}, [3]string{"30s", "50s", "1m10s"}},
		{"lightrag url", lightragURL, func(g *globals) { g.lightragURL = "http://flag:1" }, [2]string{"GRAPHKEEP_LIGHTRAG_URL", "http://env:1"}, [3]string{"http://flag:1", "http://env:1", "http://config:1"}},
	} {
		t.Run(s.name, func(t *testing.T) {
			for _, v := range []string{"GRAPHKEEP_REPO", "GRAPHKEEP_GRAPHS_ROOT", "GRAPHKEEP_CACHE_DIR", "GRAPHKEEP_PASSWORD", "GRAPHKEEP_PASSWORD_FILE",
				"GRAPHKEEP_QUIET_WINDOW", "GRAPHKEEP_MAX_WAIT", "GRAPHKEEP_LIGHTRAG_URL", "GRAPHKEEP_STATE_DIR"} {
				t.Setenv(v, "")
			}
			t.Setenv("GRAPHKEEP_STATE_DIR", t.TempDir())
			load := func() *globals {
				g := &globals{configFile: cfg}
				if err := g.load(); err != nil {
					t.Fatal(err)
				}
				return g
			}
			t.Setenv(s.env[0], s.env[1])
			g := load()
			s.flag(g)
			if got := s.get(g); got != s.want[0] {
				t.Errorf("flag, env and file set: %q, want the flag's %q", got, s.want[0])
			}
			if got := s.get(load()); got != s.want[1] {
				t.Errorf("env and file set: %q, want the environment's %q", got, s.want[1])
			}
			t.Setenv(s.env[0], "")
			if got := s.get(load()); got != s.want[2] {
				t.Errorf("file set: %q, want the config file's %q", got, s.want[2])
			}
		})
	}
}

// key_cache and GRAPHKEEP_KEY_CACHE: the environment wins, 0 and off turn
// the cache off, a negative or unreadable value is refused with what is
// wanted.
func TestKeyCacheSetting(t *testing.T) {
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	for _, c := range []struct {
		file     *time.Duration
		env      string
		off, bad bool
	}{
		{file: nil, env: ""},
		{file: d("0s"), env: "", off: true},
		{file: d("5m"), env: "off", off: true},
		{file: d("0s"), env: "2m"},
		{file: d("-1m"), env: "", bad: true},
		{file: nil, env: "-3m", bad: true},
		{file: nil, env: "soon", bad: true},
	} {
		t.Setenv("GRAPHKEEP_KEY_CACHE", c.env)
		g := &globals{file: fileConfig{KeyCache: c.file}}
		kc, err := g.keyCache()
		switch {
		case c.bad && (err == nil || !strings.Contains(err.Error(), "want how long derived keys stay cached")):
			t.Errorf("file %v env %q: error %v, want one saying what is wanted", c.file, c.env, err)
		case !c.bad && err != nil:
			t.Errorf("file %v env %q: %v", c.file, c.env, err)
		case !c.bad && runtime.GOOS == "linux" && (kc == nil) != c.off:
			t.Errorf("file %v env %q: cache %v, want off=%v", c.file, c.env, kc, c.off)
		}
	}
}
