package repo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"golang.org/x/crypto/scrypt"
)

// KeyCache remembers, between processes, the keys derived from passwords
// (scrypt's output, the key that unwraps the master keys), so commands run
// one after another do not each pay the derivation: a tenth of a second of
// CPU and 32 MiB, most of what a no-change backup costs. Nil caches nothing.
//
// An entry is named by the salt and cost it was derived with (public, in
// the config) and holds the derived key with a check of the password, so a
// wrong password never opens a repository through the cache: it derives as
// before and fails. Only keys that unwrapped master keys, or that were just
// made to wrap them, are stored.
type KeyCache interface {
	// Load returns the value stored under name, if any.
	Load(name string) ([]byte, bool)
	// Store keeps value under name, replacing what was there; a cache that
	// cannot keep it forgets it.
	Store(name string, value []byte)
}

// InjectFaults is for the binary's fault-injection tests: crash is called
// at each crash point ("key-cached": a derived key is made, not yet in the
// user's keyring; "compacting" and "compacted": a pack's compacted form is
// made, and it has replaced the pack; a test kills the process there).
// Nil: none.
func InjectFaults(crash func(point string)) { crashHook = crash }

var crashHook func(point string)

func crashAt(point string) {
	if crashHook != nil {
		crashHook(point)
	}
}

// kekSize is the size of a key-encryption key and of its password check.
const kekSize = 32

// deriveKEK derives the key-encryption key of password with salt and p,
// from kc when it holds one made from the same password.
func deriveKEK(password string, salt []byte, p KDFParams, kc KeyCache) (kek []byte, cached bool, err error) {
	if kc != nil {
		name := kekName(salt, p)
		if v, ok := kc.Load(name); ok && len(v) == 2*kekSize {
			kek, check := v[:kekSize], v[kekSize:]
			if hmac.Equal(check, passwordCheck(kek, password)) {
				return kek, true, nil
			}
		}
	}
	kek, err = scryptKey([]byte(password), salt, p.N, p.R, p.P, kekSize)
	return kek, false, err
}

// scryptKey derives keys (a variable so tests can count derivations).
var scryptKey = scrypt.Key

// rememberKEK stores kek, derived from password with salt and p, in kc.
func rememberKEK(kc KeyCache, password string, salt []byte, p KDFParams, kek []byte) {
	if kc == nil {
		return
	}
	kc.Store(kekName(salt, p), append(append(make([]byte, 0, 2*kekSize), kek...), passwordCheck(kek, password)...))
}

// kekName names the cache entry of a salt and cost: a digest, so the name
// stays short whatever the salt.
func kekName(salt []byte, p KDFParams) string {
	h := sha256.New()
	h.Write([]byte("graphkeep kek v1\x00"))
	var cost [24]byte
	binary.LittleEndian.PutUint64(cost[0:], uint64(p.N))
	binary.LittleEndian.PutUint64(cost[8:], uint64(p.R))
	binary.LittleEndian.PutUint64(cost[16:], uint64(p.P))
	h.Write(cost[:])
	h.Write(salt)
	return "graphkeep:kek:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// passwordCheck ties a cached key to the password it was derived from.
func passwordCheck(kek []byte, password string) []byte {
	m := hmac.New(sha256.New, kek)
	m.Write([]byte("graphkeep password check v1\x00"))
	m.Write([]byte(password))
	return m.Sum(nil)
}
