package blob

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Retention keeps an object from being deleted or overwritten until Until:
// S3 Object Lock (and, in time, GCS object retention and Azure
// immutability policies). A store that cannot lock fails a Put that asks
// for it with ErrUnsupported, so nothing is ever written unprotected by
// mistake.
//
// On S3 a lock protects versions: in a locked (hence versioned) bucket a
// plain DELETE still succeeds by adding a delete marker, and a PUT over a
// locked key adds a version on top, but no one can delete or change the
// locked version itself until Until (in governance mode, only callers
// allowed to bypass governance retention can).
type Retention struct {
	Mode  string    // Governance or Compliance
	Until time.Time // the object may be deleted from then on
}

// Retention modes.
const (
	// Governance: callers with the bypass permission may still delete.
	Governance = "governance"
	// Compliance: nobody may delete or shorten it, the account's root
	// included, until it lapses.
	Compliance = "compliance"
)

// ErrUnsupported: the store cannot do what was asked (lock objects).
var ErrUnsupported = errors.New("not supported by this store")

// Validate checks the mode and that Until lies ahead.
func (r Retention) Validate(now time.Time) error {
	if r.Mode != Governance && r.Mode != Compliance {
		return fmt.Errorf("%w: retention mode %q: use %s or %s", ErrInvalid, r.Mode, Governance, Compliance)
	}
	if !r.Until.After(now) {
		return fmt.Errorf("%w: retention until %s lies in the past", ErrInvalid, r.Until.Format(time.RFC3339))
	}
	return nil
}

// Locker is a Store that can lock objects.
type Locker interface {
	Store
	// LockEnabled reports whether the bucket can lock objects at all (S3:
	// created with object lock enabled).
	LockEnabled(ctx context.Context) (bool, error)
	// DefaultRetention is the lock the bucket puts on every new object by
	// itself (mode "" when none).
	DefaultRetention(ctx context.Context) (mode string, d time.Duration, err error)
	// Retention returns key's retention; a zero Retention when it has none.
	Retention(ctx context.Context, key string) (Retention, error)
	// Retain sets key's retention to r: it extends a lock, and a store
	// refuses to shorten one (compliance) or needs the bypass permission
	// (governance).
	Retain(ctx context.Context, key string, r Retention) error
}

// LockerOf finds the Locker under s's decorators.
func LockerOf(s Store) (Locker, bool) { return Find[Locker](s) }

// LockProbe remembers whether a location can lock objects, so a store asks
// once, not before every locked write. A failed question is not
// remembered: the next write asks again.
type LockProbe struct {
	mu        sync.Mutex
	known, on bool
}

// Enabled returns the remembered answer, or asks with ask.
func (p *LockProbe) Enabled(ctx context.Context, ask func(context.Context) (bool, error)) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.known {
		on, err := ask(ctx)
		if err != nil {
			return false, err
		}
		p.known, p.on = true, on
	}
	return p.on, nil
}
