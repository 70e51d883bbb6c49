package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/store"
)

// pkceChallenge matches an S256 code challenge: 32 bytes, base64url, no padding.
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authRequest is a validated authorization request.
type authRequest struct {
	ClientID      string   `json:"c"`
	RedirectURI   string   `json:"r"`
	State         string   `json:"s,omitempty"`
	CodeChallenge string   `json:"p"`
	Scopes        []string `json:"o"`
	Resource      string   `json:"t"`
	Expires       int64    `json:"e,omitempty"`
}

// authorizeParams are the parameters of RFC 6749 §4.1.1, RFC 7636 and
// RFC 8707 that must not repeat (RFC 6749 §3.1).
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge", "code_challenge_method", "resource"}

// parseAuthorize validates an authorization request. A non-nil pageErr
// must be shown to the user (the client or redirect URI cannot be trusted);
// a non-nil redirErr is sent to req.RedirectURI.
func (s *Server) parseAuthorize(ctx context.Context, q url.Values) (req authRequest, client store.Client, pageErr, redirErr *Error) {
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(q[k]) > 1 {
			return req, client, oauthErr(ErrCodeInvalidRequest, k+" is repeated"), nil
		}
	}
	req.ClientID = q.Get("client_id")
	if req.ClientID == "" {
		return req, client, oauthErr(ErrCodeInvalidRequest, "client_id is required"), nil
	}
	c, err := s.lookupClient(ctx, req.ClientID)
	switch {
	case errors.Is(err, errCIMD):
		s.log.InfoContext(ctx, "auth: client metadata document refused", "client_id", req.ClientID, "err", err)
		return req, client, oauthErr(ErrCodeInvalidClient, "the client's metadata document cannot be used: "+strings.TrimPrefix(err.Error(), errCIMD.Error()+": ")), nil
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		return req, client, oauthErr(ErrCodeInvalidClient, "this client is not registered (or its registration expired); reconnect it to register again"), nil
	case err != nil:
		s.log.ErrorContext(ctx, "auth: load client", "client_id", req.ClientID, "err", err)
		return req, client, &Error{Code: ErrCodeServerError, Description: "cannot load the client", Status: http.StatusInternalServerError}, nil
	}
	client = c
	requested, given := q.Get("redirect_uri"), q.Has("redirect_uri")
	switch {
	case !given && len(c.RedirectURIs) == 1:
		req.RedirectURI = c.RedirectURIs[0]
	case !given:
		return req, client, oauthErr(ErrCodeInvalidRequest, "redirect_uri is required: this client registered several"), nil
	default:
		if !slices.ContainsFunc(c.RedirectURIs, func(reg string) bool { return matchRedirectURI(reg, requested) }) {
			return req, client, oauthErr(ErrCodeInvalidRequest, "redirect_uri is not one of this client's registered redirect URIs"), nil
		}
		req.RedirectURI = requested
	}

	// From here on, errors go back to the client.
	req.State = q.Get("state")
	for _, k := range authorizeParams {
		if len(q[k]) > 1 {
			req.State = ""
			return req, client, nil, oauthErr(ErrCodeInvalidRequest, k+" is repeated")
		}
	}
	if len(req.State) > maxStateLen {
		req.State = ""
		return req, client, nil, oauthErr(ErrCodeInvalidRequest, "state is longer than 2048 bytes")
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		return req, client, nil, oauthErr(ErrCodeInvalidRequest, "response_type is required")
	case rt != "code":
		return req, client, nil, oauthErr(ErrCodeUnsupportedResponseType, `response_type must be "code"`)
	}
	if !slices.Contains(c.GrantTypes, grantAuthCode) {
		return req, client, nil, oauthErr(ErrCodeUnauthorizedClient, "this client is not registered for the authorization_code grant")
	}
	switch m := q.Get("code_challenge_method"); {
	case !q.Has("code_challenge"):
		return req, client, nil, oauthErr(ErrCodeInvalidRequest, "code_challenge is required (PKCE)")
	case m == "":
		return req, client, nil, oauthErr(ErrCodeInvalidRequest, "code_challenge_method is required and must be S256")
	case m != "S256":
		return req, client, nil, oauthErr(ErrCodeInvalidRequest, "code_challenge_method must be S256")
	case !pkceChallenge.MatchString(q.Get("code_challenge")):
		return req, client, nil, oauthErr(ErrCodeInvalidRequest, "code_challenge must be 43 base64url characters")
	}
	req.CodeChallenge = q.Get("code_challenge")
	if q.Has("resource") {
		r, ok := s.canonicalResource(q.Get("resource"))
		if !ok {
			return req, client, nil, oauthErr(ErrCodeInvalidTarget, "resource must be this server's MCP endpoint")
		}
		req.Resource = r
	} else {
		req.Resource = s.MCPResource()
	}
	scopes, e := s.requestedScopes(q.Get("scope"), q.Has("scope"), c.Scope)
	if e != nil {
		return req, client, nil, e
	}
	req.Scopes = scopes
	return req, client, nil, nil
}

