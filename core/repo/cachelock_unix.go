//go:build unix

package repo

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockIndex holds an exclusive lock on the kept index across processes
// sharing the cache until the returned function is called. Where the lock
// cannot be had it goes on unlocked: a lost update of the index costs
// speed, never correctness.
func (c *Cache) lockIndex() (unlock func()) {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return func() {}
	}
	f, err := os.OpenFile(filepath.Join(c.dir, "index.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return func() {}
	}
	return func() { _ = f.Close() } // closing releases the lock
}
