package authkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/workos/workos-go/v4/pkg/usermanagement"
	"github.com/workos/workos-go/v4/pkg/workos_errors"
)

// DefaultAPIBaseURL is the WorkOS API endpoint used when Config.APIBaseURL is
// empty.
const DefaultAPIBaseURL = "https://api.workos.com"

var (
	// ErrUpstreamGrantInvalid means WorkOS refused a code or refresh token
	// with invalid_grant: the AuthKit session was revoked or ended, the
	// refresh token was already used, or the code is unknown or expired.
	// A caller refreshing a grant should end that grant.
	ErrUpstreamGrantInvalid = errors.New("upstream grant is no longer valid")

	// ErrUpstreamUnavailable means WorkOS could not be reached or answered
	// with a server error or 429; the same request may succeed later.
	ErrUpstreamUnavailable = errors.New("upstream identity provider unavailable")
)

// UpstreamError is a rejection by the WorkOS API other than a transport
// failure. It carries no token, code or secret.
type UpstreamError struct {
	// Op is the operation that failed, such as "authenticate with code".
	Op string
	// StatusCode is the HTTP status WorkOS answered with.
	StatusCode int
	// Code is the WorkOS or OAuth error code (error or code field), if any.
	Code string
	// RequestID is WorkOS's X-Request-ID, for support requests.
	RequestID string
}

func (e *UpstreamError) Error() string {
	msg := fmt.Sprintf("workos %s: status %d", e.Op, e.StatusCode)
	if e.Code != "" {
		msg += ", error " + e.Code
	}
	if e.RequestID != "" {
		msg += ", request id " + e.RequestID
	}
	return msg
}

// Config configures an Upstream. The zero value of every optional field is a
// documented default.
type Config struct {
	// ClientID is the WorkOS client id (client_…). Required.
	ClientID string
	// APIKey is the WorkOS API key (sk_…), WORKOS_CLIENT_SECRET in the
	// environment. Required. It is sent to WorkOS only and never logged.
	APIKey string
	// APIBaseURL is the WorkOS API endpoint, without a trailing slash.
	// Default DefaultAPIBaseURL; the development AuthKit's URL in dev runs.
	APIBaseURL string
	// Issuer is the only iss value accepted in access tokens. When empty,
	// the two forms WorkOS issues for user-management sessions are
	// accepted: APIBaseURL itself and APIBaseURL + "/user_management/" +
	// ClientID. Set it to the AuthKit domain (https://<sub>.authkit.app)
	// in resource-server mode, or to a custom authentication domain.
	Issuer string
	// JWKSURL is where signing keys are fetched. Default
	// APIBaseURL + "/sso/jwks/" + ClientID (workos-go's GetJWKSURL); set it
	// to https://<sub>.authkit.app/oauth2/jwks in resource-server mode.
	JWKSURL string
	// HTTPClient is used for every WorkOS request. Default: a client with a
	// 10 second timeout.
	HTTPClient *http.Client
	// Logger receives diagnostics; it never sees tokens, codes or secrets.
	// Default slog.Default().
	Logger *slog.Logger
	// Now is the clock used for token expiry checks and the permissions
	// cache. Default time.Now.
	Now func() time.Time
	// PermissionsCacheTTL is how long Upstream.Permissions remembers a
	// user's role and permissions in an organization. Default
	// DefaultPermissionsCacheTTL; negative turns the cache off.
	PermissionsCacheTTL time.Duration
	// PermissionsCacheSize bounds the number of (user, organization) pairs
	// Upstream.Permissions remembers; the least recently used is dropped
	// first. Default DefaultPermissionsCacheSize; negative turns the cache
	// off.
	PermissionsCacheSize int
}

// AuthorizeParams are the inputs to the AuthKit hosted-login URL.
type AuthorizeParams struct {
	// RedirectURI is toolgate's /callback URL, registered in WorkOS.
	// Required.
	RedirectURI string
	// State is the caller's single-use random state. Required.
	State string
	// CodeChallenge is BASE64URL(SHA256(code_verifier)) (PKCE S256).
	// Required.
	CodeChallenge string
	// LoginHint pre-fills the email field, optional.
	LoginHint string
	// OrganizationID asks AuthKit to sign the user in to this organization,
	// optional.
	OrganizationID string
}

