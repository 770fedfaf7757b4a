package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
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

// toAPIError maps a domain error to its HTTP status, once, for every route.
func toAPIError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, repo.ErrSnapshotMissing), errors.Is(err, recovery.ErrNoCheckpoint),
		errors.Is(err, replication.ErrUnknownTarget), errors.Is(err, errNoSuchGraph), errors.Is(err, errNoSuchJob),
		errors.Is(err, repo.ErrUnknownGraph), errors.Is(err, repo.ErrNotARepository):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, repo.ErrConfigLost):
		status, code = http.StatusInternalServerError, "config_lost"
	case errors.Is(err, repo.ErrPasswordNeeded), errors.Is(err, repo.ErrWrongPassword):
		status, code = http.StatusInternalServerError, "password"
	case errors.Is(err, retention.ErrPinned), errors.Is(err, replication.ErrTargetExists), errors.Is(err, repo.ErrAlreadyExists),
		errors.Is(err, repo.ErrLeaseBusy), errors.Is(err, blob.ErrExists), errors.Is(err, recovery.ErrBlocked):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, replication.ErrForeignTarget), errors.Is(err, replication.ErrTargetNotReady),
		errors.Is(err, retention.ErrEmptyPolicy), errors.Is(err, backup.ErrUnstable), errors.Is(err, backup.ErrUnsafePath),
		errors.Is(err, backup.ErrNotAGraph):
		status, code = http.StatusUnprocessableEntity, "unprocessable"
	case errors.Is(err, repo.ErrNotGood):
		status, code = http.StatusConflict, "not_good"
		return &Error{Status: status, Code: code, Message: err.Error() + ` (to restore such a snapshot, name its id and send {"allow_flagged": true})`}
	case errors.Is(err, blob.ErrUnavailable):
		status, code = http.StatusServiceUnavailable, "storage_unavailable"
	case errors.Is(err, blob.ErrPermission):
		status, code = http.StatusBadGateway, "storage_permission"
	case errors.Is(err, repo.ErrCorrupt):
		status, code = http.StatusInternalServerError, "corrupt"
	}
	return &Error{Status: status, Code: code, Message: err.Error()}
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
