package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/internal/keyedlimit"
	"github.com/toolgate/toolgate/core/store"
)

// Upstream is the identity provider users sign in at: WorkOS AuthKit
// through *authkit.Upstream, in production and against the development
// AuthKit alike.
type Upstream interface {
	// AuthorizationURL returns the hosted-login URL for one sign-in.
	AuthorizationURL(ctx context.Context, p authkit.AuthorizeParams) (string, error)
	// ExchangeCode redeems the callback code and returns who signed in,
	// from a verified access token.
	ExchangeCode(ctx context.Context, code, codeVerifier string) (authkit.Identity, error)
	// Refresh rotates the upstream refresh token and re-reads the user's
	// role and permissions. An error wrapping authkit.ErrUpstreamGrantInvalid
	// means the upstream session is over.
	Refresh(ctx context.Context, refreshToken, organizationID string) (authkit.Identity, error)
	// RevokeSession ends the upstream session (the sid claim).
	RevokeSession(ctx context.Context, sessionID string) error
}

var _ Upstream = (*authkit.Upstream)(nil)

// Endpoint paths, relative to Config.PublicURL.
const (
	PathASMetadata  = "/.well-known/oauth-authorization-server"
	PathPRMetadata  = "/.well-known/oauth-protected-resource"
	PathRegister    = "/register"
	PathAuthorize   = "/authorize"
	PathCallback    = "/callback"
	PathToken       = "/token"
	PathRevoke      = "/revoke"
	PathMCP         = "/mcp"
	PathSSE         = "/sse"
	cookieBrowser   = "toolgate_browser"
	cookieConsent   = "toolgate_consent"
	maxFormBytes    = 16 << 10
	maxRegisterBody = 16 << 10
)

// Server is toolgate's OAuth 2.1 authorization server for MCP clients and
// the bearer-token check of its protected resources. It is safe for
// concurrent use. Create it with New, register its routes with Mount,
// wrap /mcp and /sse with Protect, and Close it on shutdown.
type Server struct {
	cfg    Config
	st     store.Store
	up     Upstream
	log    *slog.Logger
	keys   *keys
	secure bool // PublicURL is https: __Host- cookies with Secure

	issuer    string
	resources map[string]string // normalized form → canonical resource URI
	cache     *tokenCache
	limiter   *rateLimiter
	ipLimiter *keyedlimit.Limiter // nil when Config.IPRateLimit is off
	locks     keyedMutex
	cimd      *cimdFetcher // nil when CIMD is off

	stopWatch context.CancelFunc
	closeOnce sync.Once
}

// New validates cfg and returns a Server using st for its state and up for
// user sign-in. logger, when not nil, overrides cfg.Logger. When st
// implements store.Watcher, New starts watching it so that revocations made
// elsewhere (another process sharing the store, the operator CLI) drop
// cached tokens; Close stops the watch.
func New(cfg Config, st store.Store, up Upstream, logger *slog.Logger) (*Server, error) {
	if st == nil {
		return nil, errors.New("auth: store is required")
	}
	if up == nil {
		return nil, errors.New("auth: upstream is required")
	}
	if logger != nil {
		cfg.Logger = logger
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	k, err := deriveKeys(cfg.CookieKey)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	cfg.CookieKey = nil // only the derived keys are kept
	s := &Server{
		cfg:       cfg,
		st:        st,
		up:        up,
		log:       cfg.Logger,
		keys:      k,
		secure:    strings.HasPrefix(cfg.PublicURL, "https://"),
		issuer:    cfg.PublicURL,
		cache:     newTokenCache(cfg.CacheSize),
		limiter:   newRateLimiter(cfg.RegisterRate, cfg.Now),
		ipLimiter: keyedlimit.New(cfg.IPRateLimit, cfg.IPRateBurst, cfg.IPRateEntries, cfg.Now),
		resources: map[string]string{},
	}
	if !cfg.DisableCIMD {
		pu, _ := url.Parse(cfg.PublicURL) // validated
		loopback := cfg.CIMDAllowLoopback && isLoopbackHost(pu.Hostname())
		s.cimd = newCIMDFetcher(cfg.Scopes, cfg.Now, loopback, nil)
	}
	for _, r := range []string{cfg.PublicURL, cfg.PublicURL + PathMCP, cfg.PublicURL + PathSSE} {
		s.resources[normalizeURI(r)] = r
	}
	if w, ok := st.(store.Watcher); ok {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopWatch = cancel
		w.Watch(ctx, s.onChange)
	}
	return s, nil
}

// Close stops watching the store. It does not close the store.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.stopWatch != nil {
			s.stopWatch()
		}
	})
	return nil
}

// Issuer returns our issuer identifier (Config.PublicURL).
func (s *Server) Issuer() string { return s.issuer }

// MCPResource returns the canonical URI of the MCP endpoint, the default
// resource of every authorization.
func (s *Server) MCPResource() string { return s.issuer + PathMCP }