// Identity is who signed in, from WorkOS's authenticate response and the
// verified access token.
type Identity struct {
	// UserID is the WorkOS user id (the sub claim).
	UserID string
	// Email, FirstName and LastName come from the user object of the code
	// exchange. workos-go does not decode the user object of a refresh
	// response, so Refresh leaves them empty; keep them from ExchangeCode.
	Email     string
	FirstName string
	LastName  string
	// OrganizationID is the org_id claim (or the response's organization_id).
	OrganizationID string
	// Role is the role claim.
	Role string
	// Permissions is the permissions claim; never nil after success.
	Permissions []string
	// SessionID is the AuthKit session (sid claim), for RevokeSession.
	SessionID string
	// RefreshToken is the new upstream refresh token. It is single-use:
	// store it (encrypted) and use it for the next Refresh.
	RefreshToken string
	// AccessTokenExpiry is the exp of the upstream access token.
	AccessTokenExpiry time.Time
}

// Upstream signs users in through WorkOS AuthKit. It is safe for concurrent
// use.
type Upstream struct {
	clientID   string
	client     *usermanagement.Client
	issuers    []string
	keys       *keySet
	logger     *slog.Logger
	now        func() time.Time
	apiBase    string       // WorkOS API endpoint, for requests made without workos-go
	apiKey     string       // sent as Bearer to apiBase only, never logged
	httpClient *http.Client // the workos-go client's HTTP client
	perms      *permCache
}

// New validates cfg and returns an Upstream. It does no I/O; the JWKS is
// fetched on first use.
func New(cfg Config) (*Upstream, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("authkit: client id is required")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("authkit: api key is required")
	}
	base := strings.TrimRight(cfg.APIBaseURL, "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	if err := checkBaseURL(base); err != nil {
		return nil, fmt.Errorf("authkit: api base url: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PermissionsCacheTTL == 0 {
		cfg.PermissionsCacheTTL = DefaultPermissionsCacheTTL
	}
	if cfg.PermissionsCacheSize == 0 {
		cfg.PermissionsCacheSize = DefaultPermissionsCacheSize
	}

	client := usermanagement.NewClient(cfg.APIKey)
	client.Endpoint = base
	client.HTTPClient = cfg.HTTPClient

	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		u, err := client.GetJWKSURL(cfg.ClientID)
		if err != nil {
			return nil, fmt.Errorf("authkit: jwks url: %w", err)
		}
		jwksURL = u.String()
	} else if err := checkBaseURL(jwksURL); err != nil {
		return nil, fmt.Errorf("authkit: jwks url: %w", err)
	}

	issuers := []string{cfg.Issuer}
	if cfg.Issuer == "" {
		issuers = []string{base, base + "/user_management/" + cfg.ClientID}
	}

	return &Upstream{
		clientID: cfg.ClientID,
		client:   client,
		issuers:  issuers,
		keys: &keySet{
			url:    jwksURL,
			client: cfg.HTTPClient,
			logger: cfg.Logger,
			now:    cfg.Now,
		},
		logger:     cfg.Logger,
		now:        cfg.Now,
		apiBase:    base,
		apiKey:     cfg.APIKey,
		httpClient: cfg.HTTPClient,
		perms:      newPermCache(cfg.PermissionsCacheTTL, cfg.PermissionsCacheSize, cfg.Now),
	}, nil
}

func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", raw)
	}
	return nil
}

// AuthorizationURL returns the AuthKit hosted-login URL for provider
// "authkit" with PKCE S256. It does no I/O.
func (u *Upstream) AuthorizationURL(_ context.Context, p AuthorizeParams) (string, error) {
	switch {
	case p.RedirectURI == "":
		return "", errors.New("authkit: authorization url: redirect uri is required")
	case p.State == "":
		return "", errors.New("authkit: authorization url: state is required")
	case p.CodeChallenge == "":
		return "", errors.New("authkit: authorization url: pkce code challenge is required")
	}
	au, err := u.client.GetAuthorizationURL(usermanagement.GetAuthorizationURLOpts{
		ClientID:            u.clientID,
		RedirectURI:         p.RedirectURI,
		Provider:            "authkit",
		State:               p.State,
		CodeChallenge:       p.CodeChallenge,
		CodeChallengeMethod: "S256",
		LoginHint:           p.LoginHint,
		OrganizationID:      p.OrganizationID,
	})
	if err != nil {
		return "", fmt.Errorf("authkit: authorization url: %w", err)
	}
	return au.String(), nil
}

