package api

import (
	"net/http"
	"strconv"
	"strings"
)

// Operation documents one route. The table below is the single source of
// the OpenAPI document; a test checks it against the router both ways.
type Operation struct {
	Method, Path, Summary string
	// Role is the least role the route needs: "" (read), "backup" or
	// "admin".
	Role string
	// Destructive routes take data away; an append-only server refuses
	// them whatever the token.
	Destructive bool
	Body        map[string]string // field -> JSON type
	Job         bool              // answers 202 with a job (201 with ?wait=true)
	Success     int
	Open        bool // no token needed
}

// Operations lists every route the API serves.
func Operations() []Operation { return append([]Operation(nil), operations...) }

var operations = []Operation{
	{Method: "POST", Path: "/backup/graphs/{graph}/snapshots", Summary: "Back up a graph", Role: "backup", Job: true},
	{Method: "GET", Path: "/backup/graphs/{graph}/snapshots", Summary: "List a graph's snapshots", Success: 200},
	{Method: "GET", Path: "/backup/graphs/{graph}/snapshots/{snapshot}", Summary: "A snapshot: summary, totals, files, LightRAG counts", Success: 200},
	{Method: "DELETE", Path: "/backup/graphs/{graph}/snapshots/{snapshot}", Summary: "Forget a snapshot (409 when a checkpoint pins it)", Role: "admin", Destructive: true, Success: 204},
	{Method: "POST", Path: "/backup/graphs/{graph}/snapshots/{snapshot}/restore", Summary: "Restore a snapshot (into the graph's directory, or \"to\" inside the graphs or restore root; a graph in PostgreSQL into its workspace, or \"to_workspace\", one transaction; \"dry_run\" says what would change)", Role: "admin", Job: true,
		Body: map[string]string{"to": "string", "to_workspace": "string", "dry_run": "boolean", "force": "boolean", "allow_flagged": "boolean", "allow_outside_links": "boolean"}},
	{Method: "POST", Path: "/backup/graphs/{graph}/snapshots/{snapshot}/verify", Summary: "Verify a snapshot's chunks", Role: "backup", Job: true, Body: map[string]string{"read_data": "boolean"}},
	{Method: "POST", Path: "/backup/cleanup", Summary: "Apply retention, then prune unreferenced chunks", Role: "admin", Destructive: true, Job: true,
		Body: map[string]string{"policy": "object", "graph": "string", "dry_run": "boolean", "prune": "boolean"}},
	{Method: "GET", Path: "/backup/stats", Summary: "Repository statistics (?list=true lists chunks for the stored size)", Success: 200},
	{Method: "POST", Path: "/replication/targets", Summary: "Register a replication target", Role: "admin", Success: 201,
		Body: map[string]string{"id": "string", "url": "string", "graphs": "array", "mirror_deletes": "boolean", "lock": "object"}},
	{Method: "GET", Path: "/replication/targets", Summary: "List targets with status and lag", Success: 200},
	{Method: "GET", Path: "/replication/targets/{target}/health", Summary: "Probe a target now and show its health", Success: 200},
	{Method: "DELETE", Path: "/replication/targets/{target}", Summary: "Remove a target (its bucket is left as it is)", Role: "admin", Destructive: true, Success: 204},
	{Method: "GET", Path: "/replication/graphs/{graph}/status", Summary: "Which targets hold the graph's latest snapshot", Success: 200},
	{Method: "POST", Path: "/replication/sync", Summary: "Replicate now", Role: "backup", Job: true, Body: map[string]string{"target": "string", "graph": "string"}},
	{Method: "POST", Path: "/recovery/checkpoints", Summary: "Snapshot graphs and write a checkpoint", Role: "backup", Job: true, Body: map[string]string{"graphs": "array", "note": "string"}},
	{Method: "GET", Path: "/recovery/checkpoints", Summary: "List checkpoints with their last validation", Success: 200},
	{Method: "GET", Path: "/recovery/checkpoints/{checkpoint}", Summary: "A checkpoint (id or latest)", Success: 200},
	{Method: "POST", Path: "/recovery/checkpoints/{checkpoint}/validate", Summary: "Validate a checkpoint on the primary and every target", Role: "backup", Job: true, Body: map[string]string{"read_data": "boolean"}},
	{Method: "POST", Path: "/recovery/checkpoints/{checkpoint}/failover", Summary: "Promote a target to primary with this checkpoint", Role: "admin", Destructive: true, Job: true,
		Body: map[string]string{"target": "string", "restore": "boolean", "dry_run": "boolean", "force": "boolean"}},
	{Method: "GET", Path: "/recovery/health", Summary: "HEALTHY / DEGRADED / CRITICAL with reasons (cached 10s; ?refresh=true)", Success: 200},
	{Method: "GET", Path: "/recovery/status", Summary: "Latest checkpoint, RPO per location, failover history", Success: 200},
	{Method: "GET", Path: "/graphs", Summary: "Graphs with their newest snapshot", Success: 200},
	{Method: "GET", Path: "/graphs/{graph}", Summary: "One graph", Success: 200},
	{Method: "GET", Path: "/jobs", Summary: "This instance's jobs, newest first", Success: 200},
	{Method: "GET", Path: "/jobs/{job}", Summary: "A job: state, progress, result or error", Success: 200},
	{Method: "DELETE", Path: "/jobs/{job}", Summary: "Cancel a job", Role: "admin", Success: 202},
	{Method: "GET", Path: "/session", Summary: "Whether the server wants a token, and the role of the one sent (\"\" when none or not accepted)", Success: 200, Open: true},
	{Method: "GET", Path: "/", Summary: "The dashboard (a page; it signs in with a token and calls these routes)", Success: 200, Open: true},
	{Method: "GET", Path: "/ui/{asset}", Summary: "The dashboard's script and style sheet", Success: 200, Open: true},
	{Method: "GET", Path: "/healthz", Summary: "Liveness", Success: 200, Open: true},
	{Method: "GET", Path: "/readyz", Summary: "Readiness: the primary answers", Success: 200, Open: true},
	{Method: "GET", Path: "/metrics", Summary: "Prometheus metrics", Success: 200},
	{Method: "GET", Path: "/openapi.json", Summary: "This document", Success: 200, Open: true},
}

