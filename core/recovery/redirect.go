package recovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Redirects persist failovers on this machine: a primary URL that failed
// over maps to the URL that replaced it, so every later command (and the
// server) given the old URL uses the new primary. They live in a small
// JSON file in the state directory.

// Redirect is one switch as this machine remembers it.
type Redirect struct {
	To     string    `json:"to"`
	RepoID string    `json:"repo_id"`
	Time   time.Time `json:"time"`
}

func redirectsFile(dir string) string { return filepath.Join(dir, "primary-redirects.json") }

func loadRedirects(dir string) (map[string]Redirect, error) {
	data, err := os.ReadFile(redirectsFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Redirect{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]Redirect{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s is damaged: %v (delete it to forget recorded failovers)", redirectsFile(dir), err)
	}
	return m, nil
}

// SaveRedirect records that from failed over to to. A redirect away from
// to (an earlier failover the other way) is dropped, so failing back never
// makes a loop.
func SaveRedirect(dir, from, to, repoID string) error {
	m, err := loadRedirects(dir)
	if err != nil {
		return err
	}
	delete(m, to)
	m[from] = Redirect{To: to, RepoID: repoID, Time: time.Now().UTC()}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := redirectsFile(dir) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, redirectsFile(dir))
}

// Resolve follows the redirects recorded for url and returns where the
// primary is now; the last Redirect followed is returned when any was.
func Resolve(dir, url string) (string, *Redirect, error) {
	m, err := loadRedirects(dir)
	if err != nil {
		return url, nil, err
	}
	var last *Redirect
	seen := map[string]bool{url: true}
	for {
		r, ok := m[url]
		if !ok || seen[r.To] {
			return url, last, nil
		}
		seen[r.To] = true
		url, last = r.To, &r
	}
}
