package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/toolgate/toolgate/core/store"
)

// Caller is who a verified bearer token speaks for: the identity AuthKit
// vouched for at the grant's last sign-in or refresh, and the client and
// grant the token was issued under.
type Caller struct {
	UserID         string
	Email          string
	OrganizationID string
	Role           string
	Permissions    []string
	ClientID       string
	GrantID        string
	Scopes         []string
	// Resource is the resource (audience) the token was issued for.
	Resource string
	// ExpiresAt is when the access token expires.
	ExpiresAt time.Time
}

type callerKey struct{}

// CallerFromContext returns the caller Protect verified for this request.
func CallerFromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	if !ok {
		return Caller{}, false
	}
	return *c, true
}

// Keys of sdkauth.TokenInfo.Extra that Protect sets, for packages that read
// the caller through the go-sdk (core/gate does, to avoid importing auth).
const (
	ExtraEmail          = "email"
	ExtraOrganizationID = "organization_id"
	ExtraRole           = "role"
	ExtraPermissions    = "permissions"
	ExtraClientID       = "client_id"
	ExtraGrantID        = "grant_id"
)

// maxBearerLen bounds the tokens Protect looks up; ours are 43 characters.
const maxBearerLen = 256

var errTokenInvalid = errors.New("token invalid")

// Protect wraps the protected resource at path (PathMCP or PathSSE) with
// bearer-token verification (RFC 6750, MCP authorization):
//
//   - no token: 401 with WWW-Authenticate: Bearer resource_metadata=...,
//     scope=... and no error (RFC 6750 §3.1);
//   - a malformed Authorization header: 400 invalid_request;
//   - an unknown, expired or revoked token, or one issued for another
//     resource: 401 with error="invalid_token".
//
// Tokens are read only from the Authorization header, never the query. On
// success the request context carries the Caller (CallerFromContext) and a
// go-sdk TokenInfo (sdkauth.TokenInfoFromContext) whose UserID is the user
// and whose Extra holds the Extra* keys, so the go-sdk's session binding
// and core/gate see the same identity.
//
// Every method needs a token, OPTIONS included: answer CORS preflights
// (and expose WWW-Authenticate to browsers) in a middleware outside
// Protect.
func (s *Server) Protect(path string, next http.Handler) http.Handler {
	resource := s.issuer + path
	return guard(s.issuer+PathPRMetadata+path, s.cfg.Scopes, s.log, func(ctx context.Context, token string) (*Caller, error) {
		return s.verifyBearer(ctx, token, resource)
	}, next)
}

// guard is the bearer check shared by both modes: verify returns the
// caller, an error wrapping errTokenInvalid for a token that is at fault,
// or another error when the token could not be checked (503).
func guard(metadataURL string, scopes []string, log *slog.Logger, verify func(ctx context.Context, token string) (*Caller, error), next http.Handler) http.Handler {
	challenge := `Bearer resource_metadata="` + metadataURL + `"`
	if len(scopes) > 0 {
		challenge += `, scope="` + strings.Join(scopes, " ") + `"`
	}
	inner := sdkauth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*sdkauth.TokenInfo, error) {
		c, ok := ctx.Value(callerKey{}).(*Caller)
		if !ok {
			return nil, sdkauth.ErrInvalidToken
		}
		return &sdkauth.TokenInfo{
			Scopes:     c.Scopes,
			Expiration: c.ExpiresAt,
			UserID:     c.UserID,
			Extra: map[string]any{
				ExtraEmail:          c.Email,
				ExtraOrganizationID: c.OrganizationID,
				ExtraRole:           c.Role,
				ExtraPermissions:    slices.Clone(c.Permissions),
				ExtraClientID:       c.ClientID,
				ExtraGrantID:        c.GrantID,
			},
		}, nil
	}, nil)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, problem := bearerToken(r.Header.Values("Authorization"))
		switch {
		case token == "" && problem == "":
			// No credentials: no error code, in the challenge or the body
			// (RFC 6750 §3.1).
			w.Header().Set("WWW-Authenticate", challenge)
			writeJSON(w, http.StatusUnauthorized, struct {
				Description string `json:"error_description"`
			}{"this endpoint needs a bearer token"})
			return
		case problem != "":
			w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_request", error_description="`+problem+`"`)
			writeError(w, oauthErr(ErrCodeInvalidRequest, problem))
			return
		}
		c, err := verify(r.Context(), token)
		if err != nil {
			if !errors.Is(err, errTokenInvalid) {
				log.ErrorContext(r.Context(), "auth: verify bearer token", "err", err)
				w.Header().Set("Retry-After", "5")
				writeError(w, &Error{Code: ErrCodeTemporarilyUnavailable, Description: "cannot verify the token now", Status: http.StatusServiceUnavailable})
				return
			}
			w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_token", error_description="the access token is invalid, expired, revoked or not for this resource"`)
			writeError(w, &Error{Code: ErrCodeInvalidToken, Description: "the access token is invalid, expired, revoked or not for this resource", Status: http.StatusUnauthorized})
			return
		}
		inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// bearerToken extracts the token of a single "Authorization: Bearer"
// header. No header or another scheme yields ("", ""): no credentials.
func bearerToken(values []string) (token, problem string) {
	if len(values) == 0 {
		return "", ""
	}
	if len(values) > 1 {
		return "", "only one Authorization header is allowed"
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ""
	}
	rest = strings.TrimLeft(rest, " ")
	if rest == "" || strings.ContainsAny(rest, " \t") {
		return "", "the Authorization header must be Bearer followed by one token"
	}
	return rest, ""
}

