// Package problem is how core says what went wrong without speaking any
// front end's language: an error carries a Kind (what sort of failure, from
// which the API takes its HTTP status and the CLI its wording), a machine
// Code, the Object involved and a neutral Remedy. The CLI renders a remedy
// as flags and commands, the API as request fields and routes; core never
// names either.
//
// Sentinels are *Error values too, so errors.Is keeps working through
// fmt.Errorf("...: %w", sentinel) and errors.As finds the kind.
package problem

import (
	"context"
	"errors"
	"fmt"

	"github.com/graphkeep/graphkeep/blob"
)

// Kind is the sort of failure.
type Kind string

// The kinds. Each front end maps every kind once (api: HTTP status; cmd:
// exit code and wording).
const (
	Internal    Kind = "internal"    // a bug or an unclassified failure
	Invalid     Kind = "invalid"     // the request or configuration is wrong
	NotFound    Kind = "not_found"   // the object does not exist
	Conflict    Kind = "conflict"    // the object exists or is busy or pinned
	NeedsForce  Kind = "needs_force" // refused unless the caller insists
	Unreachable Kind = "unreachable" // the storage does not answer
	Denied      Kind = "denied"      // the storage refuses our credentials
	Credentials Kind = "credentials" // the repository password is missing or wrong
	Damaged     Kind = "damaged"     // stored data is corrupt or lost
)

// Remedy is what would help, named neutrally.
type Remedy string

// The remedies. A front end renders each in its own words (cmd/graphkeep's
// errors.go, api/errors.go); an unknown remedy is rendered as nothing.
const (
	NoRemedy           Remedy = ""
	GiveRepository     Remedy = "give_repository"   // configure the repository's location
	CreateRepository   Remedy = "create_repository" // initialise a repository at the location
	CreateLocation     Remedy = "create_location"   // create the folder or bucket first
	CopyConfig         Remedy = "copy_config"       // copy the config object from a replica, or fail over
	FailOver           Remedy = "fail_over"         // promote a replica
	Force              Remedy = "force"             // repeat with force
	ForceOrNewDest     Remedy = "force_or_new_destination"
	AllowNotGood       Remedy = "allow_not_good"       // name the snapshot by id and allow a flagged one
	AllowOutsideLinks  Remedy = "allow_outside_links"  // allow symlinks that point outside the destination
	GivePassword       Remedy = "give_password"        // supply the repository password
	AddRetentionRule   Remedy = "add_retention_rule"   // a policy needs at least one keep rule
	ListSnapshots      Remedy = "list_snapshots"       // see the graph's snapshots
	ListCheckpoints    Remedy = "list_checkpoints"     // see the checkpoints
	CreateCheckpoint   Remedy = "create_checkpoint"    // create a checkpoint
	BackUp             Remedy = "back_up"              // back the graph up
	ValidateCheckpoint Remedy = "validate_checkpoint"  // validate the checkpoint
	AddTarget          Remedy = "add_target"           // register a replication target
	RemoveTarget       Remedy = "remove_target"        // unregister the target
	Replicate          Remedy = "replicate"            // fill the target by replication
	ReplicateOrForce   Remedy = "replicate_or_force"   // catch the target up, or insist
	SetGraphsRoot      Remedy = "set_graphs_root"      // configure where graphs live
	GiveTargetURL      Remedy = "give_target_url"      // name the target by URL
	Upgrade            Remedy = "upgrade"              // use a newer graphkeep
	RemoveDamaged      Remedy = "remove_damaged"       // forget the damaged snapshots after a look
	RestoreFromReplica Remedy = "restore_from_replica" // restore from a replica, or back up again
)

// Error is a failure with its kind, code, object and remedy.
type Error struct {
	Kind   Kind
	Code   string // machine code: "not_good", "config_lost", ...; defaults to Kind
	Object string // the graph, snapshot, target, checkpoint or key involved
	Remedy Remedy
	Msg    string
	Err    error // the cause, if any
}

// New makes a sentinel-style error.
func New(kind Kind, code, msg string) *Error {
	return &Error{Kind: kind, Code: code, Msg: msg}
}

// Errorf makes an error of kind about object, with a remedy.
func Errorf(kind Kind, remedy Remedy, object, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Remedy: remedy, Object: object, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// With returns a copy of e naming object and remedy: a sentinel specialised
// for one failure. errors.Is(copy, e) holds.
func (e *Error) With(object string, remedy Remedy) *Error {
	c := *e
	c.Object, c.Remedy, c.Err = object, remedy, e
	return &c
}

// Error implements error.
func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// CodeOrKind is the machine code, or the kind when none was set.
func (e *Error) CodeOrKind() string {
	if e.Code != "" {
		return e.Code
	}
	return string(e.Kind)
}

// Of returns the outermost *Error in err's chain, and the remedy and object
// of the outermost one that names them (an outer error may add a remedy to
// an inner sentinel).
func Of(err error) (*Error, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return nil, false
	}
	out := *e
	for cur := error(e); cur != nil; cur = errors.Unwrap(cur) {
		if pe, ok := cur.(*Error); ok {
			if out.Remedy == NoRemedy {
				out.Remedy = pe.Remedy
			}
			if out.Object == "" {
				out.Object = pe.Object
			}
			if out.Code == "" {
				out.Code = pe.Code
			}
		}
	}
	return &out, true
}

// KindOf is err's kind. Storage errors take theirs from blob's sentinels;
// a deadline is Unreachable; anything else without a kind is Internal.
func KindOf(err error) Kind {
	if e, ok := Of(err); ok {
		return e.Kind
	}
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return NotFound
	case errors.Is(err, blob.ErrExists):
		return Conflict
	case errors.Is(err, blob.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return Unreachable
	case errors.Is(err, blob.ErrPermission):
		return Denied
	case errors.Is(err, blob.ErrInvalid):
		return Invalid
	}
	return Internal
}

// CodeOf is err's machine code: its own, else a storage code, else its
// kind.
func CodeOf(err error) string {
	if e, ok := Of(err); ok {
		return e.CodeOrKind()
	}
	switch {
	case errors.Is(err, blob.ErrUnavailable):
		return "storage_unavailable"
	case errors.Is(err, blob.ErrPermission):
		return "storage_permission"
	}
	return string(KindOf(err))
}

// RemedyOf is the remedy err carries, if any.
func RemedyOf(err error) (Remedy, string) {
	if e, ok := Of(err); ok {
		return e.Remedy, e.Object
	}
	return NoRemedy, ""
}