// ExchangeCode redeems the authorization code from the AuthKit callback with
// the PKCE verifier, verifies the returned access token and returns who
// signed in.
func (u *Upstream) ExchangeCode(ctx context.Context, code, codeVerifier string) (Identity, error) {
	if code == "" || codeVerifier == "" {
		return Identity{}, errors.New("authkit: exchange code: code and code verifier are required")
	}
	res, err := u.client.AuthenticateWithCode(ctx, usermanagement.AuthenticateWithCodeOpts{
		ClientID:     u.clientID,
		Code:         code,
		CodeVerifier: codeVerifier,
	})
	if err != nil {
		return Identity{}, fmt.Errorf("authkit: exchange code: %w", classify("authenticate with code", err))
	}
	claims, err := u.VerifyAccessToken(ctx, res.AccessToken, "")
	if err != nil {
		return Identity{}, fmt.Errorf("authkit: exchange code: %w", err)
	}
	if res.User.ID != "" && res.User.ID != claims.Subject {
		return Identity{}, fmt.Errorf("authkit: exchange code: user %q does not match token subject %q", res.User.ID, claims.Subject)
	}
	if res.OrganizationID != "" && claims.OrganizationID != "" && res.OrganizationID != claims.OrganizationID {
		return Identity{}, fmt.Errorf("authkit: exchange code: organization %q does not match token org_id %q", res.OrganizationID, claims.OrganizationID)
	}
	if res.RefreshToken == "" {
		return Identity{}, errors.New("authkit: exchange code: response has no refresh token")
	}
	id := identityFromClaims(claims, res.RefreshToken)
	if id.OrganizationID == "" {
		id.OrganizationID = res.OrganizationID
	}
	id.Email = res.User.Email
	id.FirstName = res.User.FirstName
	id.LastName = res.User.LastName
	u.logger.DebugContext(ctx, "authkit: code exchanged", "user", id.UserID, "organization", id.OrganizationID, "session", id.SessionID)
	return id, nil
}

// Refresh rotates the upstream refresh token, re-reading the user's current
// role and permissions. organizationID, when set, keeps the session in that
// organization. An invalid_grant answer wraps ErrUpstreamGrantInvalid;
// network failures and 5xx answers wrap ErrUpstreamUnavailable.
//
// Refresh tokens are single-use, so once WorkOS has accepted the presented
// token the old one is gone. If a later step fails (the JWKS cannot be
// fetched, the token does not verify), Refresh returns the error together
// with an Identity whose only field is the rotated RefreshToken: the caller
// must store it in place of the old one, or the grant is lost.
func (u *Upstream) Refresh(ctx context.Context, refreshToken, organizationID string) (Identity, error) {
	if refreshToken == "" {
		return Identity{}, fmt.Errorf("authkit: refresh: %w: empty refresh token", ErrUpstreamGrantInvalid)
	}
	res, err := u.client.AuthenticateWithRefreshToken(ctx, usermanagement.AuthenticateWithRefreshTokenOpts{
		ClientID:       u.clientID,
		RefreshToken:   refreshToken,
		OrganizationID: organizationID,
	})
	if err != nil {
		return Identity{}, fmt.Errorf("authkit: refresh: %w", classify("authenticate with refresh token", err))
	}
	if res.RefreshToken == "" {
		return Identity{}, errors.New("authkit: refresh: response has no refresh token")
	}
	rotated := Identity{RefreshToken: res.RefreshToken}
	claims, err := u.VerifyAccessToken(ctx, res.AccessToken, "")
	if err != nil {
		return rotated, fmt.Errorf("authkit: refresh: %w", err)
	}
	if organizationID != "" && claims.OrganizationID != organizationID {
		return rotated, fmt.Errorf("authkit: refresh: token org_id %q, want %q", claims.OrganizationID, organizationID)
	}
	id := identityFromClaims(claims, res.RefreshToken)
	u.logger.DebugContext(ctx, "authkit: session refreshed", "user", id.UserID, "session", id.SessionID)
	return id, nil
}

