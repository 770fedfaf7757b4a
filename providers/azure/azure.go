// Package azure opens repositories in Azure Blob Storage
// ("azblob://container/prefix"), through gocloud's azureblob.
//
// Credentials, in order: a connection string (AZURE_STORAGE_CONNECTION_STRING
// or Config.ConnectionString), an account key (AZURE_STORAGE_KEY with
// AZURE_STORAGE_ACCOUNT), else Azure's default credential chain (managed
// identity, environment, CLI login) for AZURE_STORAGE_ACCOUNT.
package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers/internal/params"
)

// Scheme is the URL scheme of this provider.
const Scheme = "azblob"

// ProbeTimeout bounds the check Open makes that the container answers.
const ProbeTimeout = 10 * time.Second

// Config selects a container and how to reach it. Secrets are never printed.
type Config struct {
	Container string `json:"container" yaml:"container"`
	Prefix    string `json:"prefix" yaml:"prefix"`
	// Account is the storage account name (AZURE_STORAGE_ACCOUNT).
	Account string `json:"account" yaml:"account"`
	// ServiceURL overrides https://<account>.blob.core.windows.net/ (for
	// Azurite or sovereign clouds).
	ServiceURL string `json:"service_url" yaml:"service_url"`
	// AccountKey is a shared key (AZURE_STORAGE_KEY).
	AccountKey string `json:"account_key" yaml:"account_key"`
	// ConnectionString wins over everything else
	// (AZURE_STORAGE_CONNECTION_STRING).
	ConnectionString string `json:"connection_string" yaml:"connection_string"`
}

// String describes the configuration without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("azblob://%s/%s (account %q, key set: %v, connection string set: %v)",
		c.Container, c.Prefix, c.Account, c.AccountKey != "", c.ConnectionString != "")
}

// ParseURL reads azblob://container/prefix?account=&service_url= and takes
// the secrets from the environment.
func ParseURL(u *url.URL) (Config, error) {
	q, err := params.Parse(u, "account", "service_url")
	if err != nil {
		return Config{}, err
	}
	name, prefix, err := params.BucketAndPrefix(u)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Container: name, Prefix: prefix, Account: q.String("account"), ServiceURL: q.String("service_url")}
	cfg.ApplyEnv()
	return cfg, nil
}

// ApplyEnv fills unset fields from the AZURE_STORAGE_* variables.
func (c *Config) ApplyEnv() {
	if c.Account == "" {
		c.Account = os.Getenv("AZURE_STORAGE_ACCOUNT")
	}
	if c.AccountKey == "" {
		c.AccountKey = os.Getenv("AZURE_STORAGE_KEY")
	}
	if c.ConnectionString == "" {
		c.ConnectionString = os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
	}
}

// Validate checks the configuration before anything is sent.
func (c Config) Validate() error {
	if len(c.Container) < 3 || len(c.Container) > 63 {
		return fmt.Errorf("azblob: container name %q must be 3 to 63 characters", c.Container)
	}
	if c.ConnectionString == "" && c.Account == "" {
		return errors.New("azblob: no storage account: set AZURE_STORAGE_ACCOUNT (or ?account=), or AZURE_STORAGE_CONNECTION_STRING")
	}
	if c.ServiceURL != "" {
		if u, err := url.Parse(c.ServiceURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("azblob: service_url %q is not a URL like https://account.blob.core.windows.net/", c.ServiceURL)
		}
	}
	return nil
}

// ContainerURL is where the container lives for account/key credentials.
func (c Config) ContainerURL() string {
	base := c.ServiceURL
	if base == "" {
		base = fmt.Sprintf("https://%s.blob.core.windows.net/", c.Account)
	}
	u, _ := url.JoinPath(base, c.Container)
	return u
}

// Open connects to the container and checks that it exists and the
// credentials reach it, within ProbeTimeout.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	b, err := azureblob.OpenBucket(ctx, client, nil)
	if err != nil {
		return nil, fmt.Errorf("azblob: open container %q: %w", cfg.Container, err)
	}
	if p := params.WithSlash(cfg.Prefix); p != "" {
		b = gcblob.PrefixedBucket(b, p)
	}
	store := blob.New(b, blob.Options{Location: location(cfg), Classify: classify, Requests: blob.RemoteRequests})
	if err := store.Probe(ctx, ProbeTimeout); err != nil {
		_ = store.Close()
		return nil, explain(cfg, err)
	}
	return &Store{Bucket: store, client: client, prefix: params.WithSlash(cfg.Prefix)}, nil
}

// OpenURL parses u and opens it.
func OpenURL(ctx context.Context, u *url.URL) (*Store, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}

func newClient(cfg Config) (*container.Client, error) {
	switch {
	case cfg.ConnectionString != "":
		c, err := container.NewClientFromConnectionString(cfg.ConnectionString, cfg.Container, nil)
		if err != nil {
			// The SDK's message may quote the string; never pass it on.
			return nil, errors.New("azblob: the connection string is malformed: copy it again from the storage account's Access keys page")
		}
		return c, nil
	case cfg.AccountKey != "":
		cred, err := azblob.NewSharedKeyCredential(cfg.Account, cfg.AccountKey)
		if err != nil {
			return nil, errors.New("azblob: the account key is malformed (it must be base64): check AZURE_STORAGE_KEY")
		}
		return container.NewClientWithSharedKeyCredential(cfg.ContainerURL(), cred, nil)
	default:
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("azblob: no Azure credentials: set AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING, or log in (%v)", err)
		}
		return container.NewClient(cfg.ContainerURL(), cred, nil)
	}
}

func location(cfg Config) string {
	loc := "azblob://" + cfg.Container
	if cfg.Prefix != "" {
		loc += "/" + cfg.Prefix
	}
	return loc
}

// classify maps Azure errors gocloud leaves as Unknown.
func classify(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch code := re.StatusCode; {
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return blob.ErrPermission
		case code == http.StatusTooManyRequests || code >= 500:
			return blob.ErrUnavailable
		case re.ErrorCode == "ContainerNotFound":
			return blob.ErrNotFound
		}
	}
	return nil
}

// explain turns a failed probe into one line that says what to check.
func explain(cfg Config, err error) error {
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return fmt.Errorf("azblob: container %q does not exist in account %q: check the name, or create the container", cfg.Container, cfg.Account)
	case errors.Is(err, blob.ErrPermission):
		return fmt.Errorf("azblob: access to container %q denied: check AZURE_STORAGE_KEY / AZURE_STORAGE_CONNECTION_STRING or the identity's role assignments", cfg.Container)
	default:
		return fmt.Errorf("azblob: cannot reach the storage account for container %q: check the account name, service_url and network (%s)", cfg.Container, blob.Reason(err))
	}
}
