// Package apitest holds what the API's handler tests and the end-to-end
// server tests share.
package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Call sends method path (with a JSON body when body is not empty, and a
// bearer token when token is not empty) to the server at baseURL, decodes a
// JSON answer into out when out is not nil, and returns the status code.
func Call(t testing.TB, baseURL, token, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, baseURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: not JSON (%v): %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}
