package repo

import (
	"time"

	"golang.org/x/sys/unix"
)

// KernelKeyring is a KeyCache in the Linux kernel's keyring of the user
// running graphkeep (as cryptsetup and ecryptfs keep theirs): entries never
// reach a disk, only that user (and root) can read them, and each expires
// ttl after it was stored, however often it is used. Where the kernel
// refuses keyrings (a container's seccomp profile), it caches nothing.
func KernelKeyring(ttl time.Duration) KeyCache {
	if ttl < time.Second {
		return nil
	}
	return kernelKeyring{ttl: ttl}
}

type kernelKeyring struct{ ttl time.Duration }

// keyPerm: everything for a process possessing the key, and view, read,
// write and search for the user's other processes (the user keyring is
// not possessed by every session, cron's and systemd's for example).
const keyPerm = 0x3f0f0000

func (k kernelKeyring) Load(name string) ([]byte, bool) {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", name, 0)
	if err != nil {
		return nil, false // absent, expired, or no keyring here
	}
	buf := make([]byte, 256)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil || n > len(buf) {
		return nil, false
	}
	return buf[:n], true
}

func (k kernelKeyring) Store(name string, value []byte) {
	// Made in this process's keyring, then linked into the user's once its
	// expiry is set: a process killed in between leaves nothing that lasts.
	id, err := unix.AddKey("user", name, value, unix.KEY_SPEC_PROCESS_KEYRING)
	if err != nil {
		return
	}
	defer unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_PROCESS_KEYRING, 0, 0)
	crashAt("key-cached")
	if _, err := unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, id, int(k.ttl/time.Second), 0, 0); err != nil {
		return
	}
	if err := unix.KeyctlSetperm(id, keyPerm); err != nil {
		return
	}
	// Linking displaces an entry of the same name (an older derivation).
	_, _ = unix.KeyctlInt(unix.KEYCTL_LINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0)
}
