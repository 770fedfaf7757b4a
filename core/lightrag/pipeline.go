package lightrag

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Pipeline is a LightRAG API server whose ingestion state a backup asks
// before it cuts a snapshot: GET {URL}/documents/pipeline_status answers
// {"busy": bool, ...}; busy false means no ingestion runs in the workspace.
type Pipeline struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:9621.
	URL string `json:"url" yaml:"url"`
	// APIKey, when set, is sent as X-API-Key (LightRAG's LIGHTRAG_API_KEY).
	APIKey string `json:"-" yaml:"-"`
	// Workspace, when set, is sent as LIGHTRAG-WORKSPACE, for servers that
	// serve several workspaces.
	Workspace string `json:"workspace,omitempty" yaml:"workspace"`
	// Client defaults to one with a 5 s timeout.
	Client *http.Client `json:"-" yaml:"-"`
}

// CheckURL reports whether u can be a Pipeline URL.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("LightRAG server URL %q is not an http(s) URL like http://127.0.0.1:9621", u)
	}
	return nil
}

// PipelineStatus is the part of LightRAG's answer a backup uses.
type PipelineStatus struct {
	Busy          bool   `json:"busy"`
	JobName       string `json:"job_name"`
	Docs          int    `json:"docs"`
	CurBatch      int    `json:"cur_batch"`
	LatestMessage string `json:"latest_message"`
}

// Status asks the server whether it is ingesting.
func (p *Pipeline) Status(ctx context.Context) (*PipelineStatus, error) {
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(p.URL, "/")+"/documents/pipeline_status", nil)
	if err != nil {
		return nil, fmt.Errorf("LightRAG pipeline status: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if p.APIKey != "" {
		req.Header.Set("X-API-Key", p.APIKey)
	}
	if p.Workspace != "" {
		req.Header.Set("LIGHTRAG-WORKSPACE", p.Workspace)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("LightRAG pipeline status at %s: %w", p.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("LightRAG pipeline status at %s: %w", p.URL, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("LightRAG pipeline status at %s: %s: the server wants its API key", p.URL, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("LightRAG pipeline status at %s: %s", p.URL, resp.Status)
	}
	var st PipelineStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("LightRAG pipeline status at %s: not the JSON LightRAG answers: %v", p.URL, err)
	}
	return &st, nil
}

// HasNames reports whether st carries the names the invariants compare for
// the file at rel (entries recorded by an older graphkeep do not).
func HasNames(rel string, st *FileStats) bool {
	switch collectFor(rel) {
	case collectNone:
		return true
	case collectGraph:
		return st != nil && st.Keys != nil && st.Pairs != nil
	case collectPairKeys, collectRelations:
		return st != nil && st.Pairs != nil
	case collectProcessed:
		return st != nil && st.Keys != nil && st.Unfinished != nil && st.Unfinished.Keys != nil
	}
	return st != nil && st.Keys != nil
}
