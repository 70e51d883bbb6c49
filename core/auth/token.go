package auth

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/store"
)

// tokenResponse is the RFC 6749 §5.1 success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// codeSeparator joins the grant id and the secret in our authorization
// codes: the token records the exchange stores must name their grant, and
// the grant id is bound to the code by the code's hash.
const codeSeparator = "."

// newCode returns an authorization code for grantID.
func newCode(grantID string) string { return grantID + codeSeparator + store.NewSecret() }

// readForm parses an application/x-www-form-urlencoded POST body of at most
// maxFormBytes and refuses repeated parameters (RFC 6749 §3.1, §3.2).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthErr(ErrCodeInvalidRequest, "the request body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Code: ErrCodeInvalidRequest, Description: "the request body is larger than 16 KiB", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, oauthErr(ErrCodeInvalidRequest, "the request body is malformed")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, oauthErr(ErrCodeInvalidRequest, "parameter "+quoteScope(k)+" is repeated")
		}
	}
	return r.PostForm, nil
}

// authenticateClient authenticates the client of a token or revocation
// request by its registered method: none (client_id only),
// client_secret_basic (RFC 6749 §2.3.1, form-encoded id and secret) or
// client_secret_post. Any mismatch is invalid_client with 401.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (store.Client, *Error) {
	fail := func(desc string, basic bool) (store.Client, *Error) {
		return store.Client{}, &Error{Code: ErrCodeInvalidClient, Description: desc, Status: http.StatusUnauthorized, basicChallenge: basic}
	}
	var id, secret, method string
	if user, pass, ok := r.BasicAuth(); ok {
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || id == "" {
			return fail("malformed client credentials in the Authorization header", true)
		}
		if form.Has("client_secret") {
			return store.Client{}, oauthErr(ErrCodeInvalidRequest, "use only one client authentication method")
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return fail("client_id does not match the Authorization header", true)
		}
		method = authBasic
	} else if r.Header.Get("Authorization") != "" {
		return fail("unsupported Authorization scheme; use Basic or client_id in the body", true)
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
		method = authNone
		if form.Has("client_secret") {
			method = authPost
		}
	}
	basic := method == authBasic
	if id == "" {
		return fail("client authentication is required: send client_id", basic)
	}
	c, err := s.lookupClient(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) || errors.Is(err, errCIMD):
		return fail("unknown client", basic)
	case err != nil:
		s.log.ErrorContext(ctx, "auth: load client", "client_id", id, "err", err)
		return store.Client{}, &Error{Code: ErrCodeServerError, Description: "cannot load the client", Status: http.StatusInternalServerError}
	}
	if c.TokenEndpointAuthMethod != method {
		return fail("this client must authenticate with "+c.TokenEndpointAuthMethod, basic)
	}
	if method != authNone {
		if !constantTimeEqual(store.HashSecret(secret), c.SecretHash) {
			return fail("invalid client secret", basic)
		}
		if !c.SecretExpiresAt.IsZero() && !s.cfg.Now().Before(c.SecretExpiresAt) {
			return fail("the client secret has expired", basic)
		}
	}
	return c, nil
}

// handleToken implements the token endpoint (RFC 6749 §3.2) for the
// authorization_code and refresh_token grants.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	client, e := s.authenticateClient(r.Context(), r, form)
	if e != nil {
		writeError(w, e)
		return
	}
	gt := form.Get("grant_type")
	switch gt {
	case "":
		writeError(w, oauthErr(ErrCodeInvalidRequest, "grant_type is required"))
		return
	case grantAuthCode, grantRefresh:
	default:
		writeError(w, oauthErr(ErrCodeUnsupportedGrantType, "grant_type must be authorization_code or refresh_token"))
		return
	}
	if !slices.Contains(client.GrantTypes, gt) {
		writeError(w, oauthErr(ErrCodeUnauthorizedClient, "this client is not registered for the "+gt+" grant"))
		return
	}
	var resp tokenResponse
	if gt == grantAuthCode {
		resp, e = s.exchangeCode(r.Context(), client, form)
	} else {
		resp, e = s.refresh(r.Context(), client, form)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	s.touchClient(r.Context(), client)
	writeJSON(w, http.StatusOK, resp)
}

