package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/store"
)

// JWTVerifier verifies AuthKit access tokens in resource-server mode:
// *authkit.Upstream configured with Issuer set to the AuthKit domain and
// JWKSURL to its /oauth2/jwks.
type JWTVerifier interface {
	// VerifyAccessToken checks signature, issuer, expiry and, when audience
	// is not empty, the audience. Token failures wrap
	// authkit.ErrInvalidToken.
	VerifyAccessToken(ctx context.Context, token, audience string) (authkit.Claims, error)
}

var _ JWTVerifier = (*authkit.Upstream)(nil)

// PermissionSource supplies a user's role and permissions when an AuthKit
// token carries none (for example from the user's organization membership
// through the WorkOS API). Results should be cheap to repeat: the
// ResourceServer caches them per token.
type PermissionSource interface {
	Permissions(ctx context.Context, userID, organizationID string) (role string, permissions []string, err error)
}

// ResourceServerConfig configures resource-server mode (auth.mode =
// "authkit"), where AuthKit itself is the authorization server.
type ResourceServerConfig struct {
	// PublicURL is our public base URL, as in Config. Required.
	PublicURL string
	// AuthorizationServer is the AuthKit domain, an https URL such as
	// "https://example.authkit.app" (http only for a loopback host).
	// Required.
	AuthorizationServer string
	// Scopes are the scopes_supported of our protected resource metadata
	// and the scope of challenges. Default []string{"openid", "profile",
	// "email"} (offline_access is deliberately not listed).
	Scopes []string
	// ResourceName is the resource_name of the metadata. Default
	// DefaultResourceName.
	ResourceName string
	// Permissions, when not nil, is asked for the role and permissions of
	// a token that has no permissions claim.
	Permissions PermissionSource
	// CacheSize bounds the verified-token cache. Default DefaultCacheSize;
	// negative turns it off.
	CacheSize int
	// CacheTTL bounds how long a verified token stays cached (never past
	// its expiry). Default DefaultCacheTTL.
	CacheTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives diagnostics, never tokens. Default slog.Default().
	Logger *slog.Logger
}

// ResourceServer is resource-server mode: RFC 9728 metadata names the
// AuthKit domain as the authorization server, and Protect accepts AuthKit
// JWTs whose audience is our resource URL.
type ResourceServer struct {
	cfg    ResourceServerConfig
	v      JWTVerifier
	cache  *tokenCache
	issuer string
	denied rsDenials // what WorkOS events ended (WebhookHandler)
}

// NewResourceServer validates cfg and returns a ResourceServer verifying
// tokens with v.
func NewResourceServer(cfg ResourceServerConfig, v JWTVerifier) (*ResourceServer, error) {
	if v == nil {
		return nil, errors.New("auth: resource server: a token verifier is required")
	}
	pu, err := checkPublicURL(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("auth: resource server: %w", err)
	}
	cfg.PublicURL = pu
	as, err := url.Parse(cfg.AuthorizationServer)
	if err != nil || as.Host == "" || as.RawQuery != "" || as.Fragment != "" ||
		(as.Scheme != "https" && !(as.Scheme == "http" && isLoopbackHost(as.Hostname()))) {
		return nil, fmt.Errorf("auth: resource server: authorization server %q must be an https URL", cfg.AuthorizationServer)
	}
	cfg.AuthorizationServer = strings.TrimSuffix(cfg.AuthorizationServer, "/")
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"openid", "profile", "email"}
	}
	if cfg.ResourceName == "" {
		cfg.ResourceName = DefaultResourceName
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &ResourceServer{cfg: cfg, v: v, cache: newTokenCache(cfg.CacheSize), issuer: cfg.PublicURL}, nil
}