// requestedScopes validates a scope parameter against what we support and
// what the client registered; absent, it defaults to the client's scopes
// or all we support.
func (s *Server) requestedScopes(raw string, given bool, clientScope string) ([]string, *Error) {
	allowed := s.cfg.Scopes
	if clientScope != "" {
		allowed = strings.Split(clientScope, " ")
	}
	if !given {
		return slices.Clone(allowed), nil
	}
	var out []string
	for _, sc := range strings.Split(raw, " ") {
		if sc == "" {
			continue
		}
		if !slices.Contains(allowed, sc) {
			return nil, oauthErr(ErrCodeInvalidScope, "scope "+quoteScope(sc)+" is not supported")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, oauthErr(ErrCodeInvalidScope, "scope is empty")
	}
	return out, nil
}

func quoteScope(s string) string {
	if len(s) > 64 || !validScopeToken(s) {
		return "(invalid)"
	}
	return `"` + s + `"`
}

// handleAuthorize validates the authorization request, then either shows
// the consent page or, when this browser already approved the client,
// continues to the upstream sign-in.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		renderError(w, oauthErr(ErrCodeInvalidRequest, "the query string is malformed"))
		return
	}
	req, client, pageErr, redirErr := s.parseAuthorize(r.Context(), q)
	if pageErr != nil {
		renderError(w, pageErr)
		return
	}
	if redirErr != nil {
		s.redirectError(w, r, req, redirErr)
		return
	}
	s.touchClient(r.Context(), client)
	browser := s.browserID(w, r)
	if s.hasConsent(r, browser, client) {
		s.startUpstream(w, r, req, browser)
		return
	}
	s.renderConsent(w, req, client, browser)
}

func (s *Server) renderConsent(w http.ResponseWriter, req authRequest, c store.Client, browser string) {
	req.Expires = s.cfg.Now().Add(s.cfg.PendingTTL).Unix()
	blob, _ := json.Marshal(req) // plain strings: cannot fail
	enc := base64.RawURLEncoding.EncodeToString(blob)
	name := c.Name
	if name == "" {
		name = "An unnamed client"
	}
	kind, _ := checkRedirectURI(req.RedirectURI)
	setPageHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = consentPage.Execute(w, consentData{
		ClientName:    name,
		ClientID:      c.ID,
		ClientURI:     c.URI,
		ServerName:    s.cfg.ResourceName,
		RedirectHost:  redirectHost(req.RedirectURI),
		LoopbackOnly:  allLoopback(c.RedirectURIs),
		PrivateScheme: kind == redirectPrivate,
		Scopes:        req.Scopes,
		Request:       enc,
		CSRF:          s.keys.sign("consent form", browser, enc),
	})
}

