package api

import "time"

// SetBodyTimeout changes how long a request body may take (tests).
func SetBodyTimeout(d time.Duration) (restore func()) {
	old := bodyTimeout
	bodyTimeout = d
	return func() { bodyTimeout = old }
}