// newTokens builds the token records for a grant and the response that
// hands their secrets to the client. upstreamExpiry is the expiry of the
// AuthKit access token behind the grant's identity (zero when unknown);
// see accessLifetime.
func (s *Server) newTokens(client store.Client, grantID string, scopes []string, resource string, upstreamExpiry time.Time) ([]store.Token, tokenResponse) {
	now := s.cfg.Now().UTC()
	lifetime := s.accessLifetime(now, upstreamExpiry)
	access := store.NewSecret()
	issue := []store.Token{{
		Hash: store.HashSecret(access), Kind: store.AccessToken, GrantID: grantID, ClientID: client.ID,
		Scopes: scopes, Resource: resource, CreatedAt: now, ExpiresAt: now.Add(lifetime),
	}}
	resp := tokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int64(lifetime / time.Second),
		Scope:       strings.Join(scopes, " "),
	}
	if slices.Contains(client.GrantTypes, grantRefresh) {
		refresh := store.NewSecret()
		resp.RefreshToken = refresh
		issue = append(issue, store.Token{
			Hash: store.HashSecret(refresh), Kind: store.RefreshToken, GrantID: grantID, ClientID: client.ID,
			Scopes: scopes, Resource: resource, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenTTL),
		})
	}
	return issue, resp
}

// accessLifetime is how long an access token issued at now lives:
// Config.AccessTokenTTL, but never past upstreamExpiry, the expiry of the
// AuthKit access token that vouched for the grant at its last sign-in or
// refresh. Our token then never vouches for the user longer than AuthKit
// itself does: once it expires the client must refresh, the refresh asks
// AuthKit again, and an ended AuthKit session or a changed permission takes
// effect. The lifetime is whole seconds, so expires_in states it exactly,
// and at least one second.
func (s *Server) accessLifetime(now, upstreamExpiry time.Time) time.Duration {
	d := s.cfg.AccessTokenTTL
	if !upstreamExpiry.IsZero() {
		d = min(d, upstreamExpiry.Sub(now))
	}
	return max(d.Truncate(time.Second), time.Second)
}

