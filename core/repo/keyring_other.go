//go:build !linux

package repo

import "time"

// KernelKeyring caches nothing where there is no Linux kernel keyring.
func KernelKeyring(ttl time.Duration) KeyCache { return nil }
