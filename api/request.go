package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/graphkeep/graphkeep/core/repo"
)

// maxBody bounds request bodies: every request the API takes is small.
const maxBody = 1 << 20

// bodyTimeout is how long a request body may take to arrive.
var bodyTimeout = 10 * time.Second

// decode reads the JSON body into v strictly: unknown fields, trailing
// data and wrong types are 400s that name the field. An empty body leaves v
// as it is (every body field is optional or checked by the handler).
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	// A body trickled in must not hold a connection (and a handler) for
	// long: the whole body is due within bodyTimeout.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		var netErr net.Error
		switch {
		case errors.As(err, &tooBig):
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("request body over %d bytes", maxBody)}
		case errors.As(err, &netErr) && netErr.Timeout():
			w.Header().Set("Connection", "close") // what is left of the body is never read
			return &Error{Status: http.StatusRequestTimeout, Code: "body_timeout", Message: fmt.Sprintf("the request body did not arrive within %s", bodyTimeout)}
		}
		return errBadRequest("read body: %v", err)
	}
	_ = rc.SetReadDeadline(time.Time{}) // the body is in: long answers (?wait=true) are fine
	if !utf8.Valid(data) {
		return errBadRequest("the request body is not valid UTF-8")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "send application/json"}
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			return errBadRequest("field %q must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
		case errors.As(err, &syntaxErr):
			return errBadRequest("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errBadRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return errBadRequest("malformed JSON: %v", err)
	}
	if dec.More() {
		return errBadRequest("trailing data after the JSON body")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errBadRequest("trailing data after the JSON body")
	}
	return nil
}

// validParams checks every path parameter by its name before a handler
// sees it: graph, target and job ids have one form, snapshot and
// checkpoint ids another (or "latest"). Traversal, NUL and unicode tricks
// never match.
func (s *Server) validParams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.RouteContext(r.Context())
		for i, key := range rctx.URLParams.Keys {
			val := rctx.URLParams.Values[i]
			if val == "" {
				continue // a later route level fills it in
			}
			if !utf8.ValidString(val) {
				writeError(w, r, errBadRequest("%s is not valid UTF-8", key))
				return
			}
			switch key {
			case "snapshot", "checkpoint":
				if val != "latest" && !repo.ValidSnapshotID(val) {
					writeError(w, r, errBadRequest("%s %q is invalid: want the form 20261127T150405Z-k3f7qa (or latest)", key, val))
					return
				}
			default:
				if !repo.ValidID(val) {
					writeError(w, r, errBadRequest("%s %q is invalid: use 1 to 64 letters, digits, '_' or '-'", key, val))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// checkIDs refuses request-body fields that must be ids ("" is allowed:
// optional fields).
func checkIDs(fields map[string][]string) error {
	for field, values := range fields {
		for _, v := range values {
			if v != "" && !repo.ValidID(v) {
				return errBadRequest("field %q: %q is invalid: use 1 to 64 letters, digits, '_' or '-'", field, v)
			}
		}
	}
	return nil
}
