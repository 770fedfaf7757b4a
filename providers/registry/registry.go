// Package registry is how a set of storage providers is opened by URL:
// a Registry maps each scheme to its provider's OpenURL, parses and checks
// a repository URL against it, and adds the decorators every store gets
// (request accounting, then retries of transient failures). The providers
// package holds the registry of every provider; providers/local the one of
// the local ones (file, mem), for tests that need no cloud SDK.
package registry

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/graphkeep/graphkeep/blob"
)

// OpenURL opens a parsed URL of one scheme.
type OpenURL func(ctx context.Context, u *url.URL) (blob.Store, error)

// Registry maps a URL scheme to the provider that opens it.
type Registry map[string]OpenURL

// Store lets a provider's OpenURL return its own concrete Store type.
func Store[S blob.Store](open func(context.Context, *url.URL) (S, error)) OpenURL {
	return func(ctx context.Context, u *url.URL) (blob.Store, error) {
		s, err := open(ctx, u)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// Schemes lists the URL schemes r opens.
func (r Registry) Schemes() []string {
	var s []string
	for k := range r {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Options tune the decorators Open adds.
type Options struct {
	Retry blob.RetryPolicy
}

// Open opens the store a repository URL names, wrapped with request
// accounting (blob.StatsOf reads it) and retries.
func (r Registry) Open(ctx context.Context, rawURL string, opts Options) (blob.Store, error) {
	u, err := r.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	requests, err := takeRequests(u)
	if err != nil {
		return nil, err
	}
	s, err := r[u.Scheme](ctx, u)
	if err != nil {
		return nil, err
	}
	if requests > 0 {
		s = blob.WithRequests(s, requests)
	}
	return Decorate(s, opts), nil
}

// takeRequests removes the setting every scheme shares, requests=N (how
// many requests to keep in flight against the store), from u's query and
// returns it; 0 when absent.
func takeRequests(u *url.URL) (int, error) {
	q := u.Query()
	v, ok := q["requests"]
	if !ok {
		return 0, nil
	}
	if len(v) > 1 {
		return 0, fmt.Errorf("%s: setting \"requests\" is given %d times; give it once", u.Scheme, len(v))
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > blob.MaxRequests {
		return 0, fmt.Errorf("%s: setting requests=%q is not a number from 1 to %d (how many requests to keep in flight; default %d for an object store, %d for a local folder)",
			u.Scheme, v[0], blob.MaxRequests, blob.RemoteRequests, blob.LocalRequests)
	}
	q.Del("requests")
	u.RawQuery = q.Encode()
	return n, nil
}

// Decorate adds what Open adds to a store a provider opened directly.
func Decorate(s blob.Store, opts Options) blob.Store {
	return blob.NewRetrying(blob.NewCounting(s), opts.Retry)
}

// Parse checks that rawURL is a repository URL of a scheme r opens. A bare
// absolute path is taken as a file URL.
func (r Registry) Parse(rawURL string) (*url.URL, error) {
	if strings.HasPrefix(rawURL, "/") {
		rawURL = "file://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("repository URL %q does not parse: %v", Redact(rawURL), err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("repository URL %q has no scheme; use one of %s (for example file:///srv/backups)", Redact(rawURL), strings.Join(r.schemeExamples(), ", "))
	}
	if _, ok := r[u.Scheme]; !ok {
		return nil, fmt.Errorf("repository URL scheme %q is not supported; use one of %s", u.Scheme, strings.Join(r.schemeExamples(), ", "))
	}
	return u, nil
}

func (r Registry) schemeExamples() []string {
	var out []string
	for _, s := range r.Schemes() {
		out = append(out, s+"://")
	}
	return out
}

// secretParams are query settings that could carry secrets if a user put
// them in a URL; Redact hides their values.
var secretParams = []string{"secret", "secret_access_key", "access_key_id", "session_token", "account_key", "key", "sig", "token", "password", "connection_string"}

// Redact returns rawURL fit for logs and errors: user info and any
// secret-looking query values replaced by "REDACTED".
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	q := u.Query()
	changed := false
	for k := range q {
		if slices.Contains(secretParams, strings.ToLower(k)) {
			q.Set(k, "REDACTED")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