// handleConsent takes the consent form: it checks the CSRF token (bound to
// this browser and to the exact request shown), re-validates the request
// and either refuses (access_denied) or remembers the approval and
// continues to the upstream sign-in.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderError(w, oauthErr(ErrCodeInvalidRequest, "the form is malformed"))
		return
	}
	enc, csrf, action := r.PostForm.Get("request"), r.PostForm.Get("csrf_token"), r.PostForm.Get("action")
	browser := s.browserCookie(r)
	if browser == "" || csrf == "" || !s.keys.verify(csrf, "consent form", browser, enc) {
		renderError(w, &Error{Code: ErrCodeAccessDenied, Description: "the form's CSRF token is missing or invalid; start connecting the client again", Status: http.StatusForbidden})
		return
	}
	blob, err := base64.RawURLEncoding.DecodeString(enc)
	var req authRequest
	if err == nil {
		err = json.Unmarshal(blob, &req)
	}
	if err != nil {
		renderError(w, oauthErr(ErrCodeInvalidRequest, "the form is malformed"))
		return
	}
	if s.cfg.Now().Unix() > req.Expires {
		renderError(w, oauthErr(ErrCodeInvalidRequest, "this page has expired; start connecting the client again"))
		return
	}
	// The client may have been deleted, or its redirect URIs changed,
	// since the page was shown.
	req2, client, pageErr, redirErr := s.parseAuthorize(r.Context(), req.values())
	if pageErr != nil {
		renderError(w, pageErr)
		return
	}
	if redirErr != nil {
		s.redirectError(w, r, req2, redirErr)
		return
	}
	switch action {
	case "approve":
		s.rememberConsent(w, r, browser, client)
		s.startUpstream(w, r, req2, browser)
	case "deny":
		s.log.InfoContext(r.Context(), "auth: consent denied", "client_id", req2.ClientID)
		s.redirectError(w, r, req2, oauthErr(ErrCodeAccessDenied, "the user denied the request"))
	default:
		renderError(w, oauthErr(ErrCodeInvalidRequest, "action must be approve or deny"))
	}
}

// values turns a validated request back into query parameters, so the
// consent form is re-validated by the same code as /authorize.
func (req authRequest) values() url.Values {
	v := url.Values{
		"client_id":             {req.ClientID},
		"redirect_uri":          {req.RedirectURI},
		"response_type":         {"code"},
		"code_challenge":        {req.CodeChallenge},
		"code_challenge_method": {"S256"},
		"resource":              {req.Resource},
		"scope":                 {strings.Join(req.Scopes, " ")},
	}
	if req.State != "" {
		v.Set("state", req.State)
	}
	return v
}

// startUpstream parks the request as a pending authorization keyed by the
// hash of a fresh single-use state, bound to this browser, and sends the
// browser to the upstream sign-in with our own PKCE challenge.
func (s *Server) startUpstream(w http.ResponseWriter, r *http.Request, req authRequest, browser string) {
	ctx := r.Context()
	state, verifier := store.NewSecret(), store.NewSecret()
	stateHash := store.HashSecret(state)
	now := s.cfg.Now().UTC()
	p := store.PendingAuthorization{
		StateHash:            stateHash,
		ClientID:             req.ClientID,
		RedirectURI:          req.RedirectURI,
		ClientState:          req.State,
		CodeChallenge:        req.CodeChallenge,
		CodeChallengeMethod:  "S256",
		Scopes:               req.Scopes,
		Resource:             req.Resource,
		UpstreamCodeVerifier: base64.RawURLEncoding.EncodeToString(s.keys.encrypt(verifier, stateHash)),
		BrowserBinding:       store.HashSecret(browser),
		CreatedAt:            now,
		ExpiresAt:            now.Add(s.cfg.PendingTTL),
	}
	if err := s.st.CreatePendingAuthorization(ctx, p); err != nil {
		s.log.ErrorContext(ctx, "auth: store pending authorization", "client_id", req.ClientID, "err", err)
		s.redirectError(w, r, req, &Error{Code: ErrCodeServerError, Description: "cannot start the sign-in"})
		return
	}
	target, err := s.up.AuthorizationURL(ctx, authkit.AuthorizeParams{
		RedirectURI:   s.issuer + PathCallback,
		State:         state,
		CodeChallenge: s256(verifier),
	})
	if err != nil {
		s.log.ErrorContext(ctx, "auth: upstream authorization url", "err", err)
		s.redirectError(w, r, req, &Error{Code: ErrCodeServerError, Description: "cannot start the sign-in"})
		return
	}
	seeOther(w, r, target)
}

