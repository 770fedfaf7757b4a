package api

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/go-chi/chi/v5"
)

// The dashboard is a static page and one small script of our own, served
// from the binary: no build step, nothing fetched from elsewhere. It holds
// no data and no logic of its own: it reads and acts through the same
// routes as any API client, with the token the user signs in with (kept in
// the tab's session storage and sent as a bearer header).
//
//go:embed ui/*.html ui/*.js ui/*.css ui/*.svg
var uiFiles embed.FS

// dashboardPolicy lets the page load only its own script, style and API;
// no inline code, no frames, no forms posted anywhere.
const dashboardPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func uiAsset(name string) ([]byte, bool) {
	b, err := fs.ReadFile(uiFiles, path.Join("ui", name))
	return b, err == nil
}

// dashboard serves the page at /.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	page, _ := uiAsset("index.html")
	writeAsset(w, "index.html", page)
}

// dashboardAsset serves /ui/{asset}: the script, the style sheet, the icon.
func (s *Server) dashboardAsset(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "asset")
	b, ok := uiAsset(name)
	if !ok || strings.Contains(name, "/") || name == "index.html" {
		writeError(w, r, errNotFound("no such dashboard file: %s", name))
		return
	}
	writeAsset(w, name, b)
}

func writeAsset(w http.ResponseWriter, name string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	h.Set("Content-Security-Policy", dashboardPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// Session is what the caller's token may do: the dashboard asks it before
// anything else, to sign in or to show or hide actions (the routes check
// the role whatever the page shows). It is open, so asking never fails.
type Session struct {
	// Role is "admin" or "read"; "" when the request's token was missing or
	// not accepted; "admin" without tokens (loopback only).
	Role string `json:"role"`
	// Tokens is false when the server runs without tokens on loopback.
	Tokens bool `json:"tokens"`
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	if !s.auth.enabled() {
		writeJSON(w, http.StatusOK, Session{Role: roleAdmin})
		return
	}
	writeJSON(w, http.StatusOK, Session{Role: s.auth.role(r), Tokens: true})
}