// exchangeCode redeems an authorization code (RFC 6749 §4.1.3, RFC 7636
// §4.6). The code is consumed atomically with storing the tokens; every
// check that needs the code record runs after that, and any failure then
// revokes the grant (the code, and so the grant, is burned). A replayed
// code revokes its grant and every token issued from it.
func (s *Server) exchangeCode(ctx context.Context, client store.Client, form url.Values) (tokenResponse, *Error) {
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" {
		return tokenResponse{}, oauthErr(ErrCodeInvalidRequest, "code is required")
	}
	if verifier == "" {
		return tokenResponse{}, oauthErr(ErrCodeInvalidRequest, "code_verifier is required (PKCE)")
	}
	if !validVerifier(verifier) {
		return tokenResponse{}, oauthErr(ErrCodeInvalidRequest, "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	}
	resource := ""
	if form.Has("resource") {
		r, ok := s.canonicalResource(form.Get("resource"))
		if !ok {
			return tokenResponse{}, oauthErr(ErrCodeInvalidTarget, "resource must be this server's MCP endpoint")
		}
		resource = r
	}
	grantID, _, ok := strings.Cut(code, codeSeparator)
	if !ok || len(grantID) != 32 || len(code) > 128 {
		return tokenResponse{}, oauthErr(ErrCodeInvalidGrant, "the authorization code is invalid, expired or already used")
	}
	// The code's scopes and resource are only known after the exchange;
	// the tokens carry them, so build them from a provisional record and
	// fix them up below only if they differ (they never do for our codes:
	// scopes and resource live on the grant too).
	g, err := s.st.GetGrant(ctx, grantID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			return tokenResponse{}, oauthErr(ErrCodeInvalidGrant, "the authorization code is invalid, expired or already used")
		}
		s.log.ErrorContext(ctx, "auth: load grant", "err", err)
		return tokenResponse{}, &Error{Code: ErrCodeServerError, Description: "cannot redeem the code", Status: http.StatusInternalServerError}
	}
	issue, resp := s.newTokens(client, grantID, g.Scopes, g.Resource, g.UpstreamExpiresAt)
	// The grant was created pending, to expire with its code; the exchange
	// makes it a full grant in the same atomic step (see issueCode).
	rec, err := s.st.ExchangeAuthCode(ctx, store.HashSecret(code), issue, s.cfg.Now().UTC().Add(s.cfg.RefreshTokenTTL))
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		s.log.WarnContext(ctx, "auth: authorization code replayed; revoking its grant", "grant_id", rec.GrantID, "client_id", client.ID)
		s.revokeGrant(ctx, rec.GrantID)
		return tokenResponse{}, oauthErr(ErrCodeInvalidGrant, "the authorization code is invalid, expired or already used")
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		return tokenResponse{}, oauthErr(ErrCodeInvalidGrant, "the authorization code is invalid, expired or already used")
	case err != nil:
		s.log.ErrorContext(ctx, "auth: exchange authorization code", "err", err)
		return tokenResponse{}, &Error{Code: ErrCodeServerError, Description: "cannot redeem the code", Status: http.StatusInternalServerError}
	}
	var fail *Error
	switch {
	case rec.GrantID != grantID || rec.ClientID != client.ID:
		fail = oauthErr(ErrCodeInvalidGrant, "the authorization code was issued to another client")
	case form.Has("redirect_uri") && form.Get("redirect_uri") != rec.RedirectURI:
		fail = oauthErr(ErrCodeInvalidGrant, "redirect_uri does not match the authorization request")
	case rec.CodeChallengeMethod != "S256" || !constantTimeEqual(s256(verifier), rec.CodeChallenge):
		fail = oauthErr(ErrCodeInvalidGrant, "code_verifier does not match the code_challenge")
	case resource != "" && resource != rec.Resource:
		fail = oauthErr(ErrCodeInvalidTarget, "resource does not match the authorization request")
	case !slices.Equal(rec.Scopes, g.Scopes) || rec.Resource != g.Resource:
		fail = oauthErr(ErrCodeInvalidGrant, "the authorization code does not match its grant")
	}
	if fail != nil {
		s.log.WarnContext(ctx, "auth: code exchange refused; revoking its grant", "grant_id", rec.GrantID, "client_id", client.ID, "reason", fail.Description)
		s.revokeGrant(ctx, rec.GrantID)
		return tokenResponse{}, fail
	}
	s.log.InfoContext(ctx, "auth: tokens issued", "grant_id", grantID, "client_id", client.ID, "user_id", g.UserID)
	return resp, nil
}