// handleCallback completes the upstream sign-in: it consumes the pending
// authorization named by state (single use, this browser only), redeems
// the upstream code, stores the grant, and redirects to the client with
// our own authorization code.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || len(q["state"]) > 1 || len(q["code"]) > 1 {
		renderError(w, oauthErr(ErrCodeInvalidRequest, "the callback query is malformed"))
		return
	}
	state := q.Get("state")
	if state == "" {
		renderError(w, oauthErr(ErrCodeInvalidRequest, "the callback has no state"))
		return
	}
	p, err := s.st.ConsumePendingAuthorization(ctx, store.HashSecret(state))
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		renderError(w, oauthErr(ErrCodeInvalidRequest, "this sign-in is unknown or has expired; start connecting the client again"))
		return
	case errors.Is(err, store.ErrAlreadyUsed):
		s.log.WarnContext(ctx, "auth: callback state replayed", "client_id", p.ClientID)
		renderError(w, oauthErr(ErrCodeInvalidRequest, "this sign-in was already completed"))
		return
	case err != nil:
		s.log.ErrorContext(ctx, "auth: consume pending authorization", "err", err)
		renderError(w, &Error{Code: ErrCodeServerError, Description: "cannot complete the sign-in", Status: http.StatusInternalServerError})
		return
	}
	browser := s.browserCookie(r)
	if browser == "" || !constantTimeEqual(store.HashSecret(browser), p.BrowserBinding) {
		s.log.WarnContext(ctx, "auth: callback from another browser", "client_id", p.ClientID)
		renderError(w, oauthErr(ErrCodeInvalidRequest, "this sign-in was started in another browser"))
		return
	}
	req := authRequest{ClientID: p.ClientID, RedirectURI: p.RedirectURI, State: p.ClientState, CodeChallenge: p.CodeChallenge, Scopes: p.Scopes, Resource: p.Resource}
	if q.Has("error") {
		s.log.InfoContext(ctx, "auth: upstream sign-in refused", "client_id", p.ClientID, "upstream_error", safeCode(q.Get("error")))
		s.redirectError(w, r, req, oauthErr(ErrCodeAccessDenied, "the sign-in was cancelled or refused"))
		return
	}
	code := q.Get("code")
	if code == "" {
		s.redirectError(w, r, req, oauthErr(ErrCodeServerError, "the identity provider returned no code"))
		return
	}
	ct, err := base64.RawURLEncoding.DecodeString(p.UpstreamCodeVerifier)
	verifier := ""
	if err == nil {
		verifier, err = s.keys.decrypt(ct, p.StateHash)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "auth: read upstream pkce verifier", "err", err)
		s.redirectError(w, r, req, oauthErr(ErrCodeServerError, "cannot complete the sign-in"))
		return
	}
	id, err := s.up.ExchangeCode(ctx, code, verifier)
	if err != nil {
		s.log.WarnContext(ctx, "auth: upstream code exchange failed", "client_id", p.ClientID, "err", err)
		e := oauthErr(ErrCodeServerError, "the identity provider did not accept the sign-in")
		switch {
		case errors.Is(err, authkit.ErrUpstreamGrantInvalid):
			e = oauthErr(ErrCodeAccessDenied, "the sign-in expired or was refused; try again")
		case errors.Is(err, authkit.ErrUpstreamUnavailable):
			e = oauthErr(ErrCodeTemporarilyUnavailable, "the identity provider is unavailable; try again later")
		}
		s.redirectError(w, r, req, e)
		return
	}
	code, e := s.issueCode(ctx, p, id)
	if e != nil {
		s.redirectError(w, r, req, e)
		return
	}
	s.log.InfoContext(ctx, "auth: user signed in", "client_id", p.ClientID, "user_id", id.UserID, "organization_id", id.OrganizationID)
	s.redirect(w, r, req, url.Values{"code": {code}})
}

