package api

import "time"

// SetBodyTimeout changes how long a request body may take (tests).
func SetBodyTimeout(d time.Duration) (restore func()) {
	old := bodyTimeout
	bodyTimeout = d
	return func() { bodyTimeout = old }
}

// MetricsOf returns the metrics a server exports (tests).
func MetricsOf(s *Server) *Metrics { return s.m }
