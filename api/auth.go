package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Roles: read sees everything; backup may also add (snapshots,
// checkpoints, replication, verification) but never take away; admin may
// do everything.
const (
	roleRead   = "read"
	roleBackup = "backup"
	roleAdmin  = "admin"
)

// allows reports whether a token of role may use a route that needs need.
func allows(role, need string) bool {
	switch need {
	case roleRead:
		return role == roleRead || role == roleBackup || role == roleAdmin
	case roleBackup:
		return role == roleBackup || role == roleAdmin
	}
	return role == roleAdmin
}

// Token is one bearer token and its role. Tokens are never logged.
type Token struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
	Role  string `yaml:"role"`
}

type authenticator struct {
	tokens []hashedToken
}

type hashedToken struct {
	sum  [32]byte
	role string
}

func newAuthenticator(tokens []Token) *authenticator {
	a := &authenticator{}
	for _, t := range tokens {
		a.tokens = append(a.tokens, hashedToken{sum: sha256.Sum256([]byte(t.Token)), role: t.Role})
	}
	return a
}

// Enabled reports whether any token is configured.
func (a *authenticator) enabled() bool { return len(a.tokens) > 0 }

// role returns the role of the request's bearer token, or "".
func (a *authenticator) role(r *http.Request) string {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	role := ""
	for _, t := range a.tokens { // compare with every token, in constant time
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			role = t.role
		}
	}
	return role
}

// unauthorized says why a request without a role was refused: no token, a
// header of another form, or a token that is not one of the server's.
func unauthorized(r *http.Request) string {
	h := r.Header.Get("Authorization")
	switch token, ok := strings.CutPrefix(h, "Bearer "); {
	case h == "":
		return "no token sent: send Authorization: Bearer <token>"
	case !ok:
		return "the Authorization header is not of the form Bearer <token>"
	case strings.TrimSpace(token) == "":
		return "the Authorization header holds an empty token: send Authorization: Bearer <token>"
	}
	return "the token was not accepted: it is none of this server's tokens (check for a typo, a stray space or newline, or a token rotated since)"
}

// require lets a request through when its token has the role (admin
// includes read). Without tokens configured everything is allowed: the
// server then listens on loopback only.
func (a *authenticator) require(need string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !a.enabled() {
				next.ServeHTTP(w, r)
				return
			}
			switch role := a.role(r); {
			case role == "":
				w.Header().Set("WWW-Authenticate", `Bearer realm="graphkeep"`)
				writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: unauthorized(r)})
			case !allows(role, need):
				msg := "this needs an admin token"
				if need == roleBackup {
					msg = "this needs a backup or admin token"
				}
				writeError(w, r, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: msg})
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}