// issueCode stores the grant for a completed sign-in and one authorization
// code for it, and returns the code.
//
// The grant is pending until the code is exchanged: it expires with the
// code, and the exchange (exchangeCode) extends it to the full
// Config.RefreshTokenTTL atomically with issuing the tokens. A code that
// is never exchanged (an abandoned flow, a lost redirect, a crash between
// the two writes below, a stolen code without its PKCE verifier) so takes
// the grant, and the upstream session sealed in it, with it after
// Config.CodeTTL instead of leaving it stored for the refresh lifetime.
func (s *Server) issueCode(ctx context.Context, p store.PendingAuthorization, id authkit.Identity) (string, *Error) {
	now := s.cfg.Now().UTC()
	codeExpiresAt := now.Add(s.cfg.CodeTTL)
	g := store.Grant{
		ID:                store.NewID(),
		ClientID:          p.ClientID,
		UserID:            id.UserID,
		Email:             id.Email,
		OrganizationID:    id.OrganizationID,
		Role:              id.Role,
		Permissions:       nonNil(id.Permissions),
		Scopes:            p.Scopes,
		Resource:          p.Resource,
		UpstreamSessionID: id.SessionID,
		UpstreamExpiresAt: id.AccessTokenExpiry,
		CreatedAt:         now,
		UpdatedAt:         now,
		ExpiresAt:         codeExpiresAt,
	}
	g.UpstreamRefreshToken = s.keys.encrypt(id.RefreshToken, g.ID)
	if err := s.st.CreateGrant(ctx, g); err != nil {
		s.log.ErrorContext(ctx, "auth: store grant", "client_id", p.ClientID, "err", err)
		if errors.Is(err, store.ErrNotFound) {
			return "", oauthErr(ErrCodeAccessDenied, "the client was deleted during sign-in")
		}
		return "", oauthErr(ErrCodeServerError, "cannot store the authorization")
	}
	code := newCode(g.ID)
	err := s.st.CreateAuthCode(ctx, store.AuthCode{
		CodeHash:            store.HashSecret(code),
		GrantID:             g.ID,
		ClientID:            p.ClientID,
		RedirectURI:         p.RedirectURI,
		CodeChallenge:       p.CodeChallenge,
		CodeChallengeMethod: p.CodeChallengeMethod,
		Scopes:              p.Scopes,
		Resource:            p.Resource,
		CreatedAt:           now,
		ExpiresAt:           codeExpiresAt,
	})
	if err != nil {
		s.log.ErrorContext(ctx, "auth: store authorization code", "grant_id", g.ID, "err", err)
		_ = s.st.RevokeGrant(ctx, g.ID)
		return "", oauthErr(ErrCodeServerError, "cannot store the authorization")
	}
	return code, nil
}

// redirectError sends an RFC 6749 §4.1.2.1 error to the client's validated
// redirect URI.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, req authRequest, e *Error) {
	v := url.Values{"error": {e.Code}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	s.redirect(w, r, req, v)
}

// redirect sends the browser to the client's redirect URI with params,
// the client's state and our issuer (RFC 9207).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, req authRequest, params url.Values) {
	u, err := url.Parse(req.RedirectURI)
	if err != nil { // validated at registration and at /authorize
		renderError(w, oauthErr(ErrCodeInvalidRequest, "the redirect URI is malformed"))
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	seeOther(w, r, u.String())
}

// browserCookie returns this browser's id from its cookie, or "".
func (s *Server) browserCookie(r *http.Request) string {
	c, err := r.Cookie(s.cookieName(cookieBrowser))
	if err != nil || len(c.Value) != 43 {
		return ""
	}
	return c.Value
}

// browserID returns this browser's id, setting the cookie when it has none.
// The id only binds forms and sign-ins to the browser; it grants nothing.
func (s *Server) browserID(w http.ResponseWriter, r *http.Request) string {
	if id := s.browserCookie(r); id != "" {
		return id
	}
	id := store.NewSecret()
	s.setCookie(w, cookieBrowser, id, s.cfg.ConsentTTL)
	return id
}

func (s *Server) cookieName(name string) string {
	if s.secure {
		return "__Host-" + name
	}
	return name
}

// setCookie sets a host-only, HttpOnly, SameSite=Lax cookie on path /;
// over https it is Secure with the __Host- prefix.
func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(name),
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		Secure:   s.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// safeCode returns an upstream error code fit for a log line.
func safeCode(c string) string {
	if len(c) > 64 || !validScopeToken(c) {
		return "(invalid)"
	}
	return c
}
