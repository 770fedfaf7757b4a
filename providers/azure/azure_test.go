package azure_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/blob/blobtest"
	"github.com/graphkeep/graphkeep/providers"
	"github.com/graphkeep/graphkeep/providers/azure"
)

// harness creates a container per location in the account that
// AZURE_STORAGE_CONNECTION_STRING names (Azurite or a real account).
type harness struct{ connectionString string }

func (h harness) NewLocation(ctx context.Context, t *testing.T) func(t *testing.T) blob.Store {
	name := fmt.Sprintf("gk-%d", time.Now().UnixNano())
	c, err := container.NewClientFromConnectionString(h.connectionString, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = c.Delete(context.Background(), nil) })
	cfg := azure.Config{Container: name, Prefix: "repo", ConnectionString: h.connectionString}
	return func(t *testing.T) blob.Store {
		b, err := azure.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return providers.Decorate(b, providers.Options{})
	}
}

func TestConformance(t *testing.T) {
	t.Run("azure", func(t *testing.T) {
		cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
		if cs == "" {
			t.Skip("AZURE_STORAGE_CONNECTION_STRING is not set: no Azure or Azurite endpoint to run the conformance suite against")
		}
		blobtest.RunConformance(t, harness{connectionString: cs})
	})
}

func TestParseURL(t *testing.T) {
	t.Setenv("AZURE_STORAGE_ACCOUNT", "envacct")
	t.Setenv("AZURE_STORAGE_KEY", "a2V5")
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	u, _ := providers.Parse("azblob://graphs/prod/repo?service_url=http://127.0.0.1:10000/devstoreaccount1")
	got, err := azure.ParseURL(u)
	want := azure.Config{Container: "graphs", Prefix: "prod/repo", Account: "envacct", AccountKey: "a2V5",
		ServiceURL: "http://127.0.0.1:10000/devstoreaccount1"}
	if err != nil || got != want {
		t.Fatalf("ParseURL = %+v, %v; want %+v", got, err, want)
	}
	if got, want := got.ContainerURL(), "http://127.0.0.1:10000/devstoreaccount1/graphs"; got != want {
		t.Fatalf("ContainerURL = %q, want %q", got, want)
	}
	if s := got.String(); strings.Contains(s, "a2V5") {
		t.Fatalf("Config.String() leaks the key: %q", s)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	t.Setenv("AZURE_STORAGE_KEY", "")
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  azure.Config
		want string
	}{
		{"no account", azure.Config{Container: "graphs"}, "no storage account"},
		{"short container", azure.Config{Container: "g", Account: "a"}, "3 to 63 characters"},
		{"bad service url", azure.Config{Container: "graphs", Account: "a", ServiceURL: "blob.example"}, "is not a URL"},
		{"malformed key", azure.Config{Container: "graphs", Account: "a", AccountKey: "not base64 !!"}, "account key is malformed"},
		{"malformed connection string", azure.Config{Container: "graphs", ConnectionString: "AccountKey=supersecret;garbage"}, "connection string is malformed"},
		{"unreachable", azure.Config{Container: "graphs", Account: "devstoreaccount1", AccountKey: "a2V5",
			ServiceURL: "http://127.0.0.1:1/devstoreaccount1"}, "cannot reach the storage account"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := azure.Open(ctx, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "supersecret") || (c.cfg.AccountKey != "" && strings.Contains(err.Error(), c.cfg.AccountKey)) {
				t.Fatalf("error leaks a secret: %v", err)
			}
			if took := time.Since(start); took > 15*time.Second {
				t.Fatalf("took %s to fail", took)
			}
		})
	}
	u, _ := providers.Parse("azblob://graphs/p?sas=1")
	if _, err := azure.ParseURL(u); err == nil || !strings.Contains(err.Error(), "unknown setting(s) sas") {
		t.Fatalf("unknown setting: err = %v", err)
	}
}

// TestObjectRetentionOnAzure runs against a real container with
// version-level immutability support when GRAPHKEEP_AZURE_LOCK_URL names
// one (azblob://container/prefix, credentials from the environment): a
// locked blob cannot be deleted, and its policy reads back. No emulator
// here supports immutability, so it is skipped otherwise.
func TestObjectRetentionOnAzure(t *testing.T) {
	url := os.Getenv("GRAPHKEEP_AZURE_LOCK_URL")
	if url == "" {
		t.Skip("GRAPHKEEP_AZURE_LOCK_URL is not set: no Azure container with immutability support to test against")
	}
	ctx := context.Background()
	s, err := providers.Open(ctx, url, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lk, ok := blob.LockerOf(s)
	if !ok {
		t.Fatal("the Azure store is not a Locker")
	}
	if on, err := lk.LockEnabled(ctx); err != nil || !on {
		t.Fatalf("immutability support: %v %v", on, err)
	}
	key := fmt.Sprintf("locktest-%d", time.Now().UnixNano())
	until := time.Now().Add(2 * time.Minute).Truncate(time.Second)
	if err := s.Put(ctx, key, strings.NewReader("locked"), &blob.PutOptions{Retain: &blob.Retention{Mode: blob.Governance, Until: until}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key); err == nil {
		t.Fatal("deleted a locked blob")
	}
	if r, err := lk.Retention(ctx, key); err != nil || r.Mode != blob.Governance || !r.Until.Equal(until) {
		t.Fatalf("retention: %+v %v", r, err)
	}
}