// Mount registers the protected resource metadata (root, /mcp and /sse
// forms) and a 307 from our /.well-known/oauth-authorization-server to
// AuthKit's, for clients that look for it on the resource's origin.
func (rs *ResourceServer) Mount(mux *http.ServeMux) {
	for _, p := range []string{"", PathMCP, PathSSE} {
		resource := rs.issuer + p
		mux.Handle(PathPRMetadata+p, withCORS("GET, HEAD, OPTIONS", func(w http.ResponseWriter, r *http.Request) {
			writeMetadata(w, r, prMetadata{
				Resource:               resource,
				AuthorizationServers:   []string{rs.cfg.AuthorizationServer},
				ScopesSupported:        rs.cfg.Scopes,
				BearerMethodsSupported: []string{"header"},
				ResourceName:           rs.cfg.ResourceName,
			})
		}))
	}
	mux.Handle(PathASMetadata, withCORS("GET, HEAD, OPTIONS", func(w http.ResponseWriter, r *http.Request) {
		// Location only: http.Redirect would add an HTML body.
		w.Header().Set("Location", rs.cfg.AuthorizationServer+PathASMetadata)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
}

// Protect wraps the resource at path with AuthKit JWT verification: the
// token's audience must be PublicURL+path (a token minted for another
// resource, or for a client id because the client sent no resource, is
// refused). The Caller's GrantID is the AuthKit session id.
func (rs *ResourceServer) Protect(path string, next http.Handler) http.Handler {
	audience := rs.issuer + path
	return guard(rs.issuer+PathPRMetadata+path, rs.cfg.Scopes, rs.cfg.Logger, func(ctx context.Context, token string) (*Caller, error) {
		return rs.verify(ctx, token, audience)
	}, next)
}

func (rs *ResourceServer) verify(ctx context.Context, token, audience string) (*Caller, error) {
	if len(token) > authkit.MaxTokenSize {
		return nil, errTokenInvalid
	}
	key := store.HashSecret(audience + " " + token)
	now := rs.cfg.Now()
	if c := rs.cache.get(key, now); c != nil {
		return c, nil
	}
	gen := rs.cache.generation()
	claims, err := rs.v.VerifyAccessToken(ctx, token, audience)
	switch {
	case errors.Is(err, authkit.ErrInvalidToken):
		rs.cfg.Logger.DebugContext(ctx, "auth: authkit token refused", "err", err)
		return nil, fmt.Errorf("%w: %w", errTokenInvalid, err)
	case err != nil:
		return nil, fmt.Errorf("verify authkit token: %w", err)
	}
	if rs.denied.refuses(claims, now) {
		rs.cfg.Logger.DebugContext(ctx, "auth: authkit token refused after an upstream event", "session", claims.SessionID)
		return nil, fmt.Errorf("%w: ended by an upstream event", errTokenInvalid)
	}
	c := &Caller{
		UserID:         claims.Subject,
		OrganizationID: claims.OrganizationID,
		Role:           claims.Role,
		Permissions:    nonNil(claims.Permissions),
		ClientID:       claims.ClientID,
		GrantID:        claims.SessionID,
		Resource:       audience,
		ExpiresAt:      claims.ExpiresAt,
	}
	if len(claims.Permissions) == 0 && rs.cfg.Permissions != nil && claims.OrganizationID != "" {
		role, perms, err := rs.cfg.Permissions.Permissions(ctx, claims.Subject, claims.OrganizationID)
		switch {
		case errors.Is(err, authkit.ErrNoMembership):
			// Not (or no longer) a member: a valid token with no
			// permissions, cached like any other answer so non-members do
			// not cost a WorkOS request each.
			role, perms = "", nil
		case err != nil:
			return nil, fmt.Errorf("look up permissions: %w", err)
		}
		if role != "" {
			c.Role = role
		}
		c.Permissions = nonNil(perms)
	}
	until := now.Add(rs.cfg.CacheTTL)
	if c.ExpiresAt.Before(until) {
		until = c.ExpiresAt
	}
	rs.cache.put(key, c, until, gen)
	return c, nil
}