// Mount registers every authorization-server route on mux:
//
//	GET  /.well-known/oauth-authorization-server          RFC 8414 metadata
//	GET  /.well-known/oauth-protected-resource[/mcp|/sse]  RFC 9728 metadata
//	POST /register                                         RFC 7591 registration
//	GET  /authorize                                        authorization request, consent page
//	POST /authorize                                        the consent form (Approve / Deny)
//	GET  /callback                                         return from AuthKit
//	POST /token                                            code and refresh grants
//	POST /revoke                                           RFC 7009 revocation
//
// The metadata, /register, /token and /revoke also answer CORS preflights,
// so browser-based clients (MCP Inspector) can use them (preflights are
// not rate limited). /register, /authorize, /callback and /token are
// limited per client IP when Config.IPRateLimit is set. The protected
// resources themselves are not mounted here: wrap them with Protect.
func (s *Server) Mount(mux *http.ServeMux) {
	cors := func(methods string, h http.HandlerFunc) http.Handler { return withCORS(methods, h) }
	mux.Handle(PathASMetadata, cors("GET, HEAD, OPTIONS", s.handleASMetadata))
	for _, p := range []string{"", PathMCP, PathSSE} {
		resource := s.issuer + p
		mux.Handle(PathPRMetadata+p, cors("GET, HEAD, OPTIONS", func(w http.ResponseWriter, r *http.Request) {
			s.handlePRMetadata(w, r, resource)
		}))
	}
	if !s.cfg.DisableRegistration {
		mux.Handle(PathRegister, cors("POST, OPTIONS", s.limited(PathRegister, false, s.handleRegister)))
	}
	mux.HandleFunc("GET "+PathAuthorize, s.limited(PathAuthorize, true, s.handleAuthorize))
	mux.HandleFunc("POST "+PathAuthorize, s.limited(PathAuthorize, true, s.handleConsent))
	mux.HandleFunc("GET "+PathCallback, s.limited(PathCallback, true, s.handleCallback))
	mux.Handle(PathToken, cors("POST, OPTIONS", s.limited(PathToken, false, s.handleToken)))
	mux.Handle(PathRevoke, cors("POST, OPTIONS", s.handleRevoke))
}

// withCORS answers preflights for a public, credential-less endpoint and
// refuses methods outside methods with 405.
func withCORS(methods string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Access-Control-Allow-Methods", methods)
		hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
		if r.Method == http.MethodOptions && strings.Contains(methods, "OPTIONS") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !slices.Contains(strings.Split(methods, ", "), r.Method) {
			hd.Set("Allow", methods)
			writeError(w, &Error{Code: ErrCodeInvalidRequest, Description: "method " + r.Method + " is not allowed", Status: http.StatusMethodNotAllowed})
			return
		}
		h(w, r)
	})
}

// canonicalResource maps a resource parameter to the canonical resource URI
// it names, accepting a differently cased scheme or host and a trailing
// slash (MCP "Canonical Server URI"). ok is false for anything else.
func (s *Server) canonicalResource(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	r, ok := s.resources[normalizeURI(raw)]
	return r, ok
}

// normalizeURI lowercases the scheme and host of an absolute URI and drops
// one trailing slash; anything else is compared as is.
func normalizeURI(raw string) string {
	r := raw
	if i := strings.Index(r, "://"); i > 0 {
		rest := r[i+3:]
		host, path, hasPath := strings.Cut(rest, "/")
		r = strings.ToLower(r[:i]) + "://" + strings.ToLower(host)
		if hasPath {
			r += "/" + path
		}
	}
	return strings.TrimSuffix(r, "/")
}

// lookupClient returns a client by id: a registered client from the store,
// or, for an https URL, the client its metadata document describes. A CIMD
// client is also kept in the store (grants name a stored client), updated
// whenever its document changes. Errors wrap store.ErrNotFound for an
// unknown client and errCIMD for an unusable document.
func (s *Server) lookupClient(ctx context.Context, id string) (store.Client, error) {
	if !isCIMDClientID(id) {
		return s.st.GetClient(ctx, id)
	}
	if s.cimd == nil {
		return store.Client{}, fmt.Errorf("client metadata documents are not accepted: %w", store.ErrNotFound)
	}
	doc, err := s.cimd.get(ctx, id)
	if err != nil {
		return store.Client{}, err
	}
	now := s.cfg.Now().UTC()
	c, err := s.st.GetClient(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		doc.CreatedAt, doc.LastUsedAt, doc.ExpiresAt = now, now, now.Add(s.cfg.ClientTTL)
		if err := s.st.CreateClient(ctx, doc); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return store.Client{}, fmt.Errorf("store metadata document client: %w", err)
		}
		return doc, nil
	case err != nil:
		return store.Client{}, err
	case bytes.Equal(c.Metadata, doc.Metadata):
		return c, nil
	}
	s.log.InfoContext(ctx, "auth: client metadata document changed", "client_id", id)
	return s.st.UpdateClient(ctx, id, func(c *store.Client) error {
		c.Name, c.URI, c.LogoURI, c.Scope = doc.Name, doc.URI, doc.LogoURI, doc.Scope
		c.RedirectURIs, c.GrantTypes, c.ResponseTypes = doc.RedirectURIs, doc.GrantTypes, doc.ResponseTypes
		c.TokenEndpointAuthMethod, c.Metadata = authNone, doc.Metadata
		return nil
	})
}

// keyedMutex serializes work per key (refreshes of one grant).
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock function.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyedLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
