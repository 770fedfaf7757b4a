package repo

import (
	"sync/atomic"
	"testing"
)

// CountDerivations counts the passwords derived until the test ends.
func CountDerivations(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	saved := scryptKey
	scryptKey = func(password, salt []byte, N, r, p, keyLen int) ([]byte, error) {
		n.Add(1)
		return saved(password, salt, N, r, p, keyLen)
	}
	t.Cleanup(func() { scryptKey = saved })
	return &n
}