// refresh implements the refresh_token grant (RFC 6749 §6) with rotation
// and reuse detection, refreshing the upstream session first so that
// permission changes and ended AuthKit sessions take effect. Refreshes of
// one grant are serialized: the upstream refresh token is single-use.
func (s *Server) refresh(ctx context.Context, client store.Client, form url.Values) (tokenResponse, *Error) {
	invalid := oauthErr(ErrCodeInvalidGrant, "the refresh token is invalid, expired or revoked")
	rt := form.Get("refresh_token")
	if rt == "" {
		return tokenResponse{}, oauthErr(ErrCodeInvalidRequest, "refresh_token is required")
	}
	if len(rt) > 128 {
		return tokenResponse{}, invalid
	}
	hash := store.HashSecret(rt)
	tok, err := s.st.GetToken(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		return tokenResponse{}, invalid
	case err != nil:
		s.log.ErrorContext(ctx, "auth: load refresh token", "err", err)
		return tokenResponse{}, &Error{Code: ErrCodeServerError, Description: "cannot refresh", Status: http.StatusInternalServerError}
	case tok.Kind != store.RefreshToken || tok.ClientID != client.ID:
		return tokenResponse{}, invalid
	}
	scopes := tok.Scopes
	if form.Has("scope") {
		scopes = nil
		for _, sc := range strings.Split(form.Get("scope"), " ") {
			if !slices.Contains(tok.Scopes, sc) {
				return tokenResponse{}, oauthErr(ErrCodeInvalidScope, "scope may only narrow the granted scopes")
			}
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	if form.Has("resource") {
		if r, ok := s.canonicalResource(form.Get("resource")); !ok || r != tok.Resource {
			return tokenResponse{}, oauthErr(ErrCodeInvalidTarget, "resource must be the one this grant was issued for")
		}
	}

	unlock := s.locks.lock(tok.GrantID)
	defer unlock()
	// Re-read under the lock: a concurrent refresh with the same token may
	// have rotated it while this one waited.
	tok, err = s.st.GetToken(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		return tokenResponse{}, invalid
	case err != nil:
		s.log.ErrorContext(ctx, "auth: load refresh token", "err", err)
		return tokenResponse{}, &Error{Code: ErrCodeServerError, Description: "cannot refresh", Status: http.StatusInternalServerError}
	}
	if !tok.UsedAt.IsZero() {
		s.log.WarnContext(ctx, "auth: rotated refresh token reused; revoking its grant", "grant_id", tok.GrantID, "client_id", client.ID)
		s.revokeGrant(ctx, tok.GrantID)
		return tokenResponse{}, invalid
	}
	g, err := s.st.GetGrant(ctx, tok.GrantID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return tokenResponse{}, invalid
	case err != nil:
		s.log.ErrorContext(ctx, "auth: load grant", "grant_id", tok.GrantID, "err", err)
		return tokenResponse{}, &Error{Code: ErrCodeServerError, Description: "cannot refresh", Status: http.StatusInternalServerError}
	}
	upstreamRT, err := s.keys.decrypt(g.UpstreamRefreshToken, g.ID)
	if err != nil {
		s.log.WarnContext(ctx, "auth: upstream refresh token unreadable (cookie key changed?); ending grant", "grant_id", g.ID)
		s.revokeGrant(ctx, g.ID)
		return tokenResponse{}, invalid
	}
	id, err := s.up.Refresh(ctx, upstreamRT, g.OrganizationID)
	var rejected *authkit.UpstreamError
	switch {
	case err == nil:
	case errors.Is(err, authkit.ErrUpstreamGrantInvalid):
		s.log.InfoContext(ctx, "auth: upstream session ended; ending grant", "grant_id", g.ID, "user_id", g.UserID)
		s.revokeGrant(ctx, g.ID)
		return tokenResponse{}, oauthErr(ErrCodeInvalidGrant, "the sign-in session has ended; sign in again")
	case errors.Is(err, authkit.ErrUpstreamUnavailable) || errors.As(err, &rejected):
		// WorkOS is down, or refused our own credentials: not the
		// grant's fault; keep it and let the client retry.
		s.log.WarnContext(ctx, "auth: upstream refresh failed", "grant_id", g.ID, "err", err)
		if id.RefreshToken != "" {
			s.saveUpstreamToken(ctx, g.ID, id.RefreshToken)
		}
		return tokenResponse{}, &Error{Code: ErrCodeTemporarilyUnavailable, Description: "the identity provider is unavailable; try again later", Status: http.StatusServiceUnavailable, retryAfter: "30"}
	default:
		// The refreshed identity could not be verified (token signature,
		// issuer, organization): the grant cannot vouch for the user any
		// more.
		s.log.WarnContext(ctx, "auth: refreshed identity not verifiable; ending grant", "grant_id", g.ID, "err", err)
		s.revokeGrant(ctx, g.ID)
		return tokenResponse{}, oauthErr(ErrCodeInvalidGrant, "the sign-in could not be verified; sign in again")
	}
	issue, resp := s.newTokens(client, g.ID, scopes, tok.Resource, id.AccessTokenExpiry)
	now := s.cfg.Now().UTC()
	sealed := s.keys.encrypt(id.RefreshToken, g.ID)
	_, err = s.st.RotateRefreshToken(ctx, hash, issue, func(g *store.Grant) error {
		g.Role = id.Role
		g.Permissions = nonNil(id.Permissions)
		if id.OrganizationID != "" {
			g.OrganizationID = id.OrganizationID
		}
		if id.SessionID != "" {
			g.UpstreamSessionID = id.SessionID
		}
		g.UpstreamRefreshToken = sealed
		g.UpstreamExpiresAt = id.AccessTokenExpiry
		g.UpdatedAt = now
		g.ExpiresAt = now.Add(s.cfg.RefreshTokenTTL)
		return nil
	})
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		s.log.WarnContext(ctx, "auth: rotated refresh token reused; revoking its grant", "grant_id", g.ID, "client_id", client.ID)
		s.revokeGrant(ctx, g.ID)
		return tokenResponse{}, invalid
	case errors.Is(err, store.ErrNotFound):
		return tokenResponse{}, invalid
	case err != nil:
		s.log.ErrorContext(ctx, "auth: rotate refresh token", "grant_id", g.ID, "err", err)
		return tokenResponse{}, &Error{Code: ErrCodeServerError, Description: "cannot refresh", Status: http.StatusInternalServerError}
	}
	s.cache.dropGrant(g.ID) // the identity behind the grant's access tokens changed
	s.log.InfoContext(ctx, "auth: tokens refreshed", "grant_id", g.ID, "client_id", client.ID, "user_id", g.UserID)
	return resp, nil
}

// saveUpstreamToken stores a rotated upstream refresh token after a refresh
// that WorkOS accepted but that failed later, so the grant is not lost.
func (s *Server) saveUpstreamToken(ctx context.Context, grantID, refreshToken string) {
	sealed := s.keys.encrypt(refreshToken, grantID)
	if _, err := s.st.UpdateGrant(ctx, grantID, func(g *store.Grant) error {
		g.UpstreamRefreshToken = sealed
		return nil
	}); err != nil {
		s.log.ErrorContext(ctx, "auth: store rotated upstream refresh token", "grant_id", grantID, "err", err)
	}
}

// revokeGrant ends a grant: its tokens go from the store and the cache.
func (s *Server) revokeGrant(ctx context.Context, grantID string) {
	s.cache.dropGrant(grantID)
	if err := s.st.RevokeGrant(ctx, grantID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.ErrorContext(ctx, "auth: revoke grant", "grant_id", grantID, "err", err)
	}
}

// handleRevoke implements RFC 7009. Revoking a refresh token ends its whole
// grant (every access token with it); revoking an access token removes
// only that token. Unknown tokens and other clients' tokens get 200 with
// no effect (RFC 7009 §2.2).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	client, e := s.authenticateClient(r.Context(), r, form)
	if e != nil {
		writeError(w, e)
		return
	}
	token := form.Get("token")
	if token == "" {
		writeError(w, oauthErr(ErrCodeInvalidRequest, "token is required"))
		return
	}
	ok := func() {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}
	if len(token) > 128 {
		ok()
		return
	}
	ctx := r.Context()
	hash := store.HashSecret(token)
	tok, err := s.st.GetToken(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		ok()
		return
	case err != nil:
		s.log.ErrorContext(ctx, "auth: load token", "err", err)
		writeError(w, &Error{Code: ErrCodeTemporarilyUnavailable, Description: "cannot revoke now; try again later", Status: http.StatusServiceUnavailable, retryAfter: "5"})
		return
	case tok.ClientID != client.ID:
		s.log.WarnContext(ctx, "auth: revocation of another client's token ignored", "client_id", client.ID)
		ok()
		return
	}
	if tok.Kind == store.RefreshToken {
		s.revokeGrant(ctx, tok.GrantID)
		s.log.InfoContext(ctx, "auth: grant revoked by its client", "grant_id", tok.GrantID, "client_id", client.ID)
	} else {
		s.cache.drop(hash)
		if err := s.st.DeleteToken(ctx, hash); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "auth: delete token", "err", err)
			writeError(w, &Error{Code: ErrCodeTemporarilyUnavailable, Description: "cannot revoke now; try again later", Status: http.StatusServiceUnavailable, retryAfter: "5"})
			return
		}
		s.log.InfoContext(ctx, "auth: access token revoked by its client", "grant_id", tok.GrantID, "client_id", client.ID)
	}
	ok()
}

// validVerifier reports whether v is an RFC 7636 §4.1 code verifier.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}