// openapi builds the OpenAPI 3 document from the table.
func openapi() map[string]any {
	paths := map[string]any{}
	for _, op := range operations {
		item, _ := paths[op.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[op.Path] = item
		}
		var params []any
		for _, seg := range strings.Split(op.Path, "/") {
			if strings.HasPrefix(seg, "{") {
				params = append(params, map[string]any{"name": strings.Trim(seg, "{}"), "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		responses := map[string]any{"default": map[string]any{"$ref": "#/components/responses/Error"}}
		if op.Job {
			params = append(params, map[string]any{"name": "wait", "in": "query", "schema": map[string]any{"type": "boolean"},
				"description": "block until the job ends"})
			responses["202"] = map[string]any{"description": "job started", "content": jsonContent("#/components/schemas/Job")}
			responses["201"] = map[string]any{"description": "job finished (with wait=true)", "content": jsonContent("#/components/schemas/Job")}
		} else {
			responses[itoa(op.Success)] = map[string]any{"description": op.Summary}
		}
		o := map[string]any{"summary": op.Summary, "responses": responses, "parameters": params}
		if op.Open {
			o["security"] = []any{}
		}
		switch {
		case op.Role == roleAdmin && op.Destructive:
			o["description"] = "Needs an admin token; refused by an append-only server."
		case op.Role == roleAdmin:
			o["description"] = "Needs an admin token."
		case op.Role == roleBackup:
			o["description"] = "Needs a backup or admin token."
		}
		if op.Body != nil {
			props := map[string]any{}
			for field, typ := range op.Body {
				props[field] = map[string]any{"type": typ}
			}
			o["requestBody"] = map[string]any{"content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"type": "object", "additionalProperties": false, "properties": props}}}}
		}
		item[strings.ToLower(op.Method)] = o
	}
	return map[string]any{
		"openapi":  "3.0.3",
		"info":     map[string]any{"title": "graphkeep", "version": "1", "description": "Backup, replication and recovery of knowledge-graph workspaces."},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"responses":       map[string]any{"Error": map[string]any{"description": "error", "content": jsonContent("#/components/schemas/Error")}},
			"schemas": map[string]any{
				"Error": map[string]any{"type": "object", "properties": map[string]any{"error": map[string]any{"type": "object",
					"properties": map[string]any{"code": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}, "request_id": map[string]any{"type": "string"}}}}},
				"Job": map[string]any{"type": "object", "properties": map[string]any{
					"id": map[string]any{"type": "string"}, "kind": map[string]any{"type": "string"},
					"state":    map[string]any{"type": "string", "enum": []string{JobQueued, JobRunning, JobSucceeded, JobFailed, JobCancelled}},
					"progress": map[string]any{"type": "object"}, "result": map[string]any{}, "error": map[string]any{"type": "object"}}},
			},
		},
	}
}

func jsonContent(ref string) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": ref}}}
}

func itoa(n int) string {
	if n == 0 {
		n = http.StatusOK
	}
	return strconv.Itoa(n)
}

func (s *Server) openapiDoc(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, openapi())
}
