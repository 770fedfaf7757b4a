package main

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/api"
)

func TestExposureNeedsATokenBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		listen string
		tokens int
		ok     bool
	}{
		{"127.0.0.1:8080", 0, true},
		{"localhost:8080", 0, true},
		{"[::1]:8080", 0, true},
		{"0.0.0.0:8080", 0, false},
		{":8080", 0, false},
		{"10.1.2.3:8080", 0, false},
		{"0.0.0.0:8080", 1, true},
	} {
		var tokens []api.Token
		for i := 0; i < c.tokens; i++ {
			tokens = append(tokens, api.Token{Token: "x"})
		}
		err := checkExposure(c.listen, tokens)
		if (err == nil) != c.ok {
			t.Errorf("checkExposure(%q, %d tokens) = %v, want ok=%v", c.listen, c.tokens, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "GRAPHKEEP_ADMIN_TOKEN") {
			t.Errorf("the refusal does not say how to fix it: %v", err)
		}
	}
}

func TestServerTokens(t *testing.T) {
	t.Setenv("GRAPHKEEP_ADMIN_TOKEN", "an-admin-token-long-enough")
	t.Setenv("GRAPHKEEP_READ_TOKEN", "")
	got, err := serverTokens([]api.Token{{Name: "ops", Token: "another-long-token-for-reading", Role: "read"}})
	if err != nil || len(got) != 2 || got[1].Role != "admin" {
		t.Fatalf("tokens = %+v, %v", got, err)
	}
	for _, bad := range []api.Token{{Name: "short", Token: "tiny", Role: "admin"}, {Name: "role", Token: "long-enough-token-value", Role: "root"}} {
		_, err := serverTokens([]api.Token{bad})
		if err == nil || strings.Contains(err.Error(), bad.Token) {
			t.Errorf("token %+v: err = %v (must refuse without echoing the token)", bad, err)
		}
	}
}

// An append-only server will not start with a schedule that deletes, and a
// backup token is a role of its own.
func TestAppendOnlyChecksAndBackupTokens(t *testing.T) {
	if err := checkAppendOnly(true, api.Schedule{CleanupInterval: time.Hour}, false); err == nil || !strings.Contains(err.Error(), "remove cleanup_interval") {
		t.Fatalf("append-only with cleanup: %v", err)
	}
	if err := checkAppendOnly(true, api.Schedule{}, true); err == nil || !strings.Contains(err.Error(), "auto_failover") {
		t.Fatalf("append-only with auto failover: %v", err)
	}
	if err := checkAppendOnly(true, api.Schedule{BackupInterval: time.Hour}, false); err != nil {
		t.Fatal(err)
	}
	if err := checkAppendOnly(false, api.Schedule{CleanupInterval: time.Hour}, true); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GRAPHKEEP_BACKUP_TOKEN", "backup-token-0123456789")
	tokens, err := serverTokens([]api.Token{{Name: "x", Token: "0123456789abcdef0", Role: "backup"}})
	if err != nil || len(tokens) != 2 || tokens[1].Role != "backup" {
		t.Fatalf("backup tokens: %+v %v", tokens, err)
	}
	if _, err := serverTokens([]api.Token{{Name: "x", Token: "0123456789abcdef0", Role: "root"}}); err == nil || !strings.Contains(err.Error(), "admin, backup or read") {
		t.Fatalf("unknown role: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if got, err := parseSince("36h", now); err != nil || !got.Equal(now.Add(-36*time.Hour)) {
		t.Fatalf("36h: %v %v", got, err)
	}
	if got, err := parseSince("2026-12-05T00:00:00Z", now); err != nil || !got.Equal(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("a time: %v %v", got, err)
	}
	for _, bad := range []string{"yesterday", "-3h", "0s"} {
		if _, err := parseSince(bad, now); err == nil || !strings.Contains(err.Error(), "duration ago") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestLockFlags(t *testing.T) {
	p, err := lockPolicy("Compliance", "30d")
	if err != nil || p.Mode != "compliance" || p.Retention() != 30*24*time.Hour {
		t.Fatalf("30d compliance: %+v %v", p, err)
	}
	if p, err := lockPolicy("governance", "36h"); err != nil || p.Retention() != 36*time.Hour {
		t.Fatalf("36h governance: %+v %v", p, err)
	}
	for _, c := range [][2]string{{"compliance", ""}, {"", "30d"}, {"compliance", "-1d"}, {"compliance", "soon"}, {"sometimes", "1d"}} {
		if _, err := lockPolicy(c[0], c[1]); err == nil {
			t.Errorf("--object-lock %q --retention %q was accepted", c[0], c[1])
		}
	}
	if got := humanDuration(30 * 24 * time.Hour); got != "30d" {
		t.Errorf("humanDuration(30 days) = %q", got)
	}
}

// TestServeOnBusyPortCreatesNothing: the zero-configuration server checks
// its port before it creates the embedded repository and graphs root, so a
// failed start leaves the working directory as it was.
func TestServeOnBusyPortCreatesNothing(t *testing.T) {
	for _, v := range []string{"GRAPHKEEP_REPO", "GRAPHKEEP_GRAPHS_ROOT", "GRAPHKEEP_CONFIG", "GRAPHKEEP_LISTEN", "GRAPHKEEP_ADMIN_TOKEN", "GRAPHKEEP_READ_TOKEN", "GRAPHKEEP_BACKUP_TOKEN"} {
		t.Setenv(v, "")
	}
	t.Setenv("GRAPHKEEP_STATE_DIR", t.TempDir())
	wd := t.TempDir()
	t.Chdir(wd)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	err = serve(context.Background(), &globals{cacheDir: t.TempDir()}, busy.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "listen on "+busy.Addr().String()) {
		t.Fatalf("serve on a busy port: %v", err)
	}
	entries, _ := os.ReadDir(wd)
	if len(entries) != 0 {
		t.Fatalf("a failed start left %d entries in the working directory (first %s)", len(entries), entries[0].Name())
	}
}
