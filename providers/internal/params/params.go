// Package params reads the settings of a repository URL's query string for
// the providers, rejecting the ones a provider does not know.
package params

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Query is a URL's settings, consumed one by one.
type Query struct {
	scheme string
	values url.Values
}

// Parse checks that every setting in u's query is one of known and appears
// once. The error names the unknown settings and lists the known ones.
func Parse(u *url.URL, known ...string) (*Query, error) {
	values := u.Query()
	var unknown []string
	for k, v := range values {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
			continue
		}
		if len(v) > 1 {
			return nil, fmt.Errorf("%s: setting %q is given %d times; give it once", u.Scheme, k, len(v))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		// requests=N is every provider's (see providers.Open).
		allowed := strings.Join(append(slices.Clone(known), "requests"), ", ")
		return nil, fmt.Errorf("%s: unknown setting(s) %s in the repository URL; known settings: %s",
			u.Scheme, strings.Join(unknown, ", "), allowed)
	}
	return &Query{scheme: u.Scheme, values: values}, nil
}

// String returns the setting's value, or "".
func (q *Query) String(key string) string { return q.values.Get(key) }

// Bool returns the setting as a boolean; absent is false.
func (q *Query) Bool(key string) (bool, error) {
	v := q.values.Get(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: setting %s=%q is not a boolean; use true or false", q.scheme, key, v)
	}
	return b, nil
}

// BucketAndPrefix splits a URL's host and path into a bucket (or container)
// name and a key prefix without leading or trailing slashes.
func BucketAndPrefix(u *url.URL) (bucket, prefix string, err error) {
	if u.User != nil {
		return "", "", fmt.Errorf("%s: the repository URL must not carry credentials; give them through the environment or the provider configuration", u.Scheme)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("%s: the repository URL names no bucket; use %s://BUCKET/PREFIX", u.Scheme, u.Scheme)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

// WithSlash returns prefix + "/" for a non-empty prefix, "" otherwise: the
// form gocloud's PrefixedBucket wants.
func WithSlash(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}
