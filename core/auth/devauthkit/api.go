package devauthkit

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// maxAPIBody caps JSON and form request bodies of the API endpoints.
const maxAPIBody = 64 << 10

// pkceVerifier matches an RFC 7636 code_verifier.
var pkceVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// authenticateRequest is the body of POST /user_management/authenticate as
// workos-go sends it (JSON), or as a form.
type authenticateRequest struct {
	ClientID       string `json:"client_id"`
	ClientSecret   string `json:"client_secret"`
	GrantType      string `json:"grant_type"`
	Code           string `json:"code"`
	CodeVerifier   string `json:"code_verifier"`
	RefreshToken   string `json:"refresh_token"`
	OrganizationID string `json:"organization_id"`
	IPAddress      string `json:"ip_address"`
	UserAgent      string `json:"user_agent"`
}

// apiError is a WorkOS/OAuth-shaped error body.
type apiError struct {
	status      int
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
	Code        string `json:"code,omitempty"`
	Message     string `json:"message,omitempty"`
}

func oauthError(status int, code, desc string) *apiError {
	return &apiError{status: status, Error: code, Description: desc}
}

// parseAuthenticateRequest decodes the authenticate body by content type.
func parseAuthenticateRequest(contentType string, body []byte) (authenticateRequest, *apiError) {
	var req authenticateRequest
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return req, oauthError(http.StatusBadRequest, "invalid_request", "Content-Type must be application/json or application/x-www-form-urlencoded.")
	}
	switch mt {
	case "application/json":
		if err := json.Unmarshal(body, &req); err != nil {
			return authenticateRequest{}, oauthError(http.StatusBadRequest, "invalid_request", "Malformed JSON body.")
		}
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return req, oauthError(http.StatusBadRequest, "invalid_request", "Malformed form body.")
		}
		for name, vals := range v {
			if len(vals) > 1 {
				return req, oauthError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("Parameter %q repeated.", name))
			}
		}
		req = authenticateRequest{
			ClientID:       v.Get("client_id"),
			ClientSecret:   v.Get("client_secret"),
			GrantType:      v.Get("grant_type"),
			Code:           v.Get("code"),
			CodeVerifier:   v.Get("code_verifier"),
			RefreshToken:   v.Get("refresh_token"),
			OrganizationID: v.Get("organization_id"),
			IPAddress:      v.Get("ip_address"),
			UserAgent:      v.Get("user_agent"),
		}
	default:
		return req, oauthError(http.StatusBadRequest, "invalid_request", "Content-Type must be application/json or application/x-www-form-urlencoded.")
	}
	return req, nil
}

// userObject is WorkOS's user object.
type userObject struct {
	Object            string            `json:"object"`
	ID                string            `json:"id"`
	Email             string            `json:"email"`
	FirstName         string            `json:"first_name"`
	LastName          string            `json:"last_name"`
	EmailVerified     bool              `json:"email_verified"`
	ProfilePictureURL *string           `json:"profile_picture_url"`
	LastSignInAt      string            `json:"last_sign_in_at"`
	ExternalID        *string           `json:"external_id"`
	Metadata          map[string]string `json:"metadata"`
	CreatedAt         string            `json:"created_at"`
	UpdatedAt         string            `json:"updated_at"`
}

// impersonator is WorkOS's impersonator object (never set here).
type impersonator struct {
	Email  string `json:"email"`
	Reason string `json:"reason"`
}

// authenticateResponse is WorkOS's authenticate response.
type authenticateResponse struct {
	User                 userObject    `json:"user"`
	OrganizationID       *string       `json:"organization_id"`
	AccessToken          string        `json:"access_token"`
	RefreshToken         string        `json:"refresh_token"`
	AuthenticationMethod string        `json:"authentication_method"`
	Impersonator         *impersonator `json:"impersonator"`
}

// authenticationMethod is what the dev login reports; a one-click dev login
// is passwordless, so it is reported like a magic-auth login.
const authenticationMethod = "MagicAuth"

func (s *Server) handleAuthenticate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, oauthError(http.StatusRequestEntityTooLarge, "invalid_request", "Request body too large."))
		return
	}
	req, aerr := parseAuthenticateRequest(r.Header.Get("Content-Type"), body)
	if aerr == nil {
		aerr = s.checkClient(req)
	}
	if aerr != nil {
		writeJSON(w, aerr.status, aerr)
		return
	}
	var res *authenticateResponse
	switch req.GrantType {
	case "authorization_code":
		res, aerr = s.grantCode(req)
	case "refresh_token":
		res, aerr = s.grantRefresh(req)
	case "":
		aerr = oauthError(http.StatusBadRequest, "invalid_request", "grant_type is required.")
	default:
		aerr = oauthError(http.StatusBadRequest, "unsupported_grant_type", "The development AuthKit supports authorization_code and refresh_token.")
	}
	if aerr != nil {
		writeJSON(w, aerr.status, aerr)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) checkClient(req authenticateRequest) *apiError {
	if req.ClientID != s.clientID {
		return oauthError(http.StatusUnauthorized, "invalid_client", "Invalid client ID.")
	}
	if subtle.ConstantTimeCompare([]byte(req.ClientSecret), []byte(s.apiKey)) != 1 {
		return oauthError(http.StatusUnauthorized, "invalid_client", "Invalid client secret.")
	}
	return nil
}

