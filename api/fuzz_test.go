package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// postRoutes are the routes that take a request body, with real ids.
var postRoutes = []string{
	"/backup/graphs/g1/snapshots",
	"/backup/graphs/g1/snapshots/latest/restore",
	"/backup/graphs/g1/snapshots/latest/verify",
	"/backup/cleanup",
	"/replication/targets",
	"/replication/sync",
	"/recovery/checkpoints",
	"/recovery/checkpoints/latest/validate",
	"/recovery/checkpoints/latest/failover",
}

// FuzzRequestBodies: whatever body a client sends to any route that takes
// one, the answer comes in time and is either the one error shape with a
// 4xx status, or a job; never a 5xx, a panic or a hang.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"to": "x"}`, `{"policy": {"keep_last": 1}}`, `{"policy": {}}`,
		`{"id": "t", "url": "mem://x"}`, `{"graphs": ["g1"]}`, `{"target": "../x"}`, `{"read_data": "yes"}`,
		`{"to": "\u0000"}`, `{"dry_run": true, "prune": false}`, `{"a":1}{"b":2}`, "\xff\xfe", `{"to": "` + strings.Repeat("a", 5000) + `"}`,
	} {
		for i := range postRoutes {
			f.Add(uint8(i), seed)
		}
	}
	srv := newServer(f, false)
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		path := postRoutes[int(route)%len(postRoutes)]
		req, err := http.NewRequest("POST", srv.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s %q: %v", path, body, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, resp.StatusCode, data)
		}
		var answer struct {
			Error *struct{ Code, Message string } `json:"error"`
			ID    string                          `json:"id"`
		}
		if err := json.Unmarshal(data, &answer); err != nil {
			t.Fatalf("POST %s %q: %d, not JSON: %s", path, body, resp.StatusCode, data)
		}
		switch {
		case resp.StatusCode >= 400 && (answer.Error == nil || answer.Error.Code == "" || answer.Error.Message == ""):
			t.Fatalf("POST %s %q: %d without the error shape: %s", path, body, resp.StatusCode, data)
		case resp.StatusCode < 400 && answer.ID == "":
			t.Fatalf("POST %s %q: %d is neither an error nor a job: %s", path, body, resp.StatusCode, data)
		}
	})
}
