// Package monitoring holds what an operator loads into Prometheus and
// Grafana to watch graphkeep: alerting rules over the series graphkeep
// serve's /metrics exports, and a dashboard over the same series. The
// binary prints them (graphkeep monitoring rules|grafana); tests check them
// with promtool and against a real scrape.
package monitoring

import _ "embed"

//go:embed rules.yml
var rules []byte

//go:embed grafana.json
var grafana []byte

// Rules returns the Prometheus alerting rules (YAML).
func Rules() []byte { return append([]byte(nil), rules...) }

// Grafana returns the Grafana dashboard (JSON).
func Grafana() []byte { return append([]byte(nil), grafana...) }