func (s *Server) grantCode(req authenticateRequest) (*authenticateResponse, *apiError) {
	if req.Code == "" {
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "code is required.")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[req.Code]
	// Single use: the code is gone whatever happens next.
	delete(s.codes, req.Code)
	if c == nil || !now.Before(c.expires) {
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "The code has expired or is invalid.")
	}
	if !pkceVerifier.MatchString(req.CodeVerifier) {
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "code_verifier is missing or malformed.")
	}
	sum := sha256.Sum256([]byte(req.CodeVerifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.codeChallenge)) != 1 {
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "PKCE verification failed: code_verifier does not match code_challenge.")
	}
	u := s.userByEmailLocked(c.email)
	if u == nil {
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "The user no longer exists.")
	}
	sess := &session{id: "session_" + randomID(), email: u.Email}
	s.sessions[sess.id] = sess
	return s.issueLocked(u, sess, now)
}

func (s *Server) grantRefresh(req authenticateRequest) (*authenticateResponse, *apiError) {
	if req.RefreshToken == "" {
		return nil, oauthError(http.StatusBadRequest, "invalid_request", "refresh_token is required.")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	rt := s.refresh[req.RefreshToken]
	// Single use: a refresh token is consumed by its first presentation.
	delete(s.refresh, req.RefreshToken)
	if rt == nil {
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "Refresh token is invalid, expired or already used.")
	}
	sess := s.sessions[rt.sessionID]
	if sess == nil {
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "Session has already ended.")
	}
	u := s.userByEmailLocked(sess.email)
	if u == nil {
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "The user no longer exists.")
	}
	if req.OrganizationID != "" && req.OrganizationID != u.orgID {
		return nil, oauthError(http.StatusBadRequest, "invalid_grant", "The user is not a member of the requested organization.")
	}
	return s.issueLocked(u, sess, now)
}

// issueLocked mints an access token and a refresh token for sess.
func (s *Server) issueLocked(u *user, sess *session, now time.Time) (*authenticateResponse, *apiError) {
	claims := map[string]any{
		"iss":         s.issuer,
		"sub":         u.id,
		"sid":         sess.id,
		"role":        u.Role,
		"roles":       []string{u.Role},
		"permissions": u.Permissions,
		"iat":         now.Unix(),
		"exp":         now.Add(s.accessTTL).Unix(),
		"jti":         randomID(),
	}
	var org *string
	if u.orgID != "" {
		claims["org_id"] = u.orgID
		org = &u.orgID
	}
	at, err := s.sign(claims)
	if err != nil {
		s.logger.Error("devauthkit: sign access token", "error", err)
		return nil, &apiError{status: http.StatusInternalServerError, Code: "server_error", Message: "Could not sign the access token."}
	}
	refresh := randomToken()
	s.refresh[refresh] = &refreshToken{sessionID: sess.id, expires: now.Add(refreshTokenTTL)}
	ts := now.UTC().Format("2006-01-02T15:04:05.000Z")
	return &authenticateResponse{
		User: userObject{
			Object:        "user",
			ID:            u.id,
			Email:         u.Email,
			FirstName:     u.FirstName,
			LastName:      u.LastName,
			EmailVerified: true,
			LastSignInAt:  ts,
			Metadata:      map[string]string{},
			CreatedAt:     "2025-01-01T00:00:00.000Z",
			UpdatedAt:     ts,
		},
		OrganizationID:       org,
		AccessToken:          at,
		RefreshToken:         refresh,
		AuthenticationMethod: authenticationMethod,
	}, nil
}

// sign returns an RS256 compact JWS of claims.
func (s *Server) sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.kid})
	if err != nil {
		return "", fmt.Errorf("marshal jwt header: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshal jwt claims: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign jwt: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("client_id") != s.clientID {
		writeJSON(w, http.StatusNotFound, &apiError{Code: "entity_not_found", Message: "Unknown client ID."})
		return
	}
	pub := &s.key.PublicKey
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"alg": "RS256",
		"kty": "RSA",
		"use": "sig",
		"kid": s.kid,
		"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(bigEndian(pub.E)),
	}}})
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	if !s.checkAPIKey(w, r) {
		return
	}
	var body struct {
		SessionID string `json:"session_id"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err := dec.Decode(&body); err != nil || body.SessionID == "" {
		writeJSON(w, http.StatusUnprocessableEntity, &apiError{Code: "invalid_request_parameters", Message: "session_id is required."})
		return
	}
	if !s.revoke(r.Context(), body.SessionID) {
		writeJSON(w, http.StatusNotFound, &apiError{Code: "entity_not_found", Message: "Session not found."})
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// revoke ends session sid and drops its refresh tokens, then delivers
// session.revoked (a failed delivery is logged: the session is ended
// either way, as at WorkOS). It reports whether the session existed.
func (s *Server) revoke(ctx context.Context, sid string) bool {
	s.mu.Lock()
	sess, ok := s.sessions[sid]
	if !ok {
		s.mu.Unlock()
		return false
	}
	u := s.userByEmailLocked(sess.email)
	s.revokeLocked(sid)
	s.mu.Unlock()
	if err := s.sessionRevoked(ctx, sess, u); err != nil {
		s.logger.Warn("devauthkit: webhook delivery failed", "event", "session.revoked", "err", err)
	}
	return true
}

// revokeLocked ends the existing session sid and drops its refresh tokens.
func (s *Server) revokeLocked(sid string) {
	delete(s.sessions, sid)
	for k, t := range s.refresh {
		if t.sessionID == sid {
			delete(s.refresh, k)
		}
	}
	s.logger.Info("devauthkit: session revoked", "session", sid)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"server_error","message":"Internal error."}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// randomID returns a 26-character random id in the style of WorkOS ids.
func randomID() string {
	return rand.Text()
}