// RevokeSession ends the AuthKit session sessionID (the sid claim) through
// POST /user_management/sessions/revoke. A session WorkOS no longer knows is
// treated as already revoked.
func (u *Upstream) RevokeSession(ctx context.Context, sessionID string) error {
	if sessionID == "" {
		return errors.New("authkit: revoke session: session id is required")
	}
	err := u.client.RevokeSession(ctx, usermanagement.RevokeSessionOpts{SessionID: sessionID})
	if err == nil {
		return nil
	}
	cerr := classify("revoke session", err)
	var ue *UpstreamError
	if errors.As(cerr, &ue) && ue.StatusCode == http.StatusNotFound {
		u.logger.DebugContext(ctx, "authkit: session already gone", "session", sessionID)
		return nil
	}
	return fmt.Errorf("authkit: revoke session: %w", cerr)
}

// VerifyAccessToken verifies an AuthKit access token: RS256 signature
// against the JWKS, issuer, expiry and not-before (30 s leeway), and the
// audience when audience is non-empty. Failures wrap ErrInvalidToken, or
// ErrUpstreamUnavailable when the key set could not be fetched; any other
// error (a JWKS URL answering 404, a key set without RS256 keys) is a
// configuration problem.
func (u *Upstream) VerifyAccessToken(ctx context.Context, token, audience string) (Claims, error) {
	p, err := parseJWT(token)
	if err != nil {
		return Claims{}, err
	}
	key, err := u.keys.lookup(ctx, p.header.Kid)
	if err != nil {
		return Claims{}, err
	}
	if err := p.verifySignature(key); err != nil {
		return Claims{}, err
	}
	return p.decodeClaims(claimsPolicy{issuers: u.issuers, audience: audience, now: u.now()})
}

func identityFromClaims(c Claims, refreshToken string) Identity {
	perms := c.Permissions
	if perms == nil {
		perms = []string{}
	}
	return Identity{
		UserID:            c.Subject,
		OrganizationID:    c.OrganizationID,
		Role:              c.Role,
		Permissions:       perms,
		SessionID:         c.SessionID,
		RefreshToken:      refreshToken,
		AccessTokenExpiry: c.ExpiresAt,
	}
}

// classify turns a workos-go error into an error wrapping the right
// sentinel, dropping WorkOS's message text (which may echo codes or pending
// authentication tokens).
func classify(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %w", ErrUpstreamUnavailable, op, err)
	}
	he, ok := httpError(err)
	if !ok {
		// Transport failure (DNS, connection refused, TLS, timeout) or a
		// response body that is not the expected JSON.
		return fmt.Errorf("%w: %s: %w", ErrUpstreamUnavailable, op, err)
	}
	ue := &UpstreamError{Op: op, StatusCode: he.Code, Code: he.ErrorCode, RequestID: he.RequestID}
	switch {
	case he.ErrorCode == "invalid_grant":
		return fmt.Errorf("%w: %w", ErrUpstreamGrantInvalid, ue)
	case he.Code >= 500 || he.Code == http.StatusTooManyRequests:
		return fmt.Errorf("%w: %w", ErrUpstreamUnavailable, ue)
	default:
		return ue
	}
}

// httpError extracts the HTTPError from any of the error types
// workos_errors.TryGetHTTPError returns.
func httpError(err error) (workos_errors.HTTPError, bool) {
	var v workos_errors.HTTPError
	if errors.As(err, &v) {
		return v, true
	}
	var p *workos_errors.HTTPError
	if errors.As(err, &p) && p != nil {
		return *p, true
	}
	var (
		ev  *workos_errors.EmailVerificationRequiredError
		me  *workos_errors.MFAEnrollmentError
		mc  *workos_errors.MFAChallengeError
		osr *workos_errors.OrganizationSelectionRequiredError
		sso *workos_errors.SSORequiredError
		oam *workos_errors.OrganizationAuthenticationMethodsRequiredError
	)
	switch {
	case errors.As(err, &ev):
		return ev.HTTPError, true
	case errors.As(err, &me):
		return me.HTTPError, true
	case errors.As(err, &mc):
		return mc.HTTPError, true
	case errors.As(err, &osr):
		return osr.HTTPError, true
	case errors.As(err, &sso):
		return sso.HTTPError, true
	case errors.As(err, &oam):
		return oam.HTTPError, true
	}
	return workos_errors.HTTPError{}, false
}
