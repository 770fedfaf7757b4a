//go:build !linux

package blob

import "os"

// StartWriteback is a no-op where sync_file_range does not exist.
func StartWriteback(*os.File, int64, int64) {}