// verifyBearer returns the caller of an access token issued for resource
// (or for the whole server), from the cache or the store. Failures that
// are the token's fault wrap errTokenInvalid.
func (s *Server) verifyBearer(ctx context.Context, token, resource string) (*Caller, error) {
	if len(token) > maxBearerLen {
		return nil, errTokenInvalid
	}
	hash := store.HashSecret(token)
	now := s.cfg.Now()
	c := s.cache.get(hash, now)
	if c == nil {
		var err error
		if c, err = s.loadCaller(ctx, hash, now); err != nil {
			return nil, err
		}
	}
	if c.Resource != resource && c.Resource != s.issuer {
		return nil, errTokenInvalid
	}
	return c, nil
}

// loadCaller reads an access token and its grant from the store and caches
// the result until the token expires or CacheTTL passes, whichever is first.
func (s *Server) loadCaller(ctx context.Context, hash string, now time.Time) (*Caller, error) {
	gen := s.cache.generation()
	tok, err := s.st.GetToken(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		return nil, errTokenInvalid
	case err != nil:
		return nil, err
	case tok.Kind != store.AccessToken || !now.Before(tok.ExpiresAt):
		return nil, errTokenInvalid
	}
	g, err := s.st.GetGrant(ctx, tok.GrantID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errTokenInvalid
	case err != nil:
		return nil, err
	}
	// Once the grant's upstream expiry has passed, no token issued before
	// it is good: AuthKit's token behind it has expired, or an upstream
	// event (WebhookHandler) marked the grant stale. The client refreshes,
	// which asks AuthKit again.
	if up := g.UpstreamExpiresAt; !up.IsZero() && !now.Before(up) && tok.CreatedAt.Before(up) {
		return nil, errTokenInvalid
	}
	c := &Caller{
		UserID:         g.UserID,
		Email:          g.Email,
		OrganizationID: g.OrganizationID,
		Role:           g.Role,
		Permissions:    nonNil(g.Permissions),
		ClientID:       tok.ClientID,
		GrantID:        tok.GrantID,
		Scopes:         tok.Scopes,
		Resource:       tok.Resource,
		ExpiresAt:      tok.ExpiresAt,
	}
	until := now.Add(s.cfg.CacheTTL)
	if tok.ExpiresAt.Before(until) {
		until = tok.ExpiresAt
	}
	s.cache.put(hash, c, until, gen)
	return c, nil
}

// onChange is the store.Watcher callback: it drops cache entries that a
// change may have made stale. While the store cannot announce changes
// (ChangeSuspended until the next ChangeUnknown) the cache is empty and
// bypassed, so every bearer token is checked against the store: a token
// revoked on another replica meanwhile is never served from memory. It
// must not block.
func (s *Server) onChange(ch store.Change) {
	switch ch.Kind {
	case store.ChangeGrantUpdated, store.ChangeGrantRevoked, store.ChangeTokenDeleted, store.ChangeClientDeleted:
		s.Invalidate(ch)
	case store.ChangeSuspended:
		s.cache.suspend()
	case store.ChangeUnknown:
		s.cache.resume()
	default: // a kind this version does not know
		s.cache.clear()
	}
}

// tokenCache maps access-token hashes to verified callers. It is bounded:
// when full, expired entries are swept, and if that frees nothing an
// arbitrary tenth of the entries is evicted. A generation counter keeps a
// lookup that raced with an invalidation from caching a stale answer.
// While suspended it holds nothing and caches nothing.
type tokenCache struct {
	max int

	mu        sync.RWMutex
	gen       uint64
	suspended bool
	entries   map[string]cacheEntry
}

type cacheEntry struct {
	caller *Caller
	until  time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[string]cacheEntry)}
}

func (c *tokenCache) get(hash string, now time.Time) *Caller {
	if c.max <= 0 {
		return nil
	}
	c.mu.RLock()
	e, ok := c.entries[hash]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.caller
}

func (c *tokenCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches caller unless an invalidation happened since gen was read.
func (c *tokenCache) put(hash string, caller *Caller, until time.Time, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.suspended {
		return
	}
	if len(c.entries) >= c.max {
		now := time.Now()
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			n := c.max/10 + 1
			for k := range c.entries {
				if n == 0 {
					break
				}
				delete(c.entries, k)
				n--
			}
		}
	}
	c.entries[hash] = cacheEntry{caller: caller, until: until}
}

func (c *tokenCache) dropWhere(match func(*Caller) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if match(e.caller) {
			delete(c.entries, k)
		}
	}
}

func (c *tokenCache) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, hash)
}

func (c *tokenCache) dropGrant(id string) {
	c.dropWhere(func(cl *Caller) bool { return cl.GrantID == id })
}

func (c *tokenCache) dropClient(id string) {
	c.dropWhere(func(cl *Caller) bool { return cl.ClientID == id })
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

// suspend empties the cache and stops it caching until resume.
func (c *tokenCache) suspend() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.suspended = true
	clear(c.entries)
}

// resume empties the cache and lets it cache again.
func (c *tokenCache) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.suspended = false
	clear(c.entries)
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// rateLimiter is a token bucket refilled at perMinute tokens a minute.
type rateLimiter struct {
	perMinute int
	now       func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newRateLimiter(perMinute int, now func() time.Time) *rateLimiter {
	return &rateLimiter{perMinute: perMinute, now: now, tokens: float64(perMinute)}
}

// allow takes a token; when none is left it returns false and the
// Retry-After value in seconds.
func (l *rateLimiter) allow() (bool, string) {
	if l.perMinute < 0 {
		return true, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens += now.Sub(l.last).Minutes() * float64(l.perMinute)
		if l.tokens > float64(l.perMinute) {
			l.tokens = float64(l.perMinute)
		}
	}
	l.last = now
	if l.tokens < 1 {
		return false, "60"
	}
	l.tokens--
	return true, ""
}
