package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/graphkeep/graphkeep/core/problem"
)

// Error is the one error shape: {"error":{"code","message"}}.
type Error struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

func (e *Error) Error() string { return e.Message }

func errBadRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

// ErrorCode is the code the API gives err ("internal" when it has no
// kind); the CLI's --json errors use the same codes.
func ErrorCode(err error) string { return toAPIError(err).Code }

// statusOf is the HTTP status of each kind of failure, in one place.
var statusOf = map[problem.Kind]int{
	problem.Internal:    http.StatusInternalServerError,
	problem.Invalid:     http.StatusUnprocessableEntity,
	problem.NotFound:    http.StatusNotFound,
	problem.Conflict:    http.StatusConflict,
	problem.NeedsForce:  http.StatusConflict,
	problem.Unreachable: http.StatusServiceUnavailable,
	problem.Denied:      http.StatusBadGateway,
	problem.Credentials: http.StatusInternalServerError,
	problem.Damaged:     http.StatusInternalServerError,
}

// toAPIError maps a domain error to its status, code and message, with
// the remedy in the API's words.
func toAPIError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	status, ok := statusOf[problem.KindOf(err)]
	if !ok {
		status = http.StatusInternalServerError
	}
	msg := err.Error()
	remedy, object := problem.RemedyOf(err)
	if hint := remedyHint(remedy, object); hint != "" {
		msg += " (" + hint + ")"
	}
	return &Error{Status: status, Code: problem.CodeOf(err), Message: msg}
}

// remedyHint renders a neutral remedy as request fields and routes.
func remedyHint(r problem.Remedy, object string) string {
	switch r {
	case problem.AllowNotGood:
		return `to restore such a snapshot, name its id and send {"allow_flagged": true}`
	case problem.AllowOutsideLinks:
		return `POST /backup/graphs/{graph}/snapshots/{id}/verify lists such links; send {"allow_outside_links": true} to restore them anyway`
	case problem.Force, problem.ForceOrNewDest:
		return `send {"force": true} to go ahead anyway` + map[bool]string{true: `, or a new "to" directory`}[r == problem.ForceOrNewDest]
	case problem.AddRetentionRule:
		return `send a "policy" with at least one keep rule, or configure retention:`
	case problem.ListSnapshots:
		return "GET /backup/graphs/" + object + "/snapshots lists them"
	case problem.BackUp:
		return "POST /backup/graphs/" + object + "/snapshots backs it up"
	case problem.ListCheckpoints:
		return "GET /recovery/checkpoints lists them"
	case problem.CreateCheckpoint:
		return "POST /recovery/checkpoints creates one"
	case problem.ValidateCheckpoint:
		return "POST /recovery/checkpoints/" + object + "/validate"
	case problem.AddTarget:
		return "POST /replication/targets adds one; GET /replication/targets lists them"
	case problem.RemoveTarget:
		return "DELETE /replication/targets/" + object
	case problem.Replicate, problem.ReplicateOrForce:
		return `POST /replication/sync with {"target": "` + object + `"} fills it`
	case problem.CopyConfig:
		return "copy graphkeep.repo from a replica into the repository, or fail over to a replica"
	case problem.FailOver:
		return "POST /recovery/checkpoints/latest/failover promotes a replica"
	case problem.SetGraphsRoot:
		return "configure graphs_root (LightRAG's working_dir) or graphs: on the server"
	case problem.GivePassword:
		return "configure the repository password on the server"
	case problem.GiveRepository, problem.CreateRepository:
		return "configure the server's repository"
	case problem.RestoreFromReplica:
		return "restore the affected snapshots from a replica, or back up again"
	case problem.RemoveDamaged:
		return "DELETE the snapshots named in the result after a look"
	case problem.Upgrade:
		return "run a graphkeep release that supports it"
	}
	return ""
}

// writeError renders err in the one error shape.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	if e.Status >= 500 {
		e.RequestID = middleware.GetReqID(r.Context())
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
