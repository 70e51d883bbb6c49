package auth

import (
	"encoding/json"
	"net/http"
)

// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1,
// RFC 7591 §3.2.2 and RFC 8707 §2 that this package answers with (and
// ErrCodeTooManyRequests, our own).
const (
	ErrCodeInvalidRequest          = "invalid_request"
	ErrCodeInvalidClient           = "invalid_client"
	ErrCodeInvalidGrant            = "invalid_grant"
	ErrCodeUnauthorizedClient      = "unauthorized_client"
	ErrCodeUnsupportedGrantType    = "unsupported_grant_type"
	ErrCodeUnsupportedResponseType = "unsupported_response_type"
	ErrCodeInvalidScope            = "invalid_scope"
	ErrCodeInvalidTarget           = "invalid_target"
	ErrCodeAccessDenied            = "access_denied"
	ErrCodeServerError             = "server_error"
	ErrCodeTemporarilyUnavailable  = "temporarily_unavailable"
	ErrCodeInvalidRedirectURI      = "invalid_redirect_uri"
	ErrCodeInvalidClientMetadata   = "invalid_client_metadata"
	ErrCodeInvalidToken            = "invalid_token"
)

// Error is an OAuth error answer: the error code, a human-readable
// description (never holding a secret) and the HTTP status it is sent
// with. Handlers build Errors; writeError is the one place that renders
// them.
type Error struct {
	// Code is the OAuth error code, such as "invalid_grant".
	Code string
	// Description is the error_description: ASCII, for developers.
	Description string
	// Status is the HTTP status; 400 when zero.
	Status int
	// basicChallenge makes writeError add WWW-Authenticate: Basic (a
	// failed client_secret_basic authentication, RFC 6749 §5.2).
	basicChallenge bool
	// retryAfter, when set, is sent as Retry-After (seconds).
	retryAfter string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

func (e *Error) status() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// oauthErr is shorthand for a 400 Error.
func oauthErr(code, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: http.StatusBadRequest}
}

// errorBody is the JSON error body of RFC 6749 §5.2 and RFC 7591 §3.2.2.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeError renders e as an RFC 6749 §5.2 / RFC 7591 §3.2.2 JSON body.
// Every such response is uncacheable.
func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	if e.basicChallenge {
		h.Set("WWW-Authenticate", `Basic realm="toolgate", charset="UTF-8"`)
	}
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	writeJSON(w, e.status(), errorBody{Error: e.Code, Description: e.Description})
}

// writeJSON writes v as JSON with Cache-Control: no-store.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own plain structs are marshalled; this cannot happen.
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
