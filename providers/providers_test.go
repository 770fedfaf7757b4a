package providers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"s3://AKIA:secret@bucket/p", "s3://REDACTED@bucket/p"},
		{"s3://bucket/p?endpoint=http://h:9000&secret_access_key=xyz", "s3://bucket/p?endpoint=http%3A%2F%2Fh%3A9000&secret_access_key=REDACTED"},
		{"azblob://c/p?sig=abc", "azblob://c/p?sig=REDACTED"},
		{"file:///srv/repo", "file:///srv/repo"},
	} {
		if got := providers.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"ftp://host/x", `scheme "ftp" is not supported`},
		{"backups", "has no scheme"},
		{"s3://user:hunter2@bucket/p", "must not carry credentials"},
		{"mem://x?y=1", "unknown setting(s) y"},
	} {
		_, err := providers.Open(context.Background(), c.url, providers.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", c.url, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks a password: %v", err)
		}
	}
}

func TestBarePathIsAFileURL(t *testing.T) {
	dir := t.TempDir()
	s, err := providers.Open(context.Background(), dir, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := s.Location(), "file://"+dir; got != want {
		t.Fatalf("Location = %q, want %q", got, want)
	}
}

func TestRequestsSetting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		url  string
		want int
	}{
		{"file://" + dir, blob.LocalRequests},
		{"file://" + dir + "?requests=3", 3},
		{"mem://requests?requests=64", 64},
	} {
		s, err := providers.Open(ctx, c.url, providers.Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", c.url, err)
		}
		if got := blob.RequestsOf(s); got != c.want {
			t.Errorf("Open(%q): RequestsOf = %d, want %d", c.url, got, c.want)
		}
		_ = s.Close()
	}
	for _, bad := range []string{"requests=0", "requests=x", "requests=100000", "requests=2&requests=3"} {
		_, err := providers.Open(ctx, "file://"+dir+"?"+bad, providers.Options{})
		if err == nil || !strings.Contains(err.Error(), "requests") {
			t.Errorf("Open with %s = %v, want an error about requests", bad, err)
		}
	}
	// Unknown settings list requests among the known ones.
	_, err := providers.Open(ctx, "file://"+dir+"?request=4", providers.Options{})
	if err == nil || !strings.Contains(err.Error(), "known settings: create, requests") {
		t.Errorf("a misspelt setting: %v, want the known settings listed with requests", err)
	}
}
