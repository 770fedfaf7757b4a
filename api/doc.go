// Package api is graphkeep's HTTP face: the chi router, handlers, auth, jobs,
// OpenAPI, metrics and the embedded dashboard. It depends on core, never the
// other way round.
package api
