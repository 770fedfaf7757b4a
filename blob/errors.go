package blob

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"gocloud.dev/gcerrors"
)

// Sentinels every Store error that callers act on wraps.
var (
	// ErrNotFound: the object (or the bucket) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a create-if-absent write found the key already present.
	ErrExists = errors.New("already exists")
	// ErrUnavailable: a transient failure (network, throttling, server
	// error); the same call may succeed later. Retrying stores retry these.
	ErrUnavailable = errors.New("storage unavailable")
	// ErrPermission: the credentials are missing, wrong, or not allowed to
	// do this.
	ErrPermission = errors.New("permission denied")
	// ErrInvalid: the request itself is wrong (a bad key, a bad range).
	ErrInvalid = errors.New("invalid request")
)

// Error is what a Store returns for a failed operation: the operation, the
// key, the category (one of the sentinels, or nil when unknown) and the
// provider's own error.
type Error struct {
	Op       string // "put", "get", "stat", "list", "delete", "copy"
	Location string // the store, as Store.Location says it
	Key      string
	Kind     error // a sentinel, or nil
	Err      error // the underlying error
}

func (e *Error) Error() string {
	what := e.Op
	if e.Key != "" {
		what += fmt.Sprintf(" %q", e.Key)
	}
	if e.Kind != nil {
		return fmt.Sprintf("%s: %s: %v: %v", e.Location, what, e.Kind, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Location, what, e.Err)
}

// Unwrap lets errors.Is see both the category and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// Classifier maps a provider error to one of the sentinels, or returns nil
// when it does not know the error. Providers pass one in Options to teach
// the layer codes gocloud leaves as Unknown (for example S3's
// InvalidAccessKeyId).
type Classifier func(error) error

// classify maps err to a sentinel: first the provider's classifier, then
// gocloud's error codes, then network errors.
func classify(err error, extra Classifier) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// A caller's own cancellation or deadline is not a storage fault.
		return nil
	}
	if extra != nil {
		if kind := extra(err); kind != nil {
			return kind
		}
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return ErrNotFound
	case gcerrors.AlreadyExists, gcerrors.FailedPrecondition:
		return ErrExists
	case gcerrors.PermissionDenied:
		return ErrPermission
	case gcerrors.InvalidArgument:
		return ErrInvalid
	case gcerrors.ResourceExhausted, gcerrors.Internal, gcerrors.DeadlineExceeded:
		return ErrUnavailable
	}
	return classifyNetwork(err)
}

// classifyNetwork recognises failures to reach a server at all.
func classifyNetwork(err error) error {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		return ErrUnavailable
	case errors.As(err, &netErr) && netErr.Timeout():
		return ErrUnavailable
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT):
		return ErrUnavailable
	}
	return nil
}

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool {
	return errors.Is(err, ErrUnavailable)
}

// Reason returns a short cause of err for one-line messages: the network
// failure when there is one ("connect: connection refused"), else the
// provider's own message.
func Reason(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Op + ": " + opErr.Err.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	var be *Error
	if errors.As(err, &be) && be.Err != nil {
		return be.Err.Error()
	}
	return err.Error()
}
